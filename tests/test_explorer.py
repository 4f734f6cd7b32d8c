"""The snapshot explorer driven headlessly: set a widget's ``.value``, read ``explorer.view``.

No kernel is needed: ipywidgets 8 with comm >= 0.2 gives widgets a dummy comm outside one.
The snapshots are taken with explicit roots (a notebook's variables and output cache, as
``(name, kind, object, containers)``), so the tests know what each row must be.
"""

from __future__ import annotations

import gc
import html
import re
import sys
import types
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

import jupyter_memsnap
from jupyter_memsnap.ipython.magics import MemsnapMagics
from jupyter_memsnap.model.diff import SnapshotDiff
from jupyter_memsnap.model.retention import reach_mask
from jupyter_memsnap.model.snapshot import Snapshot
from jupyter_memsnap.ui import Explorer, browse
from jupyter_memsnap.ui.data import COLLAPSE_SHARE, ExplorerData, Query
from jupyter_memsnap.views import select
from jupyter_memsnap.views.columns import header

BIG = 2_000_000  # float64 elements: a 16 MB array, the largest ndarray in the process


class Holder:
    """Keeps the objects the snapshots are taken of (its dicts are the 'namespaces')."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {}
        self.out: dict[int, Any] = {}

    def roots(self) -> list[tuple[str, str, object, tuple[object, ...]]]:
        roots: list[tuple[str, str, object, tuple[object, ...]]] = [
            (name, "variable", value, (self.ns,)) for name, value in self.ns.items()
        ]
        roots += [(f"Out[{n}]", "output", v, (self.out,)) for n, v in self.out.items()]
        return roots


def take(holder: Holder, label: str) -> Snapshot:
    return jupyter_memsnap.take(label, roots=holder.roots())


@pytest.fixture(scope="module")
def world() -> tuple[Holder, list[tuple[int, Snapshot]]]:
    """Snapshot 1: ``big_array`` only; snapshot 2: plus ``records`` (a list of 20 000
    dicts) and a DataFrame that only the output cache holds (``Out[3]``)."""
    h = Holder()
    h.ns["big_array"] = np.ones(BIG)
    first = take(h, "start")
    h.ns["records"] = [{"name": f"user-{i}", "score": float(i)} for i in range(20_000)]
    h.out[3] = pd.DataFrame({"x": np.arange(200_000)})
    second = take(h, "loaded")
    return h, [(1, first), (2, second)]


@pytest.fixture
def explorer(world: tuple[Holder, list[tuple[int, Snapshot]]]) -> Iterator[Explorer]:
    ex = Explorer(world[1])
    yield ex
    ex.close()


def at(frame: pd.DataFrame, row: Any, column: str) -> Any:
    """One cell (``frame.loc[row, column]``, typed loosely)."""
    return frame.loc[row, column]


def table_rows(ex: Explorer) -> int:
    """Rows of the HTML table the widget shows."""
    value: str = ex.table.value
    return value.count("<tr data-row=")


# ----------------------------------------------------------------------------- basics
def test_default_view_is_the_latest_snapshot_by_type(explorer: Explorer) -> None:
    view = explorer.view
    assert explorer.snapshot.value == 2
    assert explorer.baseline.value == 0  # "none"
    assert list(view.columns[:2]) == ["type", "module"]
    assert {"count", "size", "retained", "share"} <= set(view.columns)
    assert len(view) == explorer.page_size.value == 20
    assert view["size"].is_monotonic_decreasing
    assert table_rows(explorer) == 20
    snap = explorer.data.snapshots[2]
    summary = explorer.summary_text()
    assert f"{len(snap):,} objects" in summary
    for word in ("heap", "RSS", "unattributed"):
        assert word in summary
    assert "snapshot 2 'loaded'" in summary


def test_constructor_checks_its_arguments(world: tuple[Holder, list[tuple[int, Snapshot]]]) -> None:
    with pytest.raises(ValueError, match="no snapshots"):
        Explorer([])
    with pytest.raises(ValueError, match="snapshot 7 does not exist"):
        Explorer(world[1], 7)
    with pytest.raises(ValueError, match="baseline 9 does not exist"):
        Explorer(world[1], 2, 9)
    with pytest.raises(ValueError, match="cannot group by 'holder' here: choose from type"):
        Explorer(world[1], 2, 1, group="holder")  # a diff has no holder grouping
    with pytest.raises(ValueError, match="page_size must be positive"):
        Explorer(world[1], page_size=0)
    ex = Explorer(world[1], 1, group="variable", page_size=5)
    assert (ex.snapshot.value, ex.group.value, ex.page_size.value) == (1, "variable", 5)
    assert list(ex.view["name"]) == ["big_array"]
    ex.close()


def test_group_options_come_from_views_select(explorer: Explorer) -> None:
    snap = explorer.data.snapshots[2]
    groups = [value for _, value in explorer.group.options]
    assert groups == [*select.available_groups(snap), "object"]
    explorer.group.value = "holder"
    explorer.baseline.value = 1  # a diff has no holder grouping: back to type
    groups = [value for _, value in explorer.group.options]
    assert groups == [
        *select.available_groups(snap.diff(explorer.data.snapshots[1])),
        "new",
        "freed",
    ]
    assert explorer.group.value == "type"
    assert "count_diff" in explorer.view.columns


def test_every_grouping_changes_the_view(explorer: Explorer) -> None:
    explorer.group.value = "module"
    assert list(explorer.view.columns[:1]) == ["module"]
    assert "type" not in explorer.view.columns
    assert explorer.view["module"].is_unique

    explorer.group.value = "variable"
    view = explorer.view
    assert list(view["name"]) == ["big_array", "records"]
    assert at(view, 0, "reachable") >= BIG * 8

    explorer.group.value = "holder"
    assert "Out[3]" in set(explorer.view["held_by"])

    explorer.group.value = "object"
    view = explorer.view
    assert {"id", "type", "module", "size", "retained"} <= set(view.columns)
    assert explorer.rows == len(explorer.data.snapshots[2])
    assert explorer.rows > 100_000

    explorer.group.value = "type"
    assert list(explorer.view.columns[:2]) == ["type", "module"]


def test_snapshot_picker(explorer: Explorer) -> None:
    explorer.group.value = "variable"
    explorer.snapshot.value = 1
    assert list(explorer.view["name"]) == ["big_array"]
    assert "snapshot 1 'start'" in explorer.summary_text()
    baselines = [value for _, value in explorer.baseline.options]
    assert baselines == [0, 2]  # none, and every other snapshot


# ----------------------------------------------------------------------------- diff
def test_baseline_turns_the_view_into_a_diff(explorer: Explorer) -> None:
    explorer.baseline.value = 1
    view = explorer.view
    for column in ("count_a", "count_b", "count_diff", "size_a", "size_b", "size_diff"):
        assert column in view.columns
    assert {"new", "freed", "survived"} <= set(view.columns)
    assert view["size_diff"].abs().is_monotonic_decreasing  # diffs rank by change, either way
    assert "compared to snapshot 1 'start'" in explorer.summary_text()
    assert "new" in explorer.summary_text()
    # growth is coloured red in the HTML table
    assert "class='num up'" in explorer.table.value

    explorer.group.value = "variable"
    view = explorer.view.set_index("name")
    assert at(view, "records", "reachable_diff") > 1_000_000
    assert at(view, "big_array", "reachable_diff") == 0

    explorer.group.value = "new"
    assert explorer.rows == len(explorer.source.new_rows)  # type: ignore[union-attr]
    explorer.group.value = "freed"
    assert explorer.rows == len(explorer.source.freed_rows)  # type: ignore[union-attr]

    explorer.baseline.value = 0
    assert "count_diff" not in explorer.view.columns


def test_shrinkage_is_green(world: tuple[Holder, list[tuple[int, Snapshot]]]) -> None:
    ex = Explorer(world[1], 1, 2)  # snapshot 1 compared to 2: records went away
    assert ex.view["size_diff"].iloc[-1] < 0 or (ex.frame["size_diff"] < 0).any()
    ex.sort.value = "size_diff"
    ex.order.value = "ascending"
    assert ex.view["size_diff"].iloc[0] < 0
    assert "class='num down'" in ex.table.value
    ex.close()


# ----------------------------------------------------------------------------- sort
@pytest.mark.parametrize("group", ["type", "module", "variable", "object"])
def test_sort_by_every_column_both_ways(explorer: Explorer, group: str) -> None:
    explorer.group.value = group
    columns = [value for _, value in explorer.sort.options if value]
    assert columns == [str(c) for c in explorer.view.columns]
    for column in columns:
        explorer.sort.value = column
        for order in ("ascending", "descending"):
            explorer.order.value = order
            full = explorer.frame[column]
            values = full.astype(str) if full.dtype == object else full
            if order == "ascending":
                assert values.is_monotonic_increasing or full.isna().any(), column
            else:
                assert values.is_monotonic_decreasing or full.isna().any(), column
            arrow = "▲" if order == "ascending" else "▼"
            shown = re.escape(html.escape(header(column)[0]))
            assert re.search(f"data-column='{column}'[^>]*>{shown} {arrow}<", explorer.table.value)
    explorer.sort.value = ""
    explorer.order.value = "descending"
    own = explorer.data.base(explorer.query)
    assert list(explorer.view.iloc[:, 0]) == list(own.iloc[: len(explorer.view), 0])


def test_sort_survives_a_grouping_with_the_column(explorer: Explorer) -> None:
    explorer.sort.value = "count"
    explorer.group.value = "module"
    assert explorer.sort.value == "count"
    explorer.group.value = "variable"  # no count column there
    assert explorer.sort.value == ""


# ----------------------------------------------------------------------------- filter
def test_filter_is_case_insensitive(explorer: Explorer) -> None:
    explorer.filter.value = "NDARRAY"
    assert list(explorer.view["type"]) == ["ndarray"]
    explorer.filter.value = "^(str|dict)$"
    assert {t.lower() for t in explorer.view["type"]} == {"str", "dict"}  # and Dict
    explorer.filter.value = "pandas"  # matches the module too
    assert (explorer.view["module"].str.contains("pandas")).all()
    assert len(explorer.view) > 0


def test_filter_on_other_groupings(explorer: Explorer) -> None:
    explorer.group.value = "variable"
    explorer.filter.value = "rec"
    assert list(explorer.view["name"]) == ["records"]
    explorer.group.value = "object"
    explorer.filter.value = "^ndarray$"
    assert set(explorer.frame["type"]) == {"ndarray"}
    snap = explorer.data.snapshots[2]
    assert explorer.rows == len(snap.objects.query("type == 'ndarray'"))


def test_invalid_regex_matches_as_text(explorer: Explorer) -> None:
    explorer.filter.value = "ndarray("
    assert explorer.selection.literal
    assert len(explorer.view) == 0
    assert "matched as plain text" in explorer.status.value
    explorer.filter.value = "zzz-no-such-type"
    assert len(explorer.view) == 0
    assert "no type rows" in explorer.status.value
    assert explorer.page == 0


# ----------------------------------------------------------------------------- paging
def test_paging_bounds(explorer: Explorer) -> None:
    explorer.page_size.value = 10
    frame = explorer.frame
    assert explorer.pages == -(-len(frame) // 10)
    assert explorer.previous.disabled
    explorer.next.click()
    assert explorer.page == 1
    pd.testing.assert_frame_equal(explorer.view, frame.iloc[10:20].reset_index(drop=True))
    assert "rows 11–20" in explorer.status.value
    explorer.previous.click()
    explorer.previous.click()  # stays on the first page
    assert explorer.page == 0
    explorer.page = 10_000  # clamps to the last page
    assert explorer.page == explorer.pages - 1
    assert explorer.next.disabled
    assert 0 < len(explorer.view) <= 10
    explorer.next.click()
    assert explorer.page == explorer.pages - 1
    explorer.filter.value = "str"  # any other control goes back to the first page
    assert explorer.page == 0


def test_never_more_than_one_page_of_objects(explorer: Explorer) -> None:
    explorer.group.value = "object"
    explorer.page_size.value = 50
    assert explorer.rows > 100_000
    assert len(explorer.view) == 50
    assert table_rows(explorer) == 50
    assert len(explorer.row.options) == 51  # the page's rows, and "(pick a row)"
    explorer.page = explorer.pages - 1
    assert 0 < len(explorer.view) <= 50
    assert len(explorer.table.value) < 50_000


# ----------------------------------------------------------------------------- collapse, mine
def test_collapse_small(explorer: Explorer) -> None:
    full = explorer.frame
    explorer.collapse.value = True
    heap = explorer.data.snapshots[2].total_size
    sel = explorer.selection
    assert (sel.frame["size"] >= COLLAPSE_SHARE * heap).all()
    assert sel.hidden_small == int((full["size"] < COLLAPSE_SHARE * heap).sum()) > 0
    assert len(sel.frame) + sel.hidden_small == len(full)
    assert "small hidden" in explorer.status.value

    explorer.baseline.value = 1  # in a diff: 0.5 % of all the changes added up
    changes = explorer.data.base(explorer.query)["size_diff"].abs()
    assert (explorer.frame["size_diff"].abs() >= COLLAPSE_SHARE * changes.sum()).all()


def test_just_my_code(explorer: Explorer) -> None:
    everything = set(explorer.frame["type"])
    explorer.mine.value = True
    mine = set(explorer.frame["type"])
    assert {"ndarray", "list", "dict", "str", "float"} <= mine
    assert mine < everything
    assert not mine & {"function", "code", "module", "type", "cell"}
    assert "DataFrame" not in mine  # only the output cache holds it, not a variable

    explorer.group.value = "module"
    assert set(explorer.frame["module"]) == {"builtins", "numpy"}

    explorer.group.value = "object"
    snap = explorer.data.snapshots[2]
    big = explorer.frame.loc[lambda d: d["size"] >= BIG * 8]
    assert len(big) == 1
    assert explorer.rows < len(snap) // 4
    assert explorer.rows > 40_000  # the records: 20 000 dicts, their strings and floats

    explorer.group.value = "variable"  # variables are all the user's
    assert len(explorer.frame) == 2


def test_reach_from_several_starts() -> None:
    # 0 -> 1 -> 2, 3 -> 4 (stop) -> 5
    offsets = np.array([0, 1, 2, 2, 3, 4, 4], dtype=np.int64)
    targets = np.array([1, 2, 4, 5], dtype=np.int32)
    stop = np.array([False, False, False, False, True, False])
    mask = reach_mask(offsets, targets, np.array([0, 3]), stop)
    assert mask.tolist() == [True, True, True, True, False, False]
    mask = reach_mask(offsets, targets, np.array([4]), stop)  # a start is always expanded
    assert mask.tolist() == [False, False, False, False, True, True]


# ----------------------------------------------------------------------------- drill-down
def test_drill_down_names_the_variable(
    explorer: Explorer, world: tuple[Holder, list[tuple[int, Snapshot]]]
) -> None:
    explorer.filter.value = "^ndarray$"
    explorer.row.value = 0
    instances = explorer.instances
    assert int(at(instances, 0, "id")) == id(world[0].ns["big_array"])
    assert instances["retained"].is_monotonic_decreasing
    assert len(instances) <= explorer.top_instances
    paths = explorer.paths  # the largest instance is picked
    assert at(paths, 0, "holder") == "big_array"
    assert at(paths, 0, "kind") == "variable"
    assert at(paths, 0, "path").startswith("big_array → ndarray")
    assert "del big_array" in at(paths, 0, "fix")
    assert "big_array → ndarray" in explorer.paths_html.value
    assert "Largest objects behind row 1" in explorer.instances_html.value

    other = [value for _, value in explorer.instance.options][2]
    explorer.instance.value = other
    assert at(explorer.paths, 0, "id") == f"{explorer.data.snapshots[2].id_of(other):#x}"

    explorer.row.value = -1
    assert explorer.instances.empty and explorer.paths.empty
    assert explorer.paths_html.value == ""


def test_drill_down_names_hidden_holders_and_the_fix(explorer: Explorer) -> None:
    explorer.group.value = "holder"
    index = list(explorer.view["held_by"]).index("Out[3]")
    explorer.row.value = index
    assert at(explorer.instances, 0, "type") == "DataFrame"
    assert at(explorer.paths, 0, "holder") == "Out[3]"
    assert "%reset -f out" in at(explorer.paths, 0, "fix")


def test_a_holder_row_drills_into_what_the_holders_keep_alive_together() -> None:
    # The last result and the last exception both reach the exception: neither alone
    # retains its array, the group does (what %memsnap release frees).

    def snapshot() -> Snapshot:
        held: dict[str, Any] = {"error": ValueError(np.ones(BIG))}
        held["result"] = types.SimpleNamespace(error_in_exec=held["error"])
        roots = [
            ("last_execution_result", "holder", held.pop("result"), ()),
            ("sys.last_value", "holder", held.pop("error"), ()),
        ]
        return jupyter_memsnap.take(roots=roots)  # no local of a running frame holds them

    ex = Explorer([(1, snapshot())], group="holder")
    try:
        ex.row.value = list(ex.view["held_by"]).index("last_execution_result, sys.last_value")
        top = ex.instances.iloc[0]
        assert top["type"] == "ValueError"
        assert top["retained"] >= BIG * 8
    finally:
        ex.close()


def test_object_groupings_are_largest_first(explorer: Explorer) -> None:
    for group in ("object", "new"):
        if group == "new":
            explorer.baseline.value = 1
        explorer.group.value = group
        assert explorer.frame["retained"].is_monotonic_decreasing, group


def test_just_my_code_counts_only_my_objects() -> None:
    rows = [[i, -i] for i in range(5_000)]
    namespace = {"rows": rows}
    snap = jupyter_memsnap.take(roots=[("rows", "variable", rows, (namespace,))])
    ex = Explorer([(1, snap)], group="type")
    try:
        everything = ex.frame.set_index("type").loc["list"]
        ex.mine.value = True
        mine = ex.frame.set_index("type").loc["list"]
        assert mine["count"] == len(rows) + 1 < everything["count"]
        assert mine["size"] == sys.getsizeof(rows) + sum(sys.getsizeof(r) for r in rows)
        assert mine["retained"] == snap.retained[snap.row(id(rows))]
        assert ex.selection.total_rows >= len(ex.frame)
    finally:
        ex.close()


@pytest.mark.parametrize("group", ["variable", "module", "object"])
def test_drill_down_other_groupings(explorer: Explorer, group: str) -> None:
    explorer.group.value = group
    explorer.row.value = 0
    assert len(explorer.instances) >= 1
    if group == "variable":
        assert at(explorer.paths, 0, "holder") == at(explorer.view, 0, "name")
    if group == "object":
        assert int(at(explorer.instances, 0, "id")) == int(at(explorer.view, 0, "id"))


def test_drill_down_in_a_diff(explorer: Explorer) -> None:
    explorer.baseline.value = 1
    explorer.filter.value = "^dict$"
    explorer.row.value = 0
    assert set(explorer.instances["type"]) == {"dict"}
    diff = explorer.source
    assert isinstance(diff, SnapshotDiff)
    new_ids = {diff.after.id_of(int(r)) for r in diff.new_rows}
    assert set(explorer.instances["id"].astype(int)) <= new_ids  # what grew: the new ones
    explorer.group.value = "variable"
    explorer.filter.value = "records"
    explorer.row.value = 0
    assert at(explorer.paths, 0, "holder") == "records"
    explorer.group.value = "freed"
    explorer.filter.value = ""
    if explorer.rows:
        explorer.row.value = 0
        assert len(explorer.instances) == 1


def test_clicks_on_headers_sort_and_clicks_on_rows_drill_down(explorer: Explorer) -> None:
    def click(**what: Any) -> None:
        explorer.table.clicked = {**what, "n": explorer.table.clicked.get("n", 0) + 1}

    click(kind="header", column="count")
    assert (explorer.sort.value, explorer.order.value) == ("count", "descending")
    assert explorer.frame["count"].is_monotonic_decreasing
    click(kind="header", column="count")  # the same header again: the other way
    assert explorer.order.value == "ascending"
    assert explorer.frame["count"].is_monotonic_increasing
    click(kind="header", column="no such column")
    assert explorer.sort.value == "count"
    click(kind="row", row=2)
    assert explorer.row.value == 2
    assert not explorer.instances.empty
    contains = explorer.contains  # what the picked object refers to, by type
    assert list(contains.columns) == ["type", "count", "size", "retained"]
    assert "data-row='2'" in explorer.table.value
    click(kind="row", row=10_000)
    assert explorer.row.value == 2


def test_contains_lists_a_containers_referents_by_type() -> None:
    import numpy as np

    def snapshot() -> Snapshot:
        box: dict[str, Any] = {"box": [np.ones(1000), np.ones(2000), "label", 1.5]}
        return jupyter_memsnap.take(roots=[("box", "variable", box.pop("box"), ())])

    snap = snapshot()
    ex = Explorer([(1, snap)], group="variable")
    try:
        ex.row.value = 0
        contains = ex.contains.set_index("type")
        assert contains.loc["numpy.ndarray", "count"] == 2
        assert contains.loc["numpy.ndarray", "size"] == sum(
            sys.getsizeof(np.ones(n)) for n in (1000, 2000)
        )
        assert contains.index[0] == "numpy.ndarray"  # largest retained first
    finally:
        ex.close()


def test_page_change_clears_the_row(explorer: Explorer) -> None:
    explorer.row.value = 1
    assert not explorer.instances.empty
    explorer.next.click()
    assert explorer.row.value == -1
    assert explorer.instances.empty


# ----------------------------------------------------------------------------- plots
def test_plots_tab(explorer: Explorer) -> None:
    assert explorer.timeline_image.value == b""  # drawn only when the tab is shown
    explorer.tabs.selected_index = 1  # returns at once: a worker thread draws
    explorer.wait_for_plots(timeout=60)
    assert explorer.timeline_image.value[:8] == b"\x89PNG\r\n\x1a\n"
    types_png = explorer.bars_image.value
    assert types_png[:4] == b"\x89PNG"
    explorer.baseline.value = 1  # redrawn as growth bars while the tab is shown
    explorer.wait_for_plots(timeout=60)
    assert explorer.bars_image.value[:4] == b"\x89PNG"
    assert explorer.bars_image.value != types_png
    explorer.baseline.value = 0  # back to a pair already drawn: from the cache, at once
    assert explorer._plot_thread is not None
    explorer.wait_for_plots(timeout=60)
    assert explorer.bars_image.value == types_png


# ----------------------------------------------------------------------------- text
def test_degrades_to_text(explorer: Explorer) -> None:
    explorer.group.value = "variable"
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    text = bundle["text/plain"]
    assert text == repr(explorer) == explorer.text()
    assert len(text) > 110  # ipywidgets cuts its own at 110 characters
    first, how, *rows = text.splitlines()
    assert first == explorer.summary_text()
    assert how.startswith("by variable; rows 1–2 of 2")
    assert re.search(r"^1\s+big_array\s+numpy\.ndarray\s+16\.0 MB", rows[1])
    assert "memsnap-static" in bundle["text/html"]
    assert "big_array" in bundle["text/html"]


def test_text_shows_the_controls(explorer: Explorer) -> None:
    explorer.filter.value = "str"
    explorer.sort.value = "count"
    explorer.mine.value = True
    text = explorer.text()
    assert "filter 'str'" in text
    assert "sorted by count descending" in text
    assert "just my code" in text


# ----------------------------------------------------------------------------- references
def _snapshots_of_an_array() -> tuple[weakref.ref[np.ndarray], list[tuple[int, Snapshot]]]:
    h = Holder()
    h.ns["victim"] = np.ones(500_000)
    ref = weakref.ref(h.ns["victim"])
    first = take(h, "a")
    h.ns["more"] = [str(i) for i in range(1000)]
    second = take(h, "b")
    return ref, [(1, first), (2, second)]


def test_holds_no_user_object() -> None:
    ref, snapshots = _snapshots_of_an_array()
    gc.collect()
    assert ref() is None  # the snapshots alone keep nothing alive
    holder = Holder()
    holder.ns["victim"] = np.ones(500_000)
    ref = weakref.ref(holder.ns["victim"])
    victim_id = id(holder.ns["victim"])  # a number: keeps nothing alive
    snapshots = [(1, take(holder, "a")), (2, take(holder, "b"))]
    ex = Explorer(snapshots, 2, 1)
    # drive everything that looks at objects: drill-down, paths, plots, every grouping
    for group in [value for _, value in ex.group.options]:
        ex.group.value = group
        ex.row.value = 0 if len(ex.view) else -1
    ex.baseline.value = 0
    ex.filter.value = "ndarray"
    ex.row.value = 0
    ex.instance.value = ex.data.snapshots[2].row(victim_id)  # the module's array is larger
    assert at(ex.paths, 0, "holder") == "victim"
    ex.mine.value = True
    ex.tabs.selected_index = 1
    ex.wait_for_plots(timeout=60)
    ex.text()
    ex._repr_mimebundle_()
    del holder
    gc.collect()
    assert ref() is None
    assert len(ex.view) >= 1  # the explorer still works on its numbers
    ex.close()


def test_close_closes_the_widgets(world: tuple[Holder, list[tuple[int, Snapshot]]]) -> None:
    ex = Explorer(world[1])
    widgets = [ex.widget, ex.group, ex.table, ex.tabs]
    ex.close()
    assert all(w.comm is None for w in widgets)


# ----------------------------------------------------------------------------- data, browse
def test_data_caches_each_stage(world: tuple[Holder, list[tuple[int, Snapshot]]]) -> None:
    data = ExplorerData(world[1])
    q = Query(snapshot=2, group="object", pattern="str", sort="size")
    first = data.selection(q)
    assert data.selection(q) is first
    assert data.selection(Query(snapshot=2, group="object", pattern="str")).frame is not None
    assert data.base(q) is data.base(Query(snapshot=2, group="object"))


def test_browse_the_session_store(ip: Any) -> None:
    from conftest import run

    run(ip, "import numpy as np\nbig_one = np.ones(300_000)")
    ip.run_line_magic("memsnap", "take -l before")
    run(ip, "words = [str(i) for i in range(5000)]")
    ip.run_line_magic("memsnap", "take -l after")
    ex = browse()
    assert ex.snapshot.value == 2 and ex.baseline.value == 0
    ex.group.value = "variable"
    assert {"big_one", "words"} <= set(ex.view["name"])
    ex.close()
    ex = browse("after", "before")
    assert (ex.snapshot.value, ex.baseline.value) == (2, 1)
    ex.close()
    ex = browse(-2)
    assert ex.snapshot.value == 1
    ex.close()
    with pytest.raises(ValueError, match="no snapshot labelled 'nope'"):
        browse("nope")


def test_browse_outside_a_session() -> None:
    with pytest.raises(RuntimeError, match="load_ext jupyter_memsnap"):
        browse()


def test_browse_snapshot_objects_outside_a_session() -> None:
    import jupyter_memsnap

    before = jupyter_memsnap.take(label="before")
    grown = [str(i) * 3 for i in range(20_000)]
    after = jupyter_memsnap.take(label="after")
    ex = jupyter_memsnap.browse(after, before)
    assert (ex.snapshot.value, ex.baseline.value) == (2, 1)
    assert "str" in set(ex.view["type"]) and "compared to" in ex.text()
    ex.close()
    ex = jupyter_memsnap.browse(after)
    assert ex.snapshot.value == 1 and ex.baseline.value == 0
    ex.close()
    with pytest.raises(TypeError, match="Snapshot"):
        jupyter_memsnap.browse(after, 1)
    del grown


def test_a_grouping_without_data_says_why(explorer: Explorer) -> None:
    explorer.group.options = [*explorer.group.options, ("cell of birth", "cell")]
    explorer.group.value = "cell"  # the snapshots did not record cells of birth
    assert explorer.view.empty
    assert explorer.error
    assert html.escape(explorer.error) in explorer.table.value
    assert explorer.error in explorer.text()
    explorer.group.value = "type"
    assert not explorer.error and len(explorer.view) == 20


def _browse_wired() -> bool:
    from jupyter_memsnap.ipython.magics import PARSER

    return "%memsnap browse" in (PARSER.format_help() + str(MemsnapMagics.memsnap.__doc__))


@pytest.mark.skipif(not _browse_wired(), reason="%memsnap browse is not wired in magics.py yet")
def test_browse_magic(ip: Any) -> None:
    from conftest import run
    from IPython.core.error import UsageError
    from IPython.utils.capture import capture_output as untyped_capture

    def capture_output() -> Any:
        return untyped_capture()  # type: ignore[no-untyped-call]

    with capture_output() as cap:
        ip.run_line_magic("memsnap", "browse")
    assert "No snapshots yet" in cap.stdout
    run(ip, "import numpy as np\nx = np.ones(100_000)")
    ip.run_line_magic("memsnap", "take -l one")
    run(ip, "y = [str(i) for i in range(1000)]")
    ip.run_line_magic("memsnap", "take -l two")
    with capture_output() as cap:
        assert ip.run_line_magic("memsnap", "browse") is None  # nothing lands in Out
    fallback, live = (out.data for out in cap.outputs)
    assert set(fallback) == {"text/html"}  # the static table: outlives the kernel
    assert "memsnap-fallback" in fallback["text/html"] and "memsnap-static" in fallback["text/html"]
    assert "application/vnd.jupyter.widget-view+json" in live and "text/html" not in live
    assert live["text/plain"].startswith("snapshot 2 'two'")
    with capture_output() as cap:
        ip.run_line_magic("memsnap", "browse one two --by variable --top 5")
    text = cap.outputs[-1].data["text/plain"]
    assert "compared to snapshot 1 'one'" in text and "by variable" in text
    with capture_output() as cap:
        ip.run_line_magic("memsnap", "browse 1")
    assert cap.outputs[-1].data["text/plain"].startswith("snapshot 1 'one'")
    with pytest.raises(UsageError, match="cannot group by 'holder' here"):
        ip.run_line_magic("memsnap", "browse 1 2 --by holder")
    with pytest.raises(UsageError, match="does not exist"):
        ip.run_line_magic("memsnap", "browse 7")


def test_an_explorer_does_not_show_in_later_snapshots(
    world: tuple[Holder, list[tuple[int, Snapshot]]],
) -> None:
    """Its cached tables (a row per object here) are the tool's, not the user's: once
    api.take excludes Explorer instances, a snapshot after browsing is as before."""
    from jupyter_memsnap import api

    excluded = getattr(api, "machinery_types", lambda: api.MACHINERY_TYPES)()
    if Explorer not in excluded:
        pytest.skip("api.take does not exclude the explorer yet (see machinery_types)")
    holder = Holder()
    before = take(holder, "before")
    ex = Explorer(world[1])
    ex.group.value = "object"
    ex.sort.value = "size"
    ex.mine.value = True
    after = take(holder, "after")
    assert abs(after.total_size - before.total_size) < 2_000_000
    ex.close()
