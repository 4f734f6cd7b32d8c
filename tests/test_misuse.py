"""Every command line of ``%memsnap``, in every state, either works or is a one-line
UsageError: generated over all subcommands and their flags (read from the parser, so a new
flag is covered without touching this test) and over session states."""

from __future__ import annotations

import argparse
import pathlib
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from jupyter_memsnap.ipython.magics import CELL_PARSER, PARSER

STATES = ("empty", "one", "two", "auto", "trace", "loaded")


def _options(parser: argparse.ArgumentParser) -> list[tuple[str, bool, tuple[str, ...]]]:
    """(flag, takes a value, its choices) for every optional argument."""
    out = []
    for action in parser._actions:
        if action.option_strings:
            choices = tuple(map(str, action.choices or ()))
            out.append((action.option_strings[-1], action.nargs != 0, choices))
    return out


SUBCOMMANDS: dict[str, argparse.ArgumentParser] = next(
    a.choices for a in PARSER._actions if isinstance(a, argparse._SubParsersAction)
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("misuse")
    (root / "notes.txt").write_text("not a snapshot\n")
    (root / "dir").mkdir()
    return {
        "snapshot": root / "saved.memsnap",
        "text": root / "notes.txt",
        "dir": root / "dir",
        "missing": root / "missing" / "x.memsnap",
        "new": root / "new.memsnap",
    }


@pytest.fixture(scope="module")
def shell(files: dict[str, pathlib.Path]) -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    InteractiveShell.clear_instance()
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=config)
    ip.run_line_magic("load_ext", "jupyter_memsnap")
    ip.run_cell("import numpy as np\nframe = {'a': np.ones(1000)}", store_history=True)
    with capture_output():
        ip.run_line_magic("memsnap", "take -l start")
        ip.run_line_magic("memsnap", f"save 1 {files['snapshot']}")
    yield ip
    ip.run_line_magic("unload_ext", "jupyter_memsnap")
    InteractiveShell.clear_instance()


def _enter(ip: Any, state: str, files: dict[str, pathlib.Path]) -> None:
    run = ip.run_line_magic
    run("memsnap", "clear")
    if state in ("one", "two", "trace"):
        if state == "trace":
            run("memsnap", "trace on")
        run("memsnap", "take -l start")
    if state == "two":
        ip.run_cell("more = [np.zeros(10) for _ in range(10)]", store_history=True)
        run("memsnap", "take")
    if state == "auto":
        run("memsnap", "auto on")
        ip.run_cell("grown = list(range(1000))", store_history=True)
    if state == "loaded":
        run("memsnap", f"load {files['snapshot']}")


def _leave(ip: Any) -> None:
    ip.run_line_magic("memsnap", "auto off")
    ip.run_line_magic("memsnap", "trace off")
    if tracemalloc.is_tracing():
        tracemalloc.stop()


def values(files: dict[str, pathlib.Path]) -> st.SearchStrategy[str]:
    paths = [str(p) for p in files.values()]
    words = ["1", "2", "-1", "-3", "0", "99", "1.5", "start", "nolabel", "'x y'", "''", "on"]
    words += ["off", "[", ".*", "(?P<", "type", "memory", "cell", "site", "object", "holder"]
    words += ["DataFrame", "ndarray", "NoSuchType", "frame", "frame['a']", "1/0", "undefined"]
    return st.sampled_from(words + paths)


def command_lines(files: dict[str, pathlib.Path]) -> st.SearchStrategy[str]:
    @st.composite
    def build(draw: st.DrawFn) -> str:
        name = draw(st.sampled_from(sorted(SUBCOMMANDS)))
        tokens = [name, *draw(st.lists(values(files), max_size=3))]
        for flag, takes_value, choices in draw(
            st.lists(
                st.sampled_from(_options(SUBCOMMANDS[name]) or [("--bogus", False, ())]), max_size=3
            )
        ):
            tokens.append(flag)
            if takes_value and draw(st.booleans()):
                pool = (
                    st.sampled_from(choices) if choices and draw(st.booleans()) else values(files)
                )
                tokens.append(draw(pool))
        if draw(st.integers(0, 9)) == 0:
            tokens.append(draw(st.sampled_from(["--nope", "-z", "--top", "'"])))
        return " ".join(tokens)

    return build()


def _attempt(call: Any) -> None:
    """Success, or a UsageError whose message is one line; anything else fails the test."""
    message = None
    try:
        with capture_output():
            call()
    except UsageError as e:
        message = str(e).strip()
    assert message is None or (message and "\n" not in message), repr(message)


@pytest.mark.once
@pytest.mark.slow
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_command_line_in_every_state_works_or_is_a_one_line_usage_error(
    shell: Any, files: dict[str, pathlib.Path], data: st.DataObject
) -> None:
    state = data.draw(st.sampled_from(STATES), label="state")
    line = data.draw(command_lines(files), label="line")
    _enter(shell, state, files)
    try:
        _attempt(lambda: shell.run_line_magic("memsnap", line))
        with capture_output():
            shell.run_line_magic("memsnap", "list")  # the session still answers
    finally:
        _leave(shell)


@pytest.mark.once
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(
            [flag for flag, _, _ in _options(CELL_PARSER)] + ["1", "-1", "x", "'a b'", "--x", "0"]
        ),
        max_size=4,
    )
)
def test_every_cell_magic_line_works_or_is_a_one_line_usage_error(
    shell: Any, tokens: list[str]
) -> None:
    _attempt(lambda: shell.run_cell_magic("memsnap", " ".join(tokens), "y = [0] * 10"))
