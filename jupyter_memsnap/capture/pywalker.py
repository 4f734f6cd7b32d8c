"""Pure-Python heap walker: the fallback without the compiled core, and its test oracle.

It follows exactly the algorithm of ``_walker.c`` (see its header comment) and returns the
same columns, so the two can be compared object for object.
"""

from __future__ import annotations

import gc
import sys
import types
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from . import layout

PY_TPFLAGS_HEAPTYPE = 1 << 9
PY_TPFLAGS_HAVE_GC = 1 << 14
PY_TPFLAGS_MANAGED = (1 << 4) if sys.version_info < (3, 12) else (1 << 3) | (1 << 4)
_object_sizeof = object.__sizeof__
_METHOD_DESCRIPTOR = type(object.__sizeof__)
_STATIC_BARE = sys.getsizeof(int) == type.__sizeof__(int)
_HIDES_DEAD = (3, 12) <= sys.version_info[:3] < (3, 12, 6)
_module_dict: Any = vars(types.ModuleType)["__dict__"].__get__


def _is_gc(o: object) -> bool:
    tp = type(o)
    if not tp.__flags__ & PY_TPFLAGS_HAVE_GC:
        return False
    if issubclass(tp, type):  # not isinstance: a GenericAlias passes for its origin
        return bool(o.__flags__ & PY_TPFLAGS_HEAPTYPE)  # type: ignore[attr-defined]
    return True


def _pre_header(o: object, gc_head: int) -> int:
    """What sys.getsizeof adds to __sizeof__ (``ms_pre_header``)."""
    if sys.version_info < (3, 11):
        return gc_head if _is_gc(o) else 0
    tp = type(o)
    if _STATIC_BARE and tp is type and not o.__flags__ & PY_TPFLAGS_HEAPTYPE:  # type: ignore[attr-defined]
        return 0
    flags = tp.__flags__
    extra = gc_head if flags & PY_TPFLAGS_HAVE_GC else 0
    if flags & PY_TPFLAGS_MANAGED:
        extra += 2 * layout.WORD
    return extra


def _c_sizeof(tp: type) -> Any:
    """The nearest C ``__sizeof__`` in tp's MRO that belongs to a base of tp (``c_sizeof``)."""
    mro = layout.type_attr(tp, "__mro__")
    for base in mro:
        if not isinstance(base, type):
            continue
        fn: Any = layout.type_attr(base, "__dict__").get("__sizeof__")
        if type(fn) is _METHOD_DESCRIPTOR and getattr(fn, "__objclass__", None) in mro:
            return fn
    return None


def _raw_sizer(tp: type) -> Callable[[object], int]:
    """What __sizeof__ reports for instances of tp, as the compiled walker asks it."""

    def object_size(o: object) -> int:
        try:
            return _object_sizeof(o)
        except MemoryError:
            raise
        except Exception:
            return tp.__basicsize__

    fn = _c_sizeof(tp)
    if fn is None or fn is _object_sizeof:
        return object_size

    def c_size(o: object) -> int:
        try:
            s = fn(o)
        except MemoryError:
            raise
        except Exception:
            s = -1
        return s if isinstance(s, int) and s >= 0 else object_size(o)

    return c_size


class _TypeInfo(NamedTuple):
    raw: Callable[[object], int]
    kind: str
    values_keys: int  # shared keys of instances owning attribute values, else 0


def _type_info(tp: type, ndarray_type: type | None) -> _TypeInfo:
    kind = ""
    if ndarray_type is not None and issubclass(tp, ndarray_type):
        kind = "ndarray"
    elif ndarray_type is not None and issubclass(tp, np.dtype):
        kind = "dtype"
    elif issubclass(tp, bytearray):
        kind = "bytearray"
    elif tp is dict:
        kind = "dict"
    elif issubclass(tp, dict):
        kind = "dict_subclass"
    elif tp is types.CodeType:
        kind = "code"
    elif issubclass(tp, type):
        kind = "type"
    elif issubclass(tp, types.ModuleType):
        kind = "module"
    return _TypeInfo(_raw_sizer(tp), kind, layout.values_keys(tp))


def _data_address(a: np.ndarray) -> int:
    """Where an array's data lives (ndarray's own descriptor: a subclass cannot override it)."""
    interface: dict[str, Any] = np.ndarray.__array_interface__.__get__(a)
    return int(interface["data"][0])


def _dtype_referents(dt: np.dtype) -> list[object]:
    out: list[object] = []
    if dt.names is not None and dt.fields is not None:
        out += gc.get_referents(dt.fields)
        out.append(dt.names)
    if dt.subdtype is not None:
        out += list(dt.subdtype)
    if dt.metadata is not None:
        out += gc.get_referents(dt.metadata)
    return out


def _referents(o: object, kind: str) -> list[object]:
    """``visit_referents``: tp_traverse and what it leaves out."""
    if kind == "dict":
        items: Any = dict.items(o)  # type: ignore[arg-type]
        return [x for pair in items for x in pair]
    if kind == "module" and _HIDES_DEAD and _module_dict(o).get("__name__") == "_asyncio":
        return [_module_dict(o)]
    refs = gc.get_referents(o) if _is_gc(o) else []
    if kind == "ndarray":
        assert isinstance(o, np.ndarray)
        if o.base is not None:
            refs.append(o.base)
        refs.append(o.dtype)
        if o.dtype == object and o.size and (o.base is None or o.flags.owndata):
            refs.extend(x for x in o.flat)
    elif kind == "dtype":
        refs += _dtype_referents(o)  # type: ignore[arg-type]
    elif kind == "dict_subclass":
        refs += list(dict.keys(o))  # type: ignore[arg-type]
    elif kind == "code":
        refs += layout.code_referents(o)  # type: ignore[arg-type]
    elif kind == "type":
        refs += layout.type_referents(o)  # type: ignore[arg-type]
    return refs


def _native(o: object, kind: str, raw: int) -> tuple[int, int]:
    """(address, bytes) of a data buffer o keeps outside itself (``record_native``)."""
    if kind == "ndarray":
        assert isinstance(o, np.ndarray)
        if not o.flags.owndata:
            return 0, 0
        return _data_address(o), raw - type(o).__basicsize__ - 2 * layout.WORD * o.ndim
    if kind == "bytearray":
        return layout.bytearray_buffer(o)  # type: ignore[arg-type]
    return 0, 0


def walk(
    roots: list[object],
    seeds: list[object],
    exclude_objects: list[object],
    exclude_types: tuple[type, ...],
    ndarray_type: type | None,
    gc_head: int,
    size_hint: int = 0,
    site_fn: Callable[[object], object] | None = None,
    edges: bool = True,
    native_types: tuple[type, ...] = (),
    graph_prefix: str | None = None,
) -> dict[str, Any]:
    """Same contract as ``_walker.walk``; returns numpy arrays instead of buffers (in
    memory: ``graph_prefix`` is not used)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _walk(
            roots,
            seeds,
            exclude_objects,
            exclude_types,
            ndarray_type,
            gc_head,
            site_fn,
            edges,
            native_types,
        )
    finally:
        if was_enabled:
            gc.enable()


def _walk(
    roots: list[object],
    seeds: list[object],
    exclude_objects: list[object],
    exclude_types: tuple[type, ...],
    ndarray_type: type | None,
    gc_head: int,
    site_fn: Callable[[object], object] | None,
    edges: bool,
    native_types: tuple[type, ...],
) -> dict[str, Any]:
    index: dict[int, int] = {}
    marked: set[int] = set()
    barriers: list[object] = []
    objs: list[object] = []
    types_: list[type] = []
    type_index: dict[type, int] = {}
    infos: dict[type, _TypeInfo] = {}
    otype: list[int] = []
    osize: list[int] = []
    offsets = [0]
    targets: list[int] = []
    native_index: list[int] = []
    native_bytes: list[int] = []
    native_address: list[int] = []
    owners: list[object] = []
    owner_rows: list[int] = []

    def barrier(o: object, follow: bool = True) -> None:
        if id(o) not in index and id(o) not in marked:
            marked.add(id(o))
            if follow:
                barriers.append(o)

    def lookup_or_add(o: object) -> int:
        i = index.get(id(o))
        if i is not None:
            return i
        if id(o) in marked:
            return -1
        if type(o) in exclude_types:
            barrier(o)
            return -1
        index[id(o)] = len(objs)
        objs.append(o)
        return len(objs) - 1

    def info_of(tp: type) -> _TypeInfo:
        info = infos.get(tp)
        if info is None:
            info = infos[tp] = _type_info(tp, ndarray_type)
        return info

    def row_type(tp: type) -> int:
        t = type_index.get(tp)
        if t is None:
            t = type_index[tp] = len(types_)
            types_.append(tp)
        return t

    def drain() -> None:
        while len(offsets) <= len(objs):
            i = len(offsets) - 1
            o = objs[i]
            tp = type(o)
            t, info = row_type(tp), info_of(tp)
            raw = info.raw(o)
            size = raw + _pre_header(o, gc_head)
            if info.values_keys:
                size += layout.values_bytes(o, info.values_keys)
            if info.kind == "type":
                size += layout.type_doc_bytes(o)  # type: ignore[arg-type]
            otype.append(t)
            osize.append(size)
            address, buf = _native(o, info.kind, raw)
            if address and buf > 0:
                native_index.append(i)
                native_bytes.append(buf)
                native_address.append(address)
            if native_types and issubclass(tp, native_types):
                owners.append(o)
                owner_rows.append(i)
            for r in _referents(o, info.kind):
                j = lookup_or_add(r)
                if j >= 0 and edges:
                    targets.append(j)
            offsets.append(len(targets))

    for container in (roots, seeds, exclude_objects, exclude_types):
        if len(container):  # an empty tuple is the interpreter's own, not ours
            barrier(container, follow=False)
    for excluded in exclude_objects:
        barrier(excluded)
    root_idx = [lookup_or_add(r) for r in roots]
    drain()

    for seed in seeds:
        if type(seed) in exclude_types:
            barrier(seed)
    queue = list(barriers)
    while queue:
        item = queue.pop()
        for r in _referents(item, info_of(type(item)).kind):
            if id(r) not in index and id(r) not in marked:
                marked.add(id(r))
                queue.append(r)

    unreached: list[int] = []
    for seed in seeds:
        before = len(objs)
        j = lookup_or_add(seed)
        if len(objs) > before:
            unreached.append(j)
            drain()

    sites: list[int] = []
    site_table: list[object] = []
    if site_fn is not None:
        site_ids: dict[object, int] = {}
        for o in objs:
            try:
                tb = site_fn(o)
                sites.append(-1 if tb is None else site_ids.setdefault(tb, len(site_ids)))
            except Exception:
                sites.append(-1)
        site_table = list(site_ids)
    ids = np.array([id(o) for o in objs], dtype=np.uint64)
    order = np.argsort(ids, kind="stable").astype(np.uint32)
    objs.clear()  # drop the references before returning
    return {
        "sorted_ids": ids[order],
        "order": order,
        "types": np.asarray(otype, dtype=np.uint32),
        "sizes": np.asarray(osize, dtype=np.int64),
        "offsets": np.asarray(offsets, dtype=np.uint32),
        "targets": np.asarray(targets, dtype=np.uint32),
        "roots": np.asarray(root_idx, dtype=np.int32),
        "unreached": np.asarray(unreached, dtype=np.uint32),
        "native_index": np.asarray(native_index, dtype=np.uint32),
        "native_bytes": np.asarray(native_bytes, dtype=np.int64),
        "native_address": np.asarray(native_address, dtype=np.uint64),
        "owners": owners,
        "owner_rows": np.asarray(owner_rows, dtype=np.uint32),
        "type_objects": types_,
        "sizeof_errors": 0,
        "sites": np.asarray(sites, dtype=np.int32) if site_fn is not None else None,
        "site_table": site_table,
    }
