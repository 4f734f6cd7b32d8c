"""Views: the model turned into pandas DataFrames (every user-facing table is one)."""
