"""Merges of sorted ids, the kernels of diffs and of cells of birth: compiled (``_merges.c``)
where built, else numpy, with the same results (the tests compare both)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..compiled import load

_merges: Any = load(f"{__package__}._merges", "sorted-id merges")

HAVE_COMPILED: bool = _merges is not None
"""Whether the compiled merges are built."""


def _compiled(choice: bool | None) -> bool:
    return HAVE_COMPILED if choice is None else choice


def match_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Position in ascending ``a`` of each id of ascending ``b``, or -1 (a linear merge)."""
    a, b = np.ascontiguousarray(a, np.uint64), np.ascontiguousarray(b, np.uint64)
    if HAVE_COMPILED:
        return np.frombuffer(_merges.match(a, b), np.int64)
    if not len(a):
        return np.full(len(b), -1, np.int64)
    pos = np.minimum(np.searchsorted(a, b), len(a) - 1)
    return np.where(a[pos] == b, pos, -1)


def survivors(
    ids_a: np.ndarray,
    order_a: np.ndarray,
    type_a: np.ndarray,
    ids_b: np.ndarray,
    order_b: np.ndarray,
    type_b: np.ndarray,
    *,
    compiled: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Objects alive in both snapshots (same id and same type code per row): their rows in
    each, in ascending id order, and a survived mask over the rows of each."""
    cols = [
        np.ascontiguousarray(x, dtype)
        for x, dtype in zip(
            (ids_a, order_a, type_a, ids_b, order_b, type_b),
            (np.uint64, np.uint32, np.int32) * 2,
            strict=True,
        )
    ]
    if _compiled(compiled):
        ra, rb, la, lb = _merges.survivors(*cols)
        return (
            np.frombuffer(ra, np.int64),
            np.frombuffer(rb, np.int64),
            np.frombuffer(la, bool),
            np.frombuffer(lb, bool),
        )
    ids_a, order_a, type_a, ids_b, order_b, type_b = cols
    pos = match_sorted(ids_a, ids_b)
    same_id = pos >= 0
    rows_b = order_b[same_id].astype(np.int64)
    rows_a = order_a[pos[same_id]].astype(np.int64)
    same = type_a[rows_a] == type_b[rows_b]
    rows_a, rows_b = rows_a[same], rows_b[same]
    alive_a = np.zeros(len(type_a), dtype=bool)
    alive_a[rows_a] = True
    alive_b = np.zeros(len(type_b), dtype=bool)
    alive_b[rows_b] = True
    return rows_a, rows_b, alive_a, alive_b


def inherit(
    ids_a: np.ndarray,
    types_a: np.ndarray,
    value_a: np.ndarray,
    ids_b: np.ndarray,
    types_b: np.ndarray,
    default: int,
    *,
    compiled: bool | None = None,
) -> np.ndarray:
    """Per id of ascending ``ids_b``: ``value_a`` of the same object in a (same id and type
    code; a's columns in ascending id order), else ``default``."""
    ids_a, ids_b = np.ascontiguousarray(ids_a, np.uint64), np.ascontiguousarray(ids_b, np.uint64)
    types_a, types_b = (
        np.ascontiguousarray(types_a, np.int32),
        np.ascontiguousarray(types_b, np.int32),
    )
    value_a = np.ascontiguousarray(value_a, np.int32)
    if _compiled(compiled):
        return np.frombuffer(
            _merges.inherit(ids_a, types_a, value_a, ids_b, types_b, default), np.int32
        )
    out = np.full(len(ids_b), default, dtype=np.int32)
    pos = match_sorted(ids_a, ids_b)
    seen = pos >= 0
    seen[seen] = types_a[pos[seen]] == types_b[seen]
    out[seen] = value_a[pos[seen]]
    return out


def tally(
    codes: np.ndarray,
    flags: np.ndarray,
    sizes: np.ndarray,
    k: int,
    *,
    compiled: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per code in [0, k): count and bytes of the rows whose flag is false, then true."""
    codes = np.ascontiguousarray(codes, np.int32)
    flags = np.ascontiguousarray(flags, bool)
    sizes = np.ascontiguousarray(sizes, np.int64)
    if _compiled(compiled):
        c, b = _merges.tally(codes, flags, sizes, k)
        counts, bytes_ = np.frombuffer(c, np.int64), np.frombuffer(b, np.int64)
    else:
        key = codes.astype(np.int64) * 2 + flags
        counts = np.bincount(key, minlength=2 * k)
        bytes_ = np.bincount(key, weights=sizes, minlength=2 * k).astype(np.int64)
    return counts[0::2], counts[1::2], bytes_[0::2], bytes_[1::2]
