"""Per-cell tracking: cells of birth, diffs by cell, allocation sites, %%memsnap."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest
from conftest import run
from IPython.utils.capture import capture_output

from jupyter_memsnap.capture import heap, layout
from jupyter_memsnap.ipython.cells import CellMap


def _magics(ip: Any) -> Any:
    return ip.magics_manager.registry["MemsnapMagics"]


def test_a_growing_list_is_attributed_to_the_cells_that_grew_it(ip: Any) -> None:
    run(ip, "grow = []")
    ip.run_line_magic("memsnap", "auto on --every-cell")
    cells = []
    for _ in range(3):
        cells.append(ip.execution_count)
        run(ip, "grow.extend(object() for _ in range(10_000))")
    snap = ip.run_line_magic("memsnap", "take -o")
    by_cell = snap.cells.set_index("cell")
    for cell in cells:
        assert by_cell.loc[f"In[{cell}]", "count"] >= 10_000
        assert by_cell.loc[f"In[{cell}]", "count"] < 10_500
    assert by_cell.loc["before tracking", "count"] > 10_000
    # The born column names the right cell for individual objects.
    first = ip.user_ns["grow"][0]
    last = ip.user_ns["grow"][-1]
    assert snap.born[snap.row(id(first))] == cells[0]
    assert snap.born[snap.row(id(last))] == cells[-1]


def test_diff_by_cell_names_the_leaking_cell(ip: Any) -> None:
    run(ip, "leak = []")
    ip.run_line_magic("memsnap", "auto on --every-cell")
    ip.run_line_magic("memsnap", "take -l before")
    run(ip, "harmless = [1, 2, 3]")
    leaking = ip.execution_count
    run(ip, "leak.append(bytearray(3_000_000))")
    ip.run_line_magic("memsnap", "take -l after")
    diff = ip.run_line_magic("memsnap", "diff before after --by cell -o")
    top = diff.cells.iloc[0]
    assert top["cell"] == f"In[{leaking}]"
    assert top["size_diff"] >= 3_000_000
    with capture_output() as out:
        ip.run_line_magic("memsnap", "list")
    text = out.outputs[0].data["text/plain"]
    assert f"In[{leaking}]" in text
    assert "cell censuses" in text


@pytest.mark.once
def test_auto_mode_memory_stays_bounded_over_150_cells(ip: Any) -> None:
    run(ip, "keep = []")
    ip.run_line_magic("memsnap", "auto on --every-cell")
    tracker = _magics(ip).tracker
    sizes = []
    for i in range(150):
        run(ip, f"tmp = [object() for _ in range(500)]; keep.append({i})")
        if i in (25, 149):
            sizes.append((tracker.births.nbytes, len(tracker.births.ids)))
    assert len(tracker.rows) >= 150
    (bytes_25, live_25), (bytes_149, live_149) = sizes
    assert bytes_149 <= 16 * live_149 + 1024, "the register holds 16 bytes per live object"
    assert live_149 < live_25 * 1.2, "cells free their temporaries: live objects don't pile up"
    assert bytes_149 < bytes_25 * 1.2


def test_a_temporary_shows_in_the_peak_not_in_what_the_cell_left(ip: Any) -> None:
    # The peak is how far RSS rose: 200 MB is more than the allocator could have kept free,
    # and glibc maps it fresh (above its largest mmap threshold), so RSS must rise by it.
    with capture_output() as out:
        ip.run_cell_magic(
            "memsnap", "-q", "kept = bytearray(2_000_000)\ntemp = bytearray(200_000_000)\ndel temp"
        )
    line = out.stdout
    left = float(line.split("left behind +")[1].split(" MB")[0])
    peak = float(line.split("peak +")[1].split(" MB")[0])
    assert 1.9 <= left < 5, line
    assert peak >= 190, line
    assert "kept" in ip.user_ns and "temp" not in ip.user_ns


def test_identical_cell_text_run_twice_maps_to_both_cells() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    cells = CellMap()

    class Info:
        raw_cell = "x = [1]"
        transformed_cell = "x = [1]\n"
        cell_id = None

    class Result:
        info = Info()
        execution_count = 4

    cells.record(shell, Result())
    Result.execution_count = 5
    cells.record(shell, Result())
    name4 = shell.compile.get_code_name(Info.raw_cell, Info.transformed_cell, 4)
    name5 = shell.compile.get_code_name(Info.raw_cell, Info.transformed_cell, 5)
    if name4 == name5:  # ipykernel names cells by text: both runs share one name
        assert cells.cells_of(name4) == [4, 5]
        assert cells.site_label(((name4, 1),)) == "In[5] line 1 (same code ran as In[4])"
    else:  # plain IPython puts the number in the name
        assert cells.site_label(((name4, 2),)) == "In[4] line 2"
        assert cells.site_label(((name5, 2),)) == "In[5] line 2"
    assert cells.site_label((("/x/site-packages/pandas/core/frame.py", 120),)) == (
        "pandas/core/frame.py:120"
    )
    frame_py = ("/x/site-packages/pandas/core/frame.py", 120)
    in_cell = ((frame_py, (name5, 3)), (("/y/lib.py", 7), frame_py, (name5, 3)), (), (frame_py,))
    assert cells.site_labels(in_cell) == (
        cells.site_label(((name5, 3),)),
        cells.site_label(((name5, 3),)),
        "unknown",
        "pandas/core/frame.py:120",
    )
    assert cells.site_labels(in_cell)[0].startswith("In[5] line 3")


def test_tracing_maps_sites_to_cells_and_lines(ip: Any) -> None:
    was_tracing = tracemalloc.is_tracing()
    ip.run_line_magic("memsnap", "trace on --frames 5")
    try:
        cell = ip.execution_count
        run(ip, "import numpy as np\nfirst = 1\nmade = [np.ones(10) for _ in range(2000)]")
        snap = ip.run_line_magic("memsnap", "take -o")
        sites = snap.sites.set_index("site")
        label = f"In[{cell}] line 3"
        assert label in sites.index, list(sites.index[:10])
        assert sites.loc[label, "count"] >= 2000
        made = ip.user_ns["made"]
        row = snap.row(id(made[0]))
        assert snap.site_labels[snap.site_index[row]] == label
    finally:
        ip.run_line_magic("memsnap", "trace off")
    assert tracemalloc.is_tracing() == was_tracing


def test_tracing_finds_the_site_of_instances_whose_block_starts_before_them(ip: Any) -> None:
    # From 3.11 an instance with a managed dict starts two words into its memory block
    # (the pre-header), where tracemalloc filed its allocation.
    ip.run_line_magic("memsnap", "trace on")
    try:
        run(
            ip,
            "class Point:\n    def __init__(self, i):\n        self.x, self.y = i, -i\n"
            "class Slotted:\n    __slots__ = ('v',)\n"
            "    def __init__(self, v):\n        self.v = v\n"
            "points = [Point(i) for i in range(3000)]\nslots = [Slotted(i) for i in range(3000)]",
        )
        made = {name: ip.user_ns[name] for name in ("points", "slots")}
        raw = heap.capture([(name, "variable", value) for name, value in made.items()], sites=True)
        assert raw.sites is not None
        # The pure-Python walker's lookup (a whole walk of it would take minutes under tracing).
        lookup = layout.object_traceback(tracemalloc._get_object_traceback, heap.GC_HEAD)
        for (name, objects), line in zip(made.items(), (8, 9), strict=True):
            at = np.searchsorted(raw.sorted_ids, np.array([id(o) for o in objects], np.uint64))
            sites = raw.sites[raw.order[at]]
            assert (sites >= 0).all(), f"{name}: {(sites < 0).sum()} without a site"
            assert {raw.site_table[s][0][1] for s in sites} == {line}
            assert {lookup(o)[0][1] for o in objects} == {line}
    finally:
        ip.run_line_magic("memsnap", "trace off")


@pytest.mark.parametrize("bad", ["auto maybe", "trace on --frames 0", "trace", "auto"])
def test_bad_auto_and_trace_arguments_are_usage_errors(ip: Any, bad: str) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError):
        ip.run_line_magic("memsnap", bad)
    assert not _magics(ip).tracker.auto


@pytest.mark.once
def test_auto_mode_skips_censuses_over_budget_and_names_the_range(ip: Any) -> None:
    """With no fixed allowance, a census runs only when it costs at most 5 % of the time
    the cells since the last one ran: quick cells are skipped, and their births are
    attributed to the range of cells up to the next census (or snapshot)."""
    tracker = _magics(ip).tracker
    run(ip, "import time\ngrow = []")
    ip.run_line_magic("memsnap", "auto on")
    tracker.BUDGET_SECONDS = 0.0
    census_seconds = tracker.rows[-1].seconds
    first = ip.execution_count
    for _ in range(2):
        run(ip, "grow.extend(object() for _ in range(10_000))")
    assert [r.objects for r in tracker.rows[-2:]] == [None, None], "quick cells: no census"
    long_cell = ip.execution_count
    run(ip, f"time.sleep({census_seconds * 40 + 0.05:.3f})")  # 5 %: twice the census's cost
    row = tracker.rows[-1]
    assert row.objects is not None and row.cells == f"In[{first}–{long_cell}]"
    pending = ip.execution_count
    run(ip, "grow.extend(object() for _ in range(5_000))")
    run(ip, "snap = %memsnap take -o")
    snap = ip.user_ns.pop("snap")
    by_cell = snap.cells.set_index("cell")
    assert 20_000 <= by_cell.loc[f"In[{first}–{long_cell}]", "count"] < 20_500
    taken = snap.cell
    assert 5_000 <= by_cell.loc[f"In[{pending}–{taken}]", "count"] < 5_500
    with capture_output() as cap:
        ip.run_line_magic("memsnap", "list")
    shown = "".join(o.data.get("text/plain", "") for o in cap.outputs)
    assert "auto mode cost" in shown and "ms per cell" in shown, shown
    listed = [r.cells for r in tracker.rows]
    assert f"In[{first}–{long_cell}]" in listed and f"In[{pending}]" in listed


def test_every_cell_censuses_after_each_cell_whatever_it_costs(ip: Any) -> None:
    tracker = _magics(ip).tracker
    ip.run_line_magic("memsnap", "auto on --every-cell")
    tracker.BUDGET_SECONDS = tracker.BUDGET_SHARE = 0.0
    for _ in range(3):
        run(ip, "x = 1")
    assert all(r.objects is not None for r in tracker.rows[-3:])
    ip.run_line_magic("memsnap", "auto off")
    assert not tracker.every_cell
