"""Native buffers invisible to __sizeof__ (pyarrow's): counted once, on their owner."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import jupyter_memsnap
from jupyter_memsnap.capture import heap, native

ENGINES = ["c", "python"] if heap.HAVE_COMPILED else ["python"]


def _distinct_buffers(*arrays: Any) -> int:
    """Bytes of the distinct buffers behind pyarrow arrays, computed without the registry."""
    seen: dict[int, int] = {}
    for arr in arrays:
        chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
        for chunk in chunks:
            for buf in chunk.buffers():
                if buf is not None:
                    seen[buf.address] = buf.size
    return sum(seen.values())


def _row(raw: heap.RawHeap, obj: object) -> int:
    return int(raw.order[np.searchsorted(raw.sorted_ids, np.uint64(id(obj)))])


def _owner_bytes(raw: heap.RawHeap, *objs: object) -> int:
    """Native bytes the capture attributes to the rows of objs."""
    rows = {_row(raw, o) for o in objs}
    return sum(int(b) for r, b in zip(raw.native_index, raw.native_bytes, strict=True) if r in rows)


def _capture(engine: str, **roots: object) -> heap.RawHeap:
    named = [(name, "variable", obj) for name, obj in roots.items()]
    return heap.capture(named, seeds=[], include_process_roots=False, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_an_arrow_backed_frame_is_counted_with_its_buffers(engine: str) -> None:
    frame = pd.DataFrame(
        {
            "s": pd.Series([f"value-{i}" for i in range(50_000)], dtype="string[pyarrow]"),
            "n": pd.Series(np.arange(50_000), dtype="int64[pyarrow]"),
        }
    )
    arrays = [frame[c].array._pa_array for c in frame.columns]
    truth = _distinct_buffers(*arrays)
    assert truth > 1_000_000
    raw = _capture(engine, frame=frame)
    assert _owner_bytes(raw, *arrays) == truth
    snap = jupyter_memsnap.take(roots=[("frame", "variable", frame)], engine=engine)
    reachable = int(snap.variables.set_index("name").loc["frame", "reachable"])
    assert truth <= reachable <= truth + 100_000, "the frame's own Python objects are small"


@pytest.mark.parametrize("engine", ENGINES)
def test_buffers_shared_by_slices_and_tables_count_once(engine: str) -> None:
    chunked = pa.chunked_array([pa.array([f"x{i}" for i in range(20_000)])] * 3)
    table = pa.table({"a": chunked, "b": pa.array(np.arange(60_000))})
    view = chunked.slice(1000, 5000)
    column = table.column("b")
    truth = _distinct_buffers(chunked, *table.columns)
    raw = _capture(engine, chunked=chunked, table=table, view=view, column=column)
    assert int(raw.native_bytes.sum()) == truth
    assert _owner_bytes(raw, view, column) == 0, "the first owner in row order has them"


@pytest.mark.parametrize("engine", ENGINES)
def test_arrow_over_numpy_memory_is_the_arrays_not_counted_twice(engine: str) -> None:
    data = np.arange(1_000_000, dtype=np.int64)
    shared = pa.array(data)  # zero-copy: the buffer is numpy's
    assert shared.buffers()[1].address == data.ctypes.data
    raw = _capture(engine, data=data, shared=shared)
    assert int(raw.native_bytes.sum()) == data.nbytes
    assert _owner_bytes(raw, shared) == 0


class _Owner:
    def __init__(self, address: int, size: int) -> None:
        self.address, self.size = address, size


def _owner_buffers(owner: _Owner) -> Iterator[tuple[int, int]]:
    if owner.size < 0:
        raise RuntimeError("a sizer that fails")
    yield owner.address, owner.size


@pytest.fixture
def owner_registered() -> Iterator[None]:
    native.register(__name__, "_Owner", _owner_buffers)
    yield
    native.unregister(__name__, "_Owner")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.usefixtures("owner_registered")
def test_the_registry_counts_a_buffer_once_and_survives_a_failing_sizer(engine: str) -> None:
    first, again, other, broken = (
        _Owner(10**12, 500),
        _Owner(10**12, 500),
        _Owner(7, 30),
        _Owner(1, -1),
    )
    raw = _capture(engine, owners=[first, again, other, broken])
    assert sorted([_owner_bytes(raw, first), _owner_bytes(raw, again)]) == [0, 500]
    assert _owner_bytes(raw, other) == 30
    assert _owner_bytes(raw, broken) == 0
    assert raw.sizeof_errors == 1
    native.unregister(__name__, "_Owner")
    plain = _capture(engine, owners=[first, again, other, broken])
    for obj in (first, again, other, broken):
        added = int(raw.sizes[_row(raw, obj)]) - int(plain.sizes[_row(plain, obj)])
        assert added == _owner_bytes(raw, obj)


@pytest.mark.usefixtures("owner_registered")
def test_c_and_python_capture_the_same_owners() -> None:
    if not heap.HAVE_COMPILED:
        pytest.skip("compiled walker not built")
    owners = [_Owner(1000 + 8 * (i % 5), 64) for i in range(20)]
    arrays = [pa.array(np.arange(i, i + 100)) for i in range(3)]
    c = _capture("c", owners=owners, arrays=arrays)
    p = _capture("python", owners=owners, arrays=arrays)

    def per_object(raw: heap.RawHeap) -> list[tuple[int, int]]:
        return [(int(raw.sizes[_row(raw, o)]), _owner_bytes(raw, o)) for o in owners + arrays]

    assert per_object(c) == per_object(p)
    assert sum(b for _, b in per_object(c)) == 5 * 64 + sum(a.nbytes for a in arrays)


def test_the_registry_imports_nothing() -> None:
    code = (
        "import sys; from jupyter_memsnap.capture import native;"
        "print({t.__module__ for t in native.owner_types()},"
        "      [m for m in ('pyarrow', 'polars', 'PIL', 'torch', 'sklearn') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["{'_ctypes'}", "[]"]  # numpy imports ctypes


def test_a_snapshot_reports_native_buffers_in_its_memory_table() -> None:
    chunked = pa.chunked_array([pa.array(np.arange(100_000, dtype=np.float64) * 1.5)])
    snap = jupyter_memsnap.take(roots=[("chunked", "variable", chunked)])
    memory = snap.memory.set_index("measure")["bytes"]
    assert memory["native buffers"] >= chunked.nbytes
    row = snap.variables.set_index("name").loc["chunked"]
    assert row["reachable"] >= chunked.nbytes


@pytest.mark.parametrize("engine", ENGINES)
def test_arrow_over_python_bytes_and_bytearray_memory_is_not_counted_twice(engine: str) -> None:
    blob, mutable = bytes(range(256)) * 4000, bytearray(b"m" * 500_000)
    over_blob, over_mutable = pa.py_buffer(blob), pa.py_buffer(mutable)
    arrays = [
        pa.Array.from_buffers(pa.uint8(), len(blob), [None, over_blob]),
        pa.Array.from_buffers(pa.uint8(), len(mutable), [None, over_mutable]),
    ]
    raw = _capture(engine, blob=blob, mutable=mutable, arrays=arrays)
    assert _owner_bytes(raw, *arrays) == 0
    assert int(raw.sizes[_row(raw, blob)]) == sys.getsizeof(blob)
    assert _owner_bytes(raw, mutable) == bytearray.__alloc__(mutable)
