"""The %memsnap magic in a real in-process IPython shell, as a notebook user drives it."""

from __future__ import annotations

import gc
import re
import sys
import weakref
from typing import Any

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import CapturedIO, capture_output
from kernel_utils import html_table

import jupyter_memsnap
from jupyter_memsnap.ipython.magics import MemsnapMagics

# ----------------------------------------------------------------------------- helpers


def cell(ip: Any, code: str) -> tuple[Any, CapturedIO]:
    """Run a cell as a notebook does (in history, numbered) and capture what it shows."""
    with capture_output() as cap:
        result = ip.run_cell(code, store_history=True)
    if result.error_before_exec is not None:
        raise result.error_before_exec
    if result.error_in_exec is not None:
        raise result.error_in_exec
    assert_plain_text(cap)
    return result, cap


def magic(ip: Any, line: str) -> tuple[Any, CapturedIO]:
    """Call the line magic directly (errors raise) and capture what it shows."""
    with capture_output() as cap:
        value = ip.run_line_magic("memsnap", line)
    assert_plain_text(cap)
    return value, cap


def assert_plain_text(cap: CapturedIO) -> None:
    """Every display carries text/plain, so terminals and non-HTML front ends work."""
    for out in cap.outputs:
        assert "text/plain" in out.data, out.data.keys()
        assert out.data["text/plain"].strip()


def said(cap: CapturedIO) -> str:
    """Everything a magic printed or displayed as text (titles may be in either)."""
    return cap.stdout + "\n".join(o.data["text/plain"] for o in cap.outputs)


def table(cap: CapturedIO) -> list[dict[str, str]]:
    """The rows of the single table a magic displayed (read from its HTML)."""
    assert len(cap.outputs) == 1, [o.data.keys() for o in cap.outputs]
    data = cap.outputs[0].data
    assert "text/html" in data
    return html_table(data["text/html"])


def stored(ip: Any) -> str:
    """What `%memsnap list` shows: the complete state of the stored snapshots."""
    _, cap = magic(ip, "list")
    if not cap.outputs:
        return cap.stdout
    return cap.outputs[0].data["text/html"]


_UNITS = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}


def parse_bytes(text: str) -> float:
    """'+8.0 MB' -> 8.0e6, '-12 B' -> -12 (the inverse of the tables' rounding)."""
    m = re.fullmatch(r"([+-]?)([\d.]+) (B|KB|MB|GB|TB)", text.strip())
    assert m, text
    value = float(m.group(2)) * _UNITS[m.group(3)]
    return -value if m.group(1) == "-" else value


def close_to_shown(shown: str, truth: int) -> bool:
    """A human-readable size shows this many bytes (one decimal of its unit)."""
    unit = _UNITS[shown.split()[-1]]
    return abs(parse_bytes(shown) - truth) <= 0.051 * unit


def our_callbacks(ip: Any) -> dict[str, int]:
    """How many of the package's own callbacks each IPython event has."""
    return {
        name: sum(getattr(cb, "__module__", "").startswith("jupyter_memsnap") for cb in cbs)
        for name, cbs in ip.events.callbacks.items()
    }


def live_magics_instances() -> int:
    gc.collect()
    return sum(isinstance(o, MemsnapMagics) for o in gc.get_objects())


@pytest.fixture
def gc_off() -> Any:
    """Only explicit gc.collect() calls collect while the test runs."""
    was = gc.isenabled()
    gc.disable()
    yield
    if was:
        gc.enable()


# ----------------------------------------------------------------------------- take


def test_take_shows_one_summary_row_and_returns_nothing(ip: Any) -> None:
    result, cap = cell(ip, "%memsnap take -l start")
    assert result.result is None
    (row,) = table(cap)
    assert row["snapshot"] == "1"
    assert row["label"] == "start"
    assert row["cell"] == f"In[{result.execution_count}]"
    assert int(row["objects"].replace(",", "")) > 1000
    assert parse_bytes(row["heap"]) > 0 and parse_bytes(row["rss"]) > 0
    assert ip.user_ns["Out"] == {}

    # -o returns the Snapshot that the row describes
    result, cap = cell(ip, "snap = %memsnap take -o -l second")
    snap = ip.user_ns["snap"]
    assert isinstance(snap, jupyter_memsnap.Snapshot)
    (row,) = table(cap)
    assert row["snapshot"] == "2"
    assert int(row["objects"].replace(",", "")) == len(snap)
    assert close_to_shown(row["heap"], snap.total_size)
    assert close_to_shown(row["rss"], snap.process.rss)
    assert snap.label == "second"
    assert snap.cell == result.execution_count
    assert row["cell"] == f"In[{result.execution_count}]"


def test_out_does_not_grow_with_snapshots(ip: Any) -> None:
    cell(ip, "x = list(range(10))")
    for code in (
        "%memsnap take",
        "%memsnap take --no-gc",
        "%memsnap list",
        "%memsnap show",
        "%memsnap show --by module",
        "%memsnap take -l again",
    ):
        result, _ = cell(ip, code)
        assert result.result is None, code
    assert ip.user_ns["Out"] == {}
    assert ip.user_ns["_"] == ""
    # with -o as the last expression the Snapshot is the cell's output, as %timeit -o does
    result, _ = cell(ip, "%memsnap take -o")
    assert isinstance(result.result, jupyter_memsnap.Snapshot)
    assert list(ip.user_ns["Out"]) == [result.execution_count]


def test_take_to_disk_keeps_the_columns_in_file_mappings(ip: Any) -> None:
    from jupyter_memsnap.model import spill

    if spill.directory() is None:
        pytest.skip("no directory on a disk for spill files")
    cell(ip, "snap = %memsnap take --to-disk -o")
    snap = ip.user_ns.pop("snap")
    stored = [a for a in snap.stored_arrays() if a.nbytes >= 4096]
    assert stored and all(spill.is_file_backed(a) for a in stored)
    assert snap.memory_nbytes < snap.nbytes
    assert snap.types["size"].sum() == snap.total_size


def test_take_collects_garbage_first_unless_no_gc(ip: Any, gc_off: None) -> None:
    cell(
        ip,
        "import weakref\n"
        "class Node:\n    pass\n"
        "node = Node(); node.self = node\n"
        "ref = weakref.ref(node)\n"
        "garbage_id = id(node)\n"
        "del node",
    )
    ref = ip.user_ns["ref"]
    assert ref() is not None  # a cycle nothing references: garbage, not yet collected
    snap, _ = magic(ip, "take --no-gc -o")
    assert ref() is not None
    assert snap.row(ip.user_ns["garbage_id"]) >= 0  # the snapshot sees the uncollected cycle
    magic(ip, "take")
    assert ref() is None


# ----------------------------------------------------------------------------- list


def test_list_without_snapshots_says_so(ip: Any) -> None:
    result, cap = cell(ip, "%memsnap list")
    assert result.result is None
    assert cap.outputs == []
    assert "No snapshots" in cap.stdout


def test_list_has_one_row_per_snapshot_with_the_change(ip: Any) -> None:
    s1, _ = magic(ip, "take -o -l before")
    cell(ip, "import numpy as np\ngrowth = np.ones(2_000_000)")
    s2, _ = magic(ip, "take -o -l after")
    s3, _ = magic(ip, "take -o")
    result, cap = cell(ip, "%memsnap list")
    assert result.result is None
    rows = table(cap)
    assert [r["snapshot"] for r in rows] == ["1", "2", "3"]
    assert [r["label"] for r in rows] == ["before", "after", ""]
    for r in ("objects_diff", "heap_diff", "rss_diff"):
        assert r in rows[0]
    snaps = [s1, s2, s3]
    for r, s in zip(rows, snaps, strict=True):
        assert int(r["objects"].replace(",", "")) == len(s)
        assert close_to_shown(r["heap"], s.total_size)
    assert rows[0]["objects_diff"] == "" and rows[0]["heap_diff"] == ""
    for r, prev, s in zip(rows[1:], snaps[:-1], snaps[1:], strict=True):
        assert int(r["objects_diff"].replace(",", "")) == len(s) - len(prev)
        assert close_to_shown(r["heap_diff"], s.total_size - prev.total_size)
    # the 16 MB array made between 1 and 2 is the change
    growth = ip.user_ns["growth"].nbytes
    assert parse_bytes(rows[1]["heap_diff"]) >= 0.98 * growth
    assert abs(s2.total_size - s1.total_size - growth) <= 0.02 * growth


# ----------------------------------------------------------------------------- show


@pytest.fixture
def two(ip: Any) -> tuple[Any, Any]:
    """Two labelled snapshots around a cell that creates a big array."""
    first, _ = magic(ip, "take -o -l first")
    cell(ip, "import numpy as np\nbig_array = np.ones(1_000_000)\nsmall = [1, 2, 3]")
    second, _ = magic(ip, "take -o -l second")
    return first, second


def test_show_by_variable_names_the_variable_a_cell_created(ip: Any, two: Any) -> None:
    _, second = two
    out, cap = magic(ip, "show --by variable")
    assert out is None
    assert "Snapshot 2 'second'" in said(cap)
    rows = {r["name"]: r for r in table(cap)}
    assert rows["big_array"]["type"] == "numpy.ndarray"
    assert close_to_shown(rows["big_array"]["reachable"], sys.getsizeof(ip.user_ns["big_array"]))
    assert rows["small"]["type"] == "list"
    assert "np" not in rows  # a module is not a variable
    # the first snapshot was taken before the cell: the variable is not in it
    _, cap = magic(ip, "show first --by variable")
    assert "big_array" not in {r["name"] for r in table(cap)}
    df, _ = magic(ip, "show --by variable -o")
    pd.testing.assert_frame_equal(df, second.variables)
    # the filter applies to the names, case-insensitively
    _, cap = magic(ip, "show --by variable --filter BIG")
    assert [r["name"] for r in table(cap)] == ["big_array"]


def test_show_labels_numbers_and_negative_indices_resolve(ip: Any, two: Any) -> None:
    first, second = two
    for ref, snap in (
        ("first", first),
        ("1", first),
        ("-2", first),
        ("second", second),
        ("2", second),
        ("-1", second),
        ("", second),
    ):
        df, cap = magic(ip, f"show {ref} -o")
        number = 1 if snap is first else 2
        assert f"Snapshot {number} '{snap.label}'" in said(cap), (ref, said(cap))
        pd.testing.assert_frame_equal(df, snap.types)
    df, _ = magic(ip, "show first --by module -o")
    pd.testing.assert_frame_equal(df, first.modules)


def test_labels_with_spaces_and_repeated_labels_resolve(ip: Any) -> None:
    spaced, _ = magic(ip, 'take -o -l "after load"')
    assert spaced.label == "after load"
    magic(ip, "take -l same")
    newer, _ = magic(ip, "take -l same -o")
    df, cap = magic(ip, "show 'after load' -o")
    assert "Snapshot 1 'after load'" in said(cap)
    pd.testing.assert_frame_equal(df, spaced.types)
    df, cap = magic(ip, "show same -o")  # a repeated label names the latest
    assert "Snapshot 3 'same'" in said(cap)
    pd.testing.assert_frame_equal(df, newer.types)


def test_show_filter_narrows_rows_case_insensitively(ip: Any, two: Any) -> None:
    _, second = two
    types = second.types
    expected = types[
        types["type"].str.contains("ndarray", case=False)
        | types["module"].str.contains("ndarray", case=False)
    ].reset_index(drop=True)
    assert 0 < len(expected) < len(types)
    for pattern in ("ndarray", "NDARRAY", "NdArray"):
        df, cap = magic(ip, f"show --filter {pattern} -o")
        pd.testing.assert_frame_equal(df.reset_index(drop=True), expected)
        shown = table(cap)
        assert len(shown) == len(expected)
        assert all("ndarray" in (r["type"] + r["module"]).lower() for r in shown)
    # by module
    _, cap = magic(ip, "show --by module --filter '^NUMPY$'")
    assert [r["module"] for r in table(cap)] == ["numpy"]


def test_show_top_limits_the_rows_to_the_largest(ip: Any, two: Any) -> None:
    _, second = two
    types = second.types
    for k in (1, 3, 7):
        _, cap = magic(ip, f"show --top {k}")
        rows = table(cap)
        assert len(rows) == k
        assert [r["type"] for r in rows] == list(types["type"][:k])
        assert f"top {k} of {len(types):,} by type" in said(cap)
    _, cap = magic(ip, "show")  # the default shows 20
    assert len(table(cap)) == min(20, len(types))
    assert f"top 20 of {len(types):,} by type" in said(cap)
    sizes = types["size"].to_numpy()
    assert (np.diff(sizes) <= 0).all()  # largest first


def test_show_top_shows_every_row_asked_for(ip: Any, two: Any) -> None:
    _, second = two
    types = second.types
    assert len(types) > 100
    # pandas' defaults, as in a kernel or a terminal
    with pd.option_context("display.max_rows", 60, "display.min_rows", 10):
        _, cap = magic(ip, "show --top 100")
    assert "top 100 of" in said(cap)
    rows = table(cap)
    assert [r["type"] for r in rows] == list(types["type"][:100])
    text = cap.outputs[0].data["text/plain"]
    assert all(t in text for t in types["type"][:100])


# ----------------------------------------------------------------------------- clear, usage


def test_clear_forgets_every_snapshot_and_numbers_are_not_reused(ip: Any) -> None:
    snap, _ = magic(ip, "take -o")
    magic(ip, "take")
    ref = weakref.ref(snap)
    del snap
    gc.collect()
    assert ref() is not None  # the store keeps it
    result, cap = cell(ip, "%memsnap clear")
    assert result.result is None
    assert "2" in cap.stdout
    gc.collect()
    assert ref() is None  # forgotten means freed
    assert "No snapshots" in stored(ip)
    with pytest.raises(UsageError):
        magic(ip, "show")
    _, cap = magic(ip, "take")
    (row,) = table(cap)
    assert row["snapshot"] == "3"
    with pytest.raises(UsageError):
        magic(ip, "show 1")
    _, cap = magic(ip, "clear")
    assert "1 snapshot" in cap.stdout and "snapshots" not in cap.stdout


def test_no_arguments_prints_usage_and_changes_nothing(ip: Any) -> None:
    magic(ip, "take -l kept")
    before = stored(ip)
    result, cap = cell(ip, "%memsnap")
    assert result.result is None
    assert cap.outputs == []
    for command in ("take", "list", "show", "clear"):
        assert command in cap.stdout
    assert stored(ip) == before


def test_the_docstring_is_the_usage(ip: Any) -> None:
    doc = ip.find_line_magic("memsnap").__doc__
    for text in (
        "%memsnap take",
        "-l LABEL",
        "--no-gc",
        "-o",
        "%memsnap list",
        "%memsnap show",
        "--by type|variable|module",
        "--top K",
        "--filter PATTERN",
        "%memsnap clear",
    ):
        assert text in doc, text
    # what %memsnap? shows
    _, cap = cell(ip, "%memsnap?")
    assert "%memsnap show" in cap.stdout and "--filter" in cap.stdout


# ----------------------------------------------------------------------------- bad input

BAD = [
    "show 99",
    "show x",
    "show 0",
    "show 1.5",
    "show -5",
    "show 1 2",
    "show --top -3",
    "show --top 0",
    "show --top abc",
    "show --top",
    "show --by nonsense",
    "show --by",
    "show --filter '('",
    "show --filter '[a-'",
    "show --frob",
    "frob",
    "take --bogus",
    "take extra",
    "take -l",
    "list extra",
    "list --all",
    "clear extra",
    "clear --force",
    "insights 99",
    "insights 1 2",
    "insights --top 0",
    "show 'unbalanced",
    'take -l "open',
    "--help",
]


@pytest.mark.parametrize("line", BAD)
def test_bad_input_is_one_line_of_usage_error_and_changes_nothing(ip: Any, line: str) -> None:
    magic(ip, "take -l one")
    magic(ip, "take -l two")
    before = stored(ip)
    with capture_output() as cap, pytest.raises(UsageError) as info:
        ip.run_line_magic("memsnap", line)
    message = str(info.value)
    assert message.strip() and "\n" not in message.strip(), message
    assert cap.stdout == "" and cap.stderr == "" and cap.outputs == []
    assert stored(ip) == before
    # in a cell, IPython turns it into the cell's error, nothing is shown
    with capture_output() as cap:
        result = ip.run_cell(f"%memsnap {line}", store_history=True)
    assert isinstance(result.error_in_exec, UsageError)
    assert cap.outputs == []
    assert stored(ip) == before


def test_show_without_snapshots_is_a_usage_error(ip: Any) -> None:
    for line in ("show", "show -1", "show 1 --by variable"):
        with pytest.raises(UsageError) as info:
            magic(ip, line)
        assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- load / unload


def test_unload_removes_the_magic_and_load_starts_fresh(ip: Any) -> None:
    snap, _ = magic(ip, "take -o")
    ref = weakref.ref(snap)
    del snap
    magic(ip, "take")
    assert len(html_table(stored(ip))) == 2
    ip.run_line_magic("unload_ext", "jupyter_memsnap")
    assert ip.find_line_magic("memsnap") is None
    assert sum(our_callbacks(ip).values()) == 0  # every hook it registered is gone
    assert "MemsnapMagics" not in ip.magics_manager.registry
    with pytest.raises(UsageError):
        ip.run_line_magic("memsnap", "list")
    with capture_output():
        result = ip.run_cell("%memsnap list", store_history=True)
    assert isinstance(result.error_in_exec, UsageError)
    gc.collect()
    assert ref() is None  # unloading frees the snapshots
    ip.run_line_magic("load_ext", "jupyter_memsnap")
    assert "No snapshots" in stored(ip)
    _, cap = magic(ip, "take")
    assert table(cap)[0]["snapshot"] == "1"


def test_reload_does_not_duplicate_anything(ip: Any) -> None:
    magic(ip, "take")
    callbacks = our_callbacks(ip)
    for _ in range(3):
        ip.run_line_magic("reload_ext", "jupyter_memsnap")
    registry = ip.magics_manager.registry
    assert [k for k in registry if "Memsnap" in k] == ["MemsnapMagics"]
    assert ip.find_line_magic("memsnap").__self__ is registry["MemsnapMagics"]
    assert our_callbacks(ip) == callbacks  # as many hooks as one load registers
    _, cap = cell(ip, "%memsnap take")
    assert len(cap.outputs) == 1
    rows = html_table(stored(ip))
    numbers = [r["snapshot"] for r in rows]
    assert len(numbers) == len(set(numbers))


def test_unload_and_reload_leave_no_magics_instance_behind(ip: Any) -> None:
    alive = live_magics_instances()  # this shell's, plus any an earlier test leaked
    assert alive >= 1
    ip.run_line_magic("reload_ext", "jupyter_memsnap")
    ip.run_line_magic("reload_ext", "jupyter_memsnap")
    assert live_magics_instances() == alive
    ip.run_line_magic("unload_ext", "jupyter_memsnap")
    assert live_magics_instances() == alive - 1


# ----------------------------------------------------------------------------- notebook words


def test_a_dataframe_cell_is_named_by_its_variable(ip: Any) -> None:
    cell(
        ip,
        "import pandas as pd\n"
        "df = pd.DataFrame({'a': range(200_000), 'b': [str(i) for i in range(200_000)]})",
    )
    magic(ip, "take")
    _, cap = magic(ip, "show --by variable")
    rows = {r["name"]: r for r in table(cap)}
    assert rows["df"]["type"] == "pandas.DataFrame"
    truth = int(ip.user_ns["df"].memory_usage(deep=True).sum())
    assert abs(parse_bytes(rows["df"]["reachable"]) - truth) <= 0.02 * truth
    assert "df" in cap.outputs[0].data["text/plain"]


def test_a_displayed_value_is_rooted_as_its_output_cell(ip: Any) -> None:
    cell(ip, "import numpy as np")
    result, _ = cell(ip, "np.arange(100_000)")
    n = result.execution_count
    value = ip.user_ns["Out"][n]
    assert value is result.result
    cell(ip, "del np")
    snap, _ = magic(ip, "take -o")
    roots = {r.name: r for r in snap.roots}
    out = roots[f"Out[{n}]"]
    assert out.kind == "output"
    assert out.hidden
    assert out.index >= 0 and int(snap.ids[out.index]) == id(value)
    assert snap.type_label(out.index) == "numpy.ndarray"
    assert snap.sizes[out.index] >= value.nbytes
    # the same object is also held by _ and _N, named as outputs too
    for name in ("_", f"_{n}"):
        assert roots[name].kind == "output" and roots[name].index == out.index
    # it is not a variable
    assert not any(r.kind == "variable" and r.index == out.index for r in snap.roots)


def test_text_plain_shows_the_whole_summary_row_in_a_terminal(ip: Any) -> None:
    # what IPython in an 80-column terminal uses (pandas: max_columns=0 -> fit the terminal)
    with pd.option_context("display.max_columns", 0, "display.width", 80):
        _, cap = magic(ip, "take -l terminal")
    (row,) = table(cap)
    text = cap.outputs[0].data["text/plain"]
    for column in ("snapshot", "label", "cell", "objects", "heap", "rss"):
        assert column in text, (column, text)
        assert row[column] in text, (column, text)


def test_groupings_that_were_not_recorded_are_usage_errors(ip: Any) -> None:
    magic(ip, "take")
    magic(ip, "take")
    for line, says in [
        ("show 1 --by cell", "cells were not tracked"),
        ("diff 1 2 --by cell", "cannot diff by cell"),
        ("show 1 --by site", "no allocation sites"),
        ("diff 1 1 --by site", "cannot diff by site"),
    ]:
        with pytest.raises(UsageError, match=says):
            magic(ip, line)
