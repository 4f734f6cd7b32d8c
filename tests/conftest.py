"""Shared fixtures: a real in-process IPython shell with the extension loaded."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

import jupyter_memsnap

PACKAGE_HOME = pathlib.Path(jupyter_memsnap.__file__).resolve().parents[1]
"""Where the tests import jupyter_memsnap from: the source tree, or site-packages when the
tests run against an installed (compiled) package."""


def subprocess_env() -> dict[str, str]:
    """The environment for a child Python that must import the same jupyter_memsnap."""
    path = os.pathsep.join([str(PACKAGE_HOME), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    env.pop("MEMSNAP_DEBUG", None)
    return env


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``MEMSNAP_SECONDARY=1`` (CI's other CPythons), the pure-Python engine's runs of
    the whole-heap truth tests are left to the default Python: on every version that walker
    is still tied to the compiled one by ``test_walker.py`` (whole heap, generated graphs).
    So are tests marked ``once``: long runs of logic that is the same on every version."""
    if os.environ.get("MEMSNAP_SECONDARY") != "1":
        return
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        python_engine = params.get("engine") == "python" and item.module.__name__ != "test_walker"
        secondary = python_engine or item.get_closest_marker("once") is not None
        (drop if secondary else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


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
