"""The Snapshot model and its views, through the Python API outside IPython."""

from __future__ import annotations

import dataclasses
import gc
import sys
import weakref

import numpy as np
import pandas as pd
import pytest

import jupyter_memsnap
from jupyter_memsnap.model.snapshot import ProcessMemory, Snapshot
from jupyter_memsnap.model.store import SnapshotError, SnapshotStore


class Payload:
    """A user class whose instances can be weakly referenced."""

    def __init__(self, n: int) -> None:
        self.data = np.ones(n)


def _refs_of(snap: Snapshot) -> list[object]:
    """Every object the snapshot's own data reaches (not through its class)."""
    seen: dict[int, object] = {}
    todo: list[object] = [r for r in gc.get_referents(snap) if r is not Snapshot]
    while todo:
        o = todo.pop()
        if id(o) in seen:
            continue
        seen[id(o)] = o
        if isinstance(o, type):
            continue
        todo.extend(gc.get_referents(o))
        if isinstance(o, np.ndarray) and o.base is not None:
            todo.append(o.base)
    return list(seen.values())


def test_snapshot_holds_no_user_object_nor_type() -> None:
    obj = Payload(1000)
    snap = jupyter_memsnap.take(roots=[("obj", "variable", obj)])
    assert snap.row(id(obj)) >= 0
    reachable = _refs_of(snap)
    assert not any(r is obj or r is obj.data or r is Payload for r in reachable)
    assert not any(isinstance(r, type) and r.__module__ == __name__ for r in reachable)
    ref = weakref.ref(obj)
    del obj
    gc.collect()
    assert ref() is None, "a snapshot must not keep its objects alive"


def test_taking_a_snapshot_changes_nothing_that_is_alive() -> None:
    objs = [Payload(10) for _ in range(50)]
    refs = [weakref.ref(o) for o in objs]
    before = [sys.getrefcount(o) for o in [objs, *objs]]
    gc.disable()  # a cycle through our frames would hold them until a collection
    try:
        jupyter_memsnap.take(roots=[("objs", "variable", objs)])
        assert [sys.getrefcount(o) for o in [objs, *objs]] == before
    finally:
        gc.enable()
    del objs
    gc.collect()
    assert all(r() is None for r in refs)


def test_earlier_snapshots_never_show_up_in_later_ones() -> None:
    first = jupyter_memsnap.take()
    store = SnapshotStore()
    store.add(first)
    second = jupyter_memsnap.take(
        roots=[("first", "variable", first), ("store", "variable", store)]
    )
    ids = set(second.sorted_ids.tolist())
    assert id(first) not in ids and id(store) not in ids
    for column in first.stored_arrays():
        assert id(column) not in ids
        assert column.base is None or id(column.base) not in ids
    labels = set(second.types["type"])
    assert "Snapshot" not in labels and "SnapshotStore" not in labels


def test_columns_are_sorted_immutable_and_consistent() -> None:
    snap = jupyter_memsnap.take()
    assert np.all(np.diff(snap.sorted_ids.astype(np.int64)) > 0)
    assert (snap.ids[snap.order] == snap.sorted_ids).all()
    assert len(snap.offsets) == len(snap) + 1 and snap.offsets[-1] == len(snap.targets)
    assert snap.targets.min() >= 0 and snap.targets.max() < len(snap)
    assert snap.type_index.max() < len(snap.type_table)
    for column in snap.stored_arrays():
        if len(column):
            with pytest.raises(ValueError, match="read-only"):
                column[0] = 1
    with pytest.raises(AttributeError):
        snap.label = "x"  # type: ignore[misc]


def test_types_view_counts_every_object_once() -> None:
    strings = [f"distinct-{i}" for i in range(20_000)]
    snap = jupyter_memsnap.take(roots=[("strings", "variable", strings)])
    types = snap.types
    assert list(types.columns) == ["type", "module", "count", "size", "retained", "share"]
    assert types["count"].sum() == len(snap)
    assert types["size"].sum() == snap.total_size
    assert types["share"].sum() == pytest.approx(1.0)
    str_row = types[(types["type"] == "str") & (types["module"] == "builtins")].iloc[0]
    assert str_row["count"] >= 20_000
    assert str_row["size"] >= sum(sys.getsizeof(s) for s in strings)
    assert types["size"].is_monotonic_decreasing


def test_variables_view_reports_shallow_and_reachable_sizes() -> None:
    arr = np.zeros(1_000_000)
    frame = pd.DataFrame({"x": np.arange(100_000, dtype=np.int64)})
    records = [{"i": i} for i in range(1000)]
    snap = jupyter_memsnap.take(
        roots=[
            ("arr", "variable", arr),
            ("frame", "variable", frame),
            ("records", "variable", records),
        ]
    )
    v = snap.variables.set_index("name")
    assert v.loc["arr", "size"] == sys.getsizeof(arr)
    assert v.loc["arr", "reachable"] == sys.getsizeof(arr)
    assert v.loc["frame", "type"] == "pandas.DataFrame"
    assert v.loc["frame", "size"] < 1000, "a DataFrame's own size excludes its columns"
    assert 800_000 <= v.loc["frame", "reachable"] < 900_000
    expected = sys.getsizeof(records) + sum(sys.getsizeof(d) for d in records)
    assert v.loc["records", "reachable"] >= expected


def test_memory_view_explains_the_gap_to_rss() -> None:
    snap = jupyter_memsnap.take()
    m = snap.memory.set_index("measure")
    assert m.loc["RSS", "bytes"] > 0
    assert m.loc["objects", "bytes"] == snap.total_size
    assert m.loc["python objects", "bytes"] + m.loc["native buffers", "bytes"] == snap.total_size
    parts = m[m["level"] == 1]["bytes"]
    assert int(parts.sum()) == m.loc["RSS", "bytes"]  # unattributed is what is left
    assert "fragmentation" in m.loc["unattributed", "note"]


def test_memory_view_off_linux_says_what_it_could_not_read() -> None:
    snap = jupyter_memsnap.take()
    bare = dataclasses.replace(snap, process=ProcessMemory(snap.process.rss, None, None, None))
    m = bare.memory.set_index("measure")
    assert "code and data of libraries" not in m.index and "thread stacks" not in m.index
    note = m.loc["unattributed", "note"]
    assert "mapped files" in note and "thread stacks" in note and "free space" in note
    assert m.loc["unattributed", "bytes"] == snap.process.rss - snap.total_size


def test_modules_and_objects_views() -> None:
    snap = jupyter_memsnap.take()
    mods = snap.modules
    assert mods["size"].sum() == snap.total_size
    assert "numpy" in set(mods["module"])
    objs = snap.objects
    assert len(objs) == len(snap)
    assert objs["size"].sum() == snap.total_size
    assert (objs["id"].to_numpy() == snap.ids).all()
    holder = [np.ones(100_000)]
    row = jupyter_memsnap.take().objects.set_index("id").loc[id(holder)]
    assert row["retained"] >= holder[0].nbytes + sys.getsizeof(holder), "it retains the array"
    del holder


def test_store_resolves_numbers_labels_and_negative_indexes() -> None:
    store = SnapshotStore()
    with pytest.raises(SnapshotError, match="no snapshots"):
        store.get(1)
    a, b = jupyter_memsnap.take("before", roots=[]), jupyter_memsnap.take("after", roots=[])
    assert store.add(a) == 1 and store.add(b) == 2
    assert store.get(-1) is b and store.get("before") is a and store.get("2") is b
    for bad, message in ((3, "does not exist"), (-3, "does not exist"), ("nope", "labelled")):
        with pytest.raises(SnapshotError, match=message):
            store.get(bad)
    store.clear()
    assert store.add(a) == 3, "numbers are never reused"
