"""IPython glue: the %memsnap magics and the notebook's roots (the only IPython-aware code)."""
