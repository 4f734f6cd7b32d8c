"""Pure-Python heap walker: the fallback without the compiled core, and its test oracle.

It follows exactly the algorithm of ``_walker.c`` (see its header comment) and returns the
same columns, so the two can be compared object for object.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

PY_TPFLAGS_HEAPTYPE = 1 << 9
PY_TPFLAGS_HAVE_GC = 1 << 14
PY_TPFLAGS_MANAGED = (1 << 4) if sys.version_info < (3, 12) else (1 << 3) | (1 << 4)
_object_sizeof = object.__sizeof__
_C_CALLABLES = (type(object.__sizeof__), type(len))
_NDARRAY_FIXED = np.empty(1)[:].__sizeof__() - 2 * np.dtype(np.intp).itemsize


def _is_gc(o: object) -> bool:
    tp = type(o)
    if not tp.__flags__ & PY_TPFLAGS_HAVE_GC:
        return False
    if isinstance(o, type):
        return bool(o.__flags__ & PY_TPFLAGS_HEAPTYPE)
    return True


def _pre_header(o: object, gc_head: int) -> int:
    """What sys.getsizeof adds to __sizeof__ (CPython's _PyType_PreHeaderSize)."""
    if sys.version_info < (3, 11):
        return gc_head if _is_gc(o) else 0
    flags = type(o).__flags__
    extra = gc_head if flags & PY_TPFLAGS_HAVE_GC else 0
    if flags & PY_TPFLAGS_MANAGED:
        extra += 2 * 8
    return extra


def _sizer(tp: type) -> Callable[[object, int], int]:
    """How to size instances of tp: C __sizeof__ as sys.getsizeof does, else object's."""
    fn = None
    for base in tp.__mro__:
        if "__sizeof__" in base.__dict__:
            fn = base.__dict__["__sizeof__"]
            break
    if fn is not None and fn is not _object_sizeof and isinstance(fn, _C_CALLABLES):

        def c_size(o: object, gc_head: int) -> int:
            try:
                return sys.getsizeof(o)
            except Exception:
                return _object_sizeof(o) + _pre_header(o, gc_head)

        return c_size
    return lambda o, gc_head: _object_sizeof(o) + _pre_header(o, gc_head)


def _data_address(a: np.ndarray) -> int:
    """Where an array's data lives (ndarray's own descriptor: a subclass cannot override it)."""
    interface: dict[str, Any] = np.ndarray.__array_interface__.__get__(a)
    return int(interface["data"][0])


def _hidden_referents(o: object, is_ndarray: bool) -> list[object]:
    if is_ndarray:
        assert isinstance(o, np.ndarray)
        out: list[object] = []
        if o.base is not None:
            out.append(o.base)
        if o.dtype == object and o.size:
            out.extend(x for x in o.flat)
        return out
    if isinstance(o, type) and not _is_gc(o):
        return gc.get_referents(o.__dict__)
    return []


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
) -> dict[str, Any]:
    """Same contract as ``_walker.walk``; returns numpy arrays instead of buffers."""
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
    types: list[type] = []
    type_index: dict[type, int] = {}
    type_info: list[tuple[Callable[[object, int], int], bool]] = []
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

    def drain() -> None:
        while len(offsets) <= len(objs):
            i = len(offsets) - 1
            o = objs[i]
            tp = type(o)
            t = type_index.get(tp)
            if t is None:
                t = type_index[tp] = len(types)
                types.append(tp)
                is_nd = ndarray_type is not None and issubclass(tp, ndarray_type)
                type_info.append((_sizer(tp), is_nd))
            size_fn, is_nd = type_info[t]
            size = size_fn(o, gc_head)
            otype.append(t)
            osize.append(size)
            if is_nd:
                assert isinstance(o, np.ndarray)
                buf = size - _pre_header(o, gc_head) - _NDARRAY_FIXED - 2 * 8 * o.ndim
                if o.flags.owndata and buf > 0:
                    native_index.append(i)
                    native_bytes.append(buf)
                    native_address.append(_data_address(o))
            if native_types and issubclass(tp, native_types):
                owners.append(o)
                owner_rows.append(i)
            refs = gc.get_referents(o) if _is_gc(o) else []
            refs.extend(_hidden_referents(o, is_nd))
            for r in refs:
                j = lookup_or_add(r)
                if j >= 0 and edges:
                    targets.append(j)
            offsets.append(len(targets))

    for container in (roots, seeds, exclude_objects, exclude_types):
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
        is_nd = ndarray_type is not None and isinstance(item, ndarray_type)
        refs = gc.get_referents(item) if _is_gc(item) else []
        for r in refs + _hidden_referents(item, is_nd):
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
        "offsets": np.asarray(offsets, dtype=np.int64),
        "targets": np.asarray(targets, dtype=np.uint32),
        "roots": np.asarray(root_idx, dtype=np.int32),
        "unreached": np.asarray(unreached, dtype=np.uint32),
        "native_index": np.asarray(native_index, dtype=np.uint32),
        "native_bytes": np.asarray(native_bytes, dtype=np.int64),
        "native_address": np.asarray(native_address, dtype=np.uint64),
        "owners": owners,
        "owner_rows": np.asarray(owner_rows, dtype=np.uint32),
        "type_objects": types,
        "sizeof_errors": 0,
        "sites": np.asarray(sites, dtype=np.int32) if site_fn is not None else None,
        "site_table": site_table,
    }
