"""Every byte counted exactly once: snapshots of numpy and pandas data against the truth
computed independently (``nbytes``, ``sys.getsizeof`` of each element, pandas' own deep
``memory_usage``), through the Python API outside IPython."""

from __future__ import annotations

import gc
import sys
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import jupyter_memsnap
from jupyter_memsnap.capture import heap
from jupyter_memsnap.model.snapshot import Snapshot

pytestmark = pytest.mark.timeout(300)

BIG = 25_000_000  # float64 elements: 200 MB
ROWS = 300_000
TOLERANCE = 0.02


def _frame(n: int, seed: int = 0, strings: str = "python") -> pd.DataFrame:
    """int, float, str (in Python str objects, or in pyarrow buffers: pandas' default where
    pyarrow is installed) and categorical columns."""
    rng = np.random.default_rng(seed)
    text = [f"name-{k:08d}" for k in range(n)]
    return pd.DataFrame(
        {
            "i": np.arange(n, dtype=np.int64),
            "f": rng.random(n),
            "s": pd.array(text, dtype=pd.StringDtype(strings, na_value=np.nan)),
            "c": pd.Categorical(rng.choice(["red", "green", "blue"], n)),
        }
    )


@pytest.fixture(scope="module", autouse=True)
def warm() -> None:
    """Import and cache what a first snapshot or a first frame imports lazily, so that the
    difference between two snapshots in a test is what the test made."""
    frame = _frame(100)
    snap = jupyter_memsnap.take(roots=[("frame", "variable", frame)])
    for view in ("types", "variables", "memory", "modules", "objects"):
        getattr(snap, view)
    _ = frame.memory_usage(deep=True), frame["s"].array, frame["c"].array.categories
    del frame, snap
    gc.collect()


@pytest.fixture(params=["c", pytest.param("python", marks=pytest.mark.slow)])
def engine(request: pytest.FixtureRequest) -> str:
    """Both walkers must give the same truths (the compiled one when it is built)."""
    if request.param == "c" and not heap.HAVE_COMPILED:
        pytest.skip("compiled walker not built")
    return str(request.param)


def _take(engine: str, **named: Any) -> Snapshot:
    roots = [(name, "variable", obj) for name, obj in named.items()]
    snap = jupyter_memsnap.take(roots=roots, engine=engine)
    assert snap.engine == engine
    return snap


def _buffers(snap: Snapshot) -> int:
    memory = snap.memory.set_index("measure")["bytes"]
    return int(memory["native buffers"])


def _variables(snap: Snapshot) -> pd.DataFrame:
    return snap.variables.set_index("name")


def _native(snap: Snapshot) -> dict[int, int]:
    return dict(zip(snap.native_index.tolist(), snap.native_bytes.tolist(), strict=True))


def _within(value: int, truth: int, tolerance: float = TOLERANCE) -> bool:
    return abs(value - truth) <= tolerance * truth


def _string_truth(strings: np.ndarray) -> int:
    """Bytes of an object array of str: its own (header + pointers) and each string's, once."""
    unique = {id(s): s for s in strings}
    assert all(type(s) is str for s in unique.values())
    return sys.getsizeof(strings) + sum(sys.getsizeof(s) for s in unique.values())


def _sizes_of(snap: Snapshot, objects: Any) -> np.ndarray:
    """The snapshot's size of each object (every one must be in the snapshot)."""
    ids = np.array([id(o) for o in objects], dtype=np.uint64)
    rows = pd.Index(snap.ids).get_indexer(ids)  # snap.ids: the id of each row
    assert (rows >= 0).all(), f"{int((rows < 0).sum())} objects are missing from the snapshot"
    return snap.sizes[rows]


# ----------------------------------------------------------------------------- numpy


def test_a_200_mb_array_and_its_view_count_the_buffer_once(engine: str) -> None:
    before = _take(engine)
    big = np.ones(BIG)
    view = big[1:-1]
    assert view.base is big and not view.flags.owndata
    snap = _take(engine, big=big, view=view)

    big_row, view_row = snap.row(id(big)), snap.row(id(view))
    assert big_row >= 0 and view_row >= 0
    # shallow sizes: the owner carries its buffer, the view only its header
    assert snap.sizes[big_row] == sys.getsizeof(big)
    assert sys.getsizeof(big) - big.nbytes < 1000
    assert snap.sizes[view_row] == sys.getsizeof(view) < 1000
    native = _native(snap)
    assert native[big_row] == big.nbytes
    assert view_row not in native

    # the 200 MB appear once among the native buffers and once in the heap total
    assert _buffers(snap) >= big.nbytes
    assert _within(_buffers(snap) - _buffers(before), big.nbytes)
    made = sys.getsizeof(big) + sys.getsizeof(view)
    assert _within(snap.total_size - before.total_size, made)

    # and once in each variable's reachable size
    variables = _variables(snap)
    assert variables.loc["big", "size"] == sys.getsizeof(big)
    assert variables.loc["big", "reachable"] == sys.getsizeof(big)
    assert variables.loc["view", "size"] == sys.getsizeof(view)
    assert variables.loc["view", "reachable"] == sys.getsizeof(view) + sys.getsizeof(big)


def test_an_object_array_of_distinct_strings_counts_each_string_once(engine: str) -> None:
    before = _take(engine)
    strings = np.array([f"item-{k}-{'x' * (k % 13)}" for k in range(ROWS)], dtype=object)
    assert len({id(s) for s in strings}) == ROWS
    truth = _string_truth(strings)
    snap = _take(engine, strings=strings)

    row = snap.row(id(strings))
    assert snap.sizes[row] == sys.getsizeof(strings)  # header and pointers, no elements
    np.testing.assert_array_equal(_sizes_of(snap, strings), [sys.getsizeof(s) for s in strings])
    assert _variables(snap).loc["strings", "reachable"] == truth
    assert _within(snap.total_size - before.total_size, truth)


def test_an_object_array_repeating_one_string_counts_it_once(engine: str) -> None:
    text = "repeated " * 1000
    same = np.array([text] * 10_000, dtype=object)
    snap = _take(engine, same=same)
    assert _variables(snap).loc["same", "reachable"] == sys.getsizeof(same) + sys.getsizeof(text)


def test_two_variables_sharing_one_array_count_it_once(engine: str) -> None:
    before = _take(engine)
    shared = np.ones(5_000_000)  # 40 MB
    alias = shared
    in_dict = {"data": shared}
    in_list = [shared]
    snap = _take(engine, shared=shared, alias=alias, in_dict=in_dict, in_list=in_list)

    row = snap.row(id(shared))
    assert [r.index for r in snap.roots if r.name in ("shared", "alias")] == [row, row]
    # the total grows by one array (and two small containers), not by two or four arrays
    made = sys.getsizeof(shared) + sys.getsizeof(in_dict) + sys.getsizeof(in_list)
    assert _within(snap.total_size - before.total_size, made)
    assert _within(_buffers(snap) - _buffers(before), shared.nbytes)
    variables = _variables(snap)
    for name in ("shared", "alias"):
        assert variables.loc[name, "reachable"] == sys.getsizeof(shared)
    assert variables.loc["in_dict", "reachable"] >= sys.getsizeof(shared) + sys.getsizeof(in_dict)
    assert variables.loc["in_list", "reachable"] == sys.getsizeof(shared) + sys.getsizeof(in_list)


# ----------------------------------------------------------------------------- pandas


def test_pandas_string_columns_are_what_these_tests_assume() -> None:
    """The truths below depend on how pandas stores a column of str in each storage."""
    python = _frame(10)["s"].array
    assert isinstance(python._ndarray, np.ndarray)  # the str objects in an object ndarray
    assert python._ndarray.dtype == object
    arrow = _frame(10, strings="pyarrow")["s"].array
    assert isinstance(arrow._pa_array, pa.ChunkedArray)  # offsets and bytes in arrow buffers


def test_a_dataframe_counts_every_column_once(engine: str) -> None:
    before = _take(engine)
    df = _frame(ROWS)
    strings = df["s"].array
    cat = df["c"].array
    assert isinstance(cat, pd.Categorical)
    truths = {
        "i": df["i"].to_numpy().nbytes,
        "f": df["f"].to_numpy().nbytes,
        # an object ndarray of distinct str: pointers, then each string's own size
        "s": strings._ndarray.nbytes + sum(sys.getsizeof(s) for s in strings._ndarray),
        # int8 codes, and the categories (an Index of three strings)
        "c": cat.codes.nbytes + cat.categories.memory_usage(deep=True),
    }
    # pandas' own deep measure agrees column by column (a check on the truths themselves)
    usage = df.memory_usage(deep=True, index=False)
    for column, truth in truths.items():
        assert usage[column] == truth, column
    truth = sum(truths.values()) + df.index.memory_usage(deep=True)

    snap = _take(engine, df=df)
    # every string is in the snapshot with its own size
    np.testing.assert_array_equal(
        _sizes_of(snap, strings._ndarray), [sys.getsizeof(s) for s in strings._ndarray]
    )
    # pandas objects count their own header, not pandas' deep __sizeof__ (that would count
    # the data a second time)
    assert sys.getsizeof(df) >= truth  # DataFrame.__sizeof__ is pandas' deep measure
    for obj in (df, strings, cat):
        assert _sizes_of(snap, [obj])[0] < 1000, type(obj)
    # each numeric column's data once
    for column in ("i", "f"):
        values = df[column].to_numpy()
        owner = values if values.base is None else values.base
        while isinstance(owner, np.ndarray) and owner.base is not None:
            owner = owner.base
        row = snap.row(id(owner))
        assert row >= 0, column
        assert _native(snap).get(row) == owner.nbytes

    reachable = int(_variables(snap).loc["df", "reachable"])
    assert reachable >= sum(truths.values())
    assert _within(reachable, truth)
    assert _within(snap.total_size - before.total_size, truth)


def test_an_arrow_string_column_counts_its_buffers_once(engine: str) -> None:
    before = _take(engine)
    df = _frame(ROWS, strings="pyarrow")
    chunked = df["s"].array._pa_array
    buffers = {b.address: b.size for c in chunked.chunks for b in c.buffers() if b is not None}
    arrow = sum(buffers.values())
    usage = df.memory_usage(deep=True, index=False)
    # pandas' own measure of the column counts the bytes in use; a buffer may be padded
    assert arrow - 64 <= usage["s"] <= arrow
    truth = int(usage.sum()) - int(usage["s"]) + arrow + df.index.memory_usage(deep=True)

    snap = _take(engine, df=df)
    assert _native(snap).get(snap.row(id(chunked))) == arrow
    assert _sizes_of(snap, [chunked])[0] == arrow + object.__sizeof__(chunked) + heap.GC_HEAD
    reachable = int(_variables(snap).loc["df", "reachable"])
    assert reachable >= int(usage.sum())
    assert _within(reachable, truth)
    assert _within(snap.total_size - before.total_size, truth)
