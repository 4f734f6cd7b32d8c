"""Native buffers that ``__sizeof__`` does not report, added to the objects that own them.

A small registry maps an owner type, named by module and qualname, to a function listing the
buffers an instance keeps alive as ``(address, bytes)`` pairs. The walk reports the
instances it met; their buffers are then added to their shallow sizes, each buffer once (by
address, for the first owner in row order) and never when it lies inside memory an object's
size already counts: a numpy array's or a bytearray's data, a bytes object
(``pa.array(ndarray)`` and ``pa.py_buffer(b)`` share it). The
registry never imports a library: an owner type counts only once its module is loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

Buffers = Callable[[Any], Iterable[tuple[int, int]]]

_SIZERS: dict[tuple[str, str], Buffers] = {}


def register(module: str, qualname: str, buffers: Buffers) -> None:
    """Count ``buffers(obj)`` for every instance of ``module.qualname`` and its subclasses."""
    _SIZERS[(module, qualname)] = buffers


def unregister(module: str, qualname: str) -> None:
    """Stop counting buffers for ``module.qualname`` (no error if it was not registered)."""
    _SIZERS.pop((module, qualname), None)


def _resolve(module: str, qualname: str) -> type | None:
    obj: Any = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, type) else None


def owner_types() -> tuple[type, ...]:
    """The registered types whose modules are loaded."""
    found = (_resolve(module, qualname) for module, qualname in _SIZERS)
    return tuple(tp for tp in found if tp is not None)


def _sizer(tp: type) -> Buffers | None:
    for base in tp.__mro__:
        fn = _SIZERS.get((base.__module__, base.__qualname__))
        if fn is not None:
            return fn
    return None


def _inside(address: int, starts: np.ndarray, ends: np.ndarray) -> bool:
    k = int(np.searchsorted(starts, address, side="right")) - 1
    return k >= 0 and address < int(ends[k])


def account(
    owners: Sequence[object],
    owner_rows: np.ndarray,
    counted_address: np.ndarray,
    counted_bytes: np.ndarray,
    in_object: Callable[[int], bool] = lambda address: False,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows and bytes of the owners' buffers, each buffer counted once and none inside memory
    that object sizes already count: the data buffers at ``counted_*`` (numpy arrays',
    bytearrays'), or an object's own memory (``in_object``: a bytes object's data); plus how
    many owners failed."""
    by_start = np.argsort(counted_address, kind="stable")
    starts = np.asarray(counted_address, np.uint64)[by_start].astype(np.int64)
    ends = starts + np.asarray(counted_bytes, np.int64)[by_start]
    seen: set[int] = set()
    rows: list[int] = []
    sizes: list[int] = []
    errors = 0
    for row, obj in sorted(zip(owner_rows.tolist(), owners, strict=True), key=lambda x: x[0]):
        fn = _sizer(type(obj))
        if fn is None:
            continue
        total = 0
        try:
            for address, size in fn(obj):
                if (
                    size > 0
                    and address not in seen
                    and not _inside(address, starts, ends)
                    and not in_object(address)
                ):
                    seen.add(address)
                    total += size
        except Exception:
            errors += 1
            continue
        if total:
            rows.append(row)
            sizes.append(total)
    return np.asarray(rows, np.uint32), np.asarray(sizes, np.int64), errors


def _arrow_array(arr: Any) -> Iterator[tuple[int, int]]:
    for buf in arr.buffers():
        if buf is not None:
            yield buf.address, buf.size
    dictionary = getattr(arr, "dictionary", None)
    if dictionary is not None:
        yield from _arrow_array(dictionary)


def _arrow_chunked(chunked: Any) -> Iterator[tuple[int, int]]:
    for chunk in chunked.chunks:
        yield from _arrow_array(chunk)


def _arrow_columns(table: Any) -> Iterator[tuple[int, int]]:
    for column in table.columns:
        yield from (_arrow_chunked if hasattr(column, "chunks") else _arrow_array)(column)


def _polars(frame_or_series: Any) -> Iterator[tuple[int, int]]:
    """A polars frame's or series' buffers, through its zero-copy Arrow export: the same
    addresses for frames that share columns, and none over numpy memory they wrap."""
    polars = sys.modules["polars"]
    exported = frame_or_series.to_arrow(compat_level=polars.CompatLevel.newest())
    if hasattr(exported, "columns"):
        yield from _arrow_columns(exported)
    elif hasattr(exported, "chunks"):
        yield from _arrow_chunked(exported)
    else:
        yield from _arrow_array(exported)


_LAZY_UNSAFE = (" SCAN ", "SCAN [", "PYTHON")
"""Plan nodes that resolving a plan could run: file and cloud scans, Python functions."""


def _polars_lazy(lazy: Any) -> Iterator[tuple[int, int]]:
    """The in-memory frames a lazy query plan holds (``df.lazy()``, joins with them), found
    in its logical plan. Plans that scan files or call Python are left alone: resolving
    them could read a remote file's metadata or run user code."""
    plan = lazy._ldf
    described = plan.describe_plan()
    if "DF [" not in described or any(mark in described for mark in _LAZY_UNSAFE):
        return
    frame = sys.modules["polars"].DataFrame
    nodes = plan.visit()
    todo = [nodes.get_node()]
    while todo:
        nodes.set_node(todo.pop())
        node = nodes.view_current_node()
        if type(node).__name__ == "DataFrameScan":
            yield from _polars(frame._from_pydf(node.df))
        todo += nodes.get_inputs()


_PIL_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
"""Bytes per pixel in Pillow's storage (Storage.c): 4 for every other mode ("RGB" too)."""


def _capsule_address(capsule: object) -> int:
    import ctypes

    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype, name.argtypes = ctypes.c_void_p, [ctypes.py_object]
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.restype, pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_void_p]
    return int(pointer(capsule, name(capsule)) or 0)


def _pil_image(image: Any) -> Iterator[tuple[int, int]]:
    """A Pillow image's pixels (none until it is loaded), keyed by its core's address."""
    core = getattr(image, "_im", None)
    if core is None or not hasattr(core, "ptr"):
        return
    width, height = core.size
    yield _capsule_address(core.ptr), width * height * _PIL_PIXEL_BYTES.get(core.mode, 4)


def _agg_renderer(renderer: Any) -> Iterator[tuple[int, int]]:
    """matplotlib's Agg renderer: its RGBA canvas, width × height × 4 bytes."""
    view = memoryview(renderer)
    if view.nbytes:
        yield int(np.frombuffer(view, np.uint8).ctypes.data), view.nbytes


def _sklearn_tree(tree: Any) -> Iterator[tuple[int, int]]:
    """A fitted tree's node and value arrays, allocated for ``capacity`` nodes."""
    nodes, values = tree.children_left.base, tree.value
    yield int(nodes.ctypes.data), tree.capacity * nodes.dtype.itemsize
    stride = values.itemsize * int(np.prod(values.shape[1:]))
    yield int(values.ctypes.data), tree.capacity * stride


def _ctypes_data(data: Any) -> Iterator[tuple[int, int]]:
    """A ctypes instance's buffer, when it owns one outside itself (``sys.getsizeof`` leaves
    it out: a ``(c_char * 10**9)()`` is 136 bytes to it)."""
    import ctypes

    address, size = ctypes.addressof(data), ctypes.sizeof(data)
    inline = id(data) <= address < id(data) + type(data).__basicsize__
    if data._b_needsfree_ and not inline:
        yield address, size


def _torch_tensor(tensor: Any) -> Iterator[tuple[int, int]]:
    """A CPU tensor's storage (GPU memory is not in RSS: a process-level row has it)."""
    if tensor.device.type == "cpu":
        storage = tensor.untyped_storage()
        yield int(storage.data_ptr()), int(storage.nbytes())


register("pyarrow.lib", "Array", _arrow_array)
register("pyarrow.lib", "ChunkedArray", _arrow_chunked)
register("pyarrow.lib", "RecordBatch", _arrow_columns)
register("pyarrow.lib", "Table", _arrow_columns)
register("polars.dataframe.frame", "DataFrame", _polars)
register("polars.series.series", "Series", _polars)
register("polars.lazyframe.frame", "LazyFrame", _polars_lazy)
register("PIL.Image", "Image", _pil_image)
register("matplotlib.backends._backend_agg", "RendererAgg", _agg_renderer)
register("sklearn.tree._tree", "Tree", _sklearn_tree)
register("torch", "Tensor", _torch_tensor)
for _ctypes_kind in ("Array", "Structure", "Union"):
    register("_ctypes", _ctypes_kind, _ctypes_data)
