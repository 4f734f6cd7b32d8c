"""Walk the heap of this process into plain columns (no IPython here, no references kept)."""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..compiled import load
from ..model import spill
from ..model.compact import Sizes, SortedIds
from . import frames, interpreter, layout, native, pyplot, pywalker, selfcheck

_walker: Any = load(f"{__package__}._walker", "heap walker")
HAVE_COMPILED = _walker is not None
"""Whether the compiled walker is built (``use_compiled()`` also checks that it works)."""
_checked: list[bool] = []  # the self-check's verdict, once it has run

GC_HEAD = sys.getsizeof([]) - [].__sizeof__()
_last_count = [0]  # objects in the previous walk: sizes the next walk's tables up front
"""Bytes sys.getsizeof adds to a GC object's __sizeof__ (the GC header)."""


@dataclass(frozen=True)
class RawRoot:
    """A root as captured: a name in notebook words, a kind, the object's row (or -1), and
    the rows of the containers whose reference is this name (a variable's namespace dict)."""

    name: str
    kind: str
    index: int
    via: tuple[int, ...] = ()


NamedRoot = tuple[str, str, object] | tuple[str, str, object, tuple[object, ...]]


@dataclass(frozen=True)
class RawHeap:
    """Every live object as columns (one row per object, in walk order) with the reference
    graph in CSR form; ``sorted_ids[k]`` is the id of row ``order[k]``, ascending. Ids and
    sizes are kept compact from the start: the capture's peak is the walk's."""

    id_column: SortedIds  # ascending
    order: np.ndarray  # uint32: rows by ascending id
    types: np.ndarray  # int32 index into type_module / type_qualname
    size_column: Sizes  # shallow bytes, 4 per row
    offsets: np.ndarray  # uint32, len n + 1
    targets: np.ndarray  # int32
    type_module: tuple[str, ...]
    type_qualname: tuple[str, ...]
    type_is_class: np.ndarray  # bool: instances of this type are classes
    roots: tuple[RawRoot, ...]
    native_index: np.ndarray  # uint32 rows owning a native buffer counted in their size
    native_bytes: np.ndarray  # int64
    seconds: float
    engine: str
    sizeof_errors: int
    sites: np.ndarray | None = None  # int32 per row: index into site_table, -1 unknown
    site_table: tuple[tuple[tuple[str, int], ...], ...] = ()  # tracemalloc frames, newest first

    @property
    def sorted_ids(self) -> np.ndarray:
        """The ids, ascending, uint64 (decoded: a new array)."""
        return self.id_column.decode()

    @property
    def sizes(self) -> np.ndarray:
        """Shallow bytes per row, int64 (decoded: a new array)."""
        return self.size_column.decode()


def type_names(tp: type) -> tuple[str, str]:
    """Module and qualname, the module as users import it: ``pandas`` rather than
    ``pandas.core.frame`` where the package re-exports the type (read from the loaded
    modules' dicts: no import, no module ``__getattr__`` runs)."""
    names = []
    for attr in ("__module__", "__qualname__"):
        try:
            value = layout.type_attr(tp, attr)
        except Exception:
            value = "?"
        names.append(value if isinstance(value, str) else "?")
    module, qualname = names
    parts = module.split(".")
    for k in range(1, len(parts)):
        parent = sys.modules.get(".".join(parts[:k]))
        namespace = getattr(parent, "__dict__", None)
        if isinstance(namespace, dict) and namespace.get(qualname) is tp:
            return ".".join(parts[:k]), qualname
    return module, qualname


def use_compiled() -> bool:
    """Whether to walk with the compiled walker: built, and right on this interpreter (the
    self-check, run once per process; on failure one warning and the pure-Python walker)."""
    if not HAVE_COMPILED:
        return False
    if not _checked:
        found = selfcheck.problems(_walker, GC_HEAD)
        _checked.append(not found)
        if found:
            warnings.warn(
                "jupyter_memsnap: the compiled heap walker failed its self-check on Python "
                f"{sys.version.split()[0]} ({'; '.join(found)}); using the pure-Python walker.",
                RuntimeWarning,
                stacklevel=3,
            )
    return _checked[0]


def last_walk_count() -> int:
    """Objects in this process's last walk (0 before the first)."""
    return _last_count[0]


def process_roots(thread_labels: Mapping[int, str] | None = None) -> list[NamedRoot]:
    """The interpreter's own roots: figures pyplot keeps open, every module, and every
    thread's frames and their locals (our own frames excluded; ``thread_labels`` names
    threads by ident)."""
    roots: list[NamedRoot] = list(pyplot.open_figures())
    roots += [(f"module {name}", "module", mod) for name, mod in list(sys.modules.items())]
    roots += frames.thread_roots(frame_locals_reader(), thread_labels)
    roots += interpreter.interned_roots()
    return roots


def frame_locals_reader() -> frames.FrameLocals:
    """A running frame's variables, read without ``f_locals`` (compiled when built)."""
    reader: frames.FrameLocals = _walker.frame_locals if use_compiled() else layout.frame_locals
    return reader


def _ndarray_type() -> type | None:
    nd = sys.modules.get("numpy")
    return nd.ndarray if nd is not None else None


def capture(
    named_roots: Sequence[NamedRoot] = (),
    *,
    exclude_objects: Sequence[object] = (),
    exclude_types: tuple[type, ...] = (),
    collect: bool = True,
    engine: str = "auto",
    seeds: list[object] | None = None,
    include_process_roots: bool = True,
    thread_labels: Mapping[int, str] | None = None,
    edges: bool = True,
    sites: bool = False,
    graph_to_file: bool = False,
) -> RawHeap:
    """Walk every live object: named roots first, then modules and frames, then the rest.

    ``engine`` is "c", "python" or "auto" (compiled when built). ``seeds`` defaults to
    ``gc.get_objects()``; pass ``[]`` to walk only what the roots reach. ``edges=False``
    takes a census (no reference graph). ``sites=True`` records each object's allocation
    traceback when tracemalloc is tracing. ``graph_to_file=True`` has the compiled walk
    write a large reference graph straight into temporary files (see ``spill``), where a
    kept snapshot holds it anyway: no copy, and no anonymous memory for it.
    """
    if engine == "auto":
        engine = "c" if use_compiled() else "python"
    if engine not in ("c", "python"):
        raise ValueError(f"unknown engine {engine!r}: use 'c', 'python' or 'auto'")
    if engine == "c" and not HAVE_COMPILED:
        raise RuntimeError("the compiled walker is not built")
    if collect:
        gc.collect()
    start = time.perf_counter()
    named = list(named_roots)
    if include_process_roots:
        named += process_roots(thread_labels)
    root_objects = [root[2] for root in named]
    if seeds is None:
        seeds = gc.get_objects()
    args = (
        root_objects,
        seeds,
        [named, named_roots, *exclude_objects],
        tuple(exclude_types),
        _ndarray_type(),
        GC_HEAD,
    )
    # The C function behind tracemalloc.get_object_traceback: frames, newest first.
    raw_traceback = getattr(tracemalloc, "_get_object_traceback", None)
    site_fn = raw_traceback if sites and tracemalloc.is_tracing() else None
    if site_fn is not None and engine == "python":  # the compiled walk does this itself
        site_fn = layout.object_traceback(site_fn, GC_HEAD)
    walk = _walker.walk if engine == "c" else pywalker.walk
    prefix = spill.file_prefix() if graph_to_file else None
    with interpreter.untraced():
        owners = native.owner_types()
        raw: dict[str, Any] = walk(*args, _last_count[0], site_fn, edges, owners, prefix)
        del root_objects, seeds, args
        _add_native_buffers(raw)
        heap = _to_heap(raw, named, engine, time.perf_counter() - start)
    _last_count[0] = len(heap.order)
    return heap


def _column(value: Any, dtype: type) -> np.ndarray:
    if value is None:
        return np.zeros(0, dtype=dtype)
    if isinstance(value, bytes | memoryview):
        return np.frombuffer(value, dtype=dtype)
    arr: np.ndarray = np.ascontiguousarray(value, dtype=dtype)
    arr.setflags(write=False)
    return arr


def _add_native_buffers(raw: dict[str, Any]) -> None:
    """Add the registered owners' native buffers to their sizes and the native columns, then
    drop the owners (the walk handed them over only for this)."""
    owners = raw.pop("owners")
    owner_rows = _column(raw.pop("owner_rows"), np.uint32)
    array_rows = _column(raw["native_index"], np.uint32)
    array_bytes = _column(raw["native_bytes"], np.int64)
    address = _column(raw.pop("native_address"), np.uint64)
    if not owners:
        return
    rows, extra, errors = native.account(
        owners, owner_rows, address, array_bytes, _in_bytes_object(raw)
    )
    del owners
    raw["sizeof_errors"] += errors
    if not len(rows):
        return
    raw["sizes"] = sizes_of(raw).plus(rows, extra)
    index = np.concatenate([array_rows, rows])
    by_row = np.argsort(index, kind="stable")
    raw["native_index"] = index[by_row]
    raw["native_bytes"] = np.concatenate([array_bytes, extra])[by_row]


def _in_bytes_object(raw: dict[str, Any]) -> Callable[[int], bool]:
    """Whether an address lies inside a bytes object of the walk (its data is inline): the
    nearest object at or below it by a binary search over the sorted ids."""
    codes = {i for i, tp in enumerate(raw["type_objects"]) if issubclass(tp, bytes)}
    ids, order = ids_of(raw), _column(raw["order"], np.uint32)
    types, sizes = _column(raw["types"], np.int32), sizes_of(raw)

    def inside(address: int) -> bool:
        k = ids.searchsorted(address, "right") - 1
        if k < 0 or not codes:
            return False
        row = int(order[k])
        return int(types[row]) in codes and address < ids.at(k) + sizes.at(row)

    return inside


def ids_of(raw: dict[str, Any]) -> SortedIds:
    """A walk's ids: the compiled walker's low halves and runs, or the pure-Python walker's
    uint64 column, encoded."""
    if "id_low" not in raw:
        return SortedIds.encode(_column(raw["sorted_ids"], np.uint64))
    high, starts = _column(raw["id_high"], np.uint64), _column(raw["id_starts"], np.int64)
    return SortedIds(high, starts, _column(raw["id_low"], np.uint32))


def sizes_of(raw: dict[str, Any]) -> Sizes:
    """A walk's sizes: the compiled walker's 4-byte column and its sizes of 4 GiB or more,
    or the pure-Python walker's int64 column, encoded."""
    sizes = raw["sizes"]
    if isinstance(sizes, Sizes):
        return sizes
    if "big_rows" not in raw:
        return Sizes.encode(_column(sizes, np.int64))
    rows, values = _column(raw["big_rows"], np.int64), _column(raw["big_sizes"], np.int64)
    return Sizes(_column(sizes, np.uint32), rows, values)


def _row_finder(ids: SortedIds, order: np.ndarray) -> Any:
    def row(obj: object) -> int:
        k = ids.find(id(obj))
        return int(order[k]) if k >= 0 else -1

    return row


def _to_heap(raw: dict[str, Any], named: list[NamedRoot], engine: str, seconds: float) -> RawHeap:
    type_objects: list[type] = raw.pop("type_objects")
    names = [type_names(tp) for tp in type_objects]
    is_class = np.array([issubclass(tp, type) for tp in type_objects], dtype=bool)
    del type_objects
    root_index = _column(raw["roots"], np.int32)
    id_column = ids_of(raw)
    order = _column(raw["order"], np.uint32)
    row = _row_finder(id_column, order)
    roots = tuple(
        RawRoot(
            root[0],
            root[1],
            int(i),
            tuple(r for r in (row(c) for c in (root[3] if len(root) > 3 else ())) if r >= 0),
        )
        for root, i in zip(named, root_index, strict=True)
    )
    unreached = _column(raw["unreached"], np.uint32)
    roots += tuple(RawRoot("held from C", "unreached", int(i)) for i in unreached)
    return RawHeap(
        id_column=id_column,
        order=order,
        types=_column(raw["types"], np.int32),
        size_column=sizes_of(raw),
        offsets=_column(raw["offsets"], np.uint32),
        targets=_column(raw["targets"], np.int32),
        type_module=tuple(m for m, _ in names),
        type_qualname=tuple(q for _, q in names),
        type_is_class=is_class,
        roots=roots,
        native_index=_column(raw["native_index"], np.uint32),
        native_bytes=_column(raw["native_bytes"], np.int64),
        seconds=seconds,
        engine=engine,
        sizeof_errors=int(raw["sizeof_errors"]),
        sites=None if raw["sites"] is None else _column(raw["sites"], np.int32),
        site_table=tuple(raw["site_table"]),  # tracemalloc's: ((filename, lineno), ...)
    )
