"""Shared fixtures: a real in-process IPython shell with the extension loaded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def ip() -> Iterator[Any]:
    """A fresh InteractiveShell with jupyter_memsnap loaded, history off, cleaned after."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    InteractiveShell.clear_instance()
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "jupyter_memsnap")
    yield shell
    shell.run_line_magic("unload_ext", "jupyter_memsnap")
    shell.run_line_magic("reset", "-f")
    InteractiveShell.clear_instance()


def run(shell: Any, code: str) -> Any:
    """Run a cell as a notebook would (stored in history); raise what the cell raised."""
    result = shell.run_cell(code, store_history=True)
    if result.error_before_exec is not None:
        raise result.error_before_exec
    if result.error_in_exec is not None:
        raise result.error_in_exec
    return result.result
