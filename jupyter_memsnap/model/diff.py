"""Two snapshots compared object by object: what is new, what was freed, what survived."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from .snapshot import Snapshot

if TYPE_CHECKING:
    import pandas as pd

_diff: Any
try:
    _diff = importlib.import_module("._diff", __package__)
except ImportError:  # pragma: no cover - exercised on machines without a compiler
    _diff = None

HAVE_COMPILED: bool = _diff is not None
"""Whether the compiled merges (``_diff``) are built; else numpy gives the same results."""


def _common_type_codes(
    a: Snapshot, b: Snapshot
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Map both type tables onto one list of (module, qualname) names."""
    names: dict[tuple[str, str], int] = {}
    codes = []
    for table in (a.type_table, b.type_table):
        codes.append(
            np.array(
                [
                    names.setdefault((m, q), len(names))
                    for m, q in zip(table.module, table.qualname, strict=True)
                ],
                dtype=np.int32,
            )
        )
    return codes[0], codes[1], list(names)


def match_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Position in ascending ``a`` of each id of ascending ``b``, or -1 (a linear merge)."""
    a, b = np.ascontiguousarray(a, np.uint64), np.ascontiguousarray(b, np.uint64)
    if HAVE_COMPILED:
        return np.frombuffer(_diff.match(a, b), np.int64)
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
    if HAVE_COMPILED if compiled is None else compiled:
        ra, rb, la, lb = _diff.survivors(*cols)
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
    if HAVE_COMPILED if compiled is None else compiled:
        return np.frombuffer(
            _diff.inherit(ids_a, types_a, value_a, ids_b, types_b, default), np.int32
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
    if HAVE_COMPILED if compiled is None else compiled:
        c, b = _diff.tally(codes, flags, sizes, k)
        counts, bytes_ = np.frombuffer(c, np.int64), np.frombuffer(b, np.int64)
    else:
        key = codes.astype(np.int64) * 2 + flags
        counts = np.bincount(key, minlength=2 * k)
        bytes_ = np.bincount(key, weights=sizes, minlength=2 * k).astype(np.int64)
    return counts[0::2], counts[1::2], bytes_[0::2], bytes_[1::2]


@dataclass(frozen=True, eq=False)
class SnapshotDiff:
    """``after.diff(before)``: objects are the same when id and type name match (CPython reuses
    addresses, so an object freed and replaced by one of the same type at the same address
    counts as a survivor)."""

    before: Snapshot
    after: Snapshot
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def _match(self) -> dict[str, np.ndarray]:
        a, b = self.before, self.after
        code_a, code_b, names = _common_type_codes(a, b)
        t_a = code_a[a.type_index] if len(a) else np.zeros(0, np.int32)
        t_b = code_b[b.type_index] if len(b) else np.zeros(0, np.int32)
        rows_a, rows_b, survived_a, survived_b = survivors(
            a.sorted_ids, a.order, t_a, b.sorted_ids, b.order, t_b
        )
        return {
            "type_a": t_a,
            "type_b": t_b,
            "survived_a": survived_a,
            "survived_b": survived_b,
            "rows_a": rows_a,
            "rows_b": rows_b,
            "names": np.array(names, dtype=object).reshape(-1, 2),
        }

    @property
    def new_rows(self) -> np.ndarray:
        """Rows of the newer snapshot that did not exist in the older one."""
        return np.flatnonzero(~self._match["survived_b"])

    @property
    def freed_rows(self) -> np.ndarray:
        """Rows of the older snapshot that are gone from the newer one."""
        return np.flatnonzero(~self._match["survived_a"])

    @property
    def survived_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Matching rows (older, newer) of the objects alive in both."""
        return self._match["rows_a"], self._match["rows_b"]

    def _view(self, name: str) -> pd.DataFrame:
        if name not in self._cache:
            from ..views import diffs

            self._cache[name] = getattr(diffs, name)(self)
        frame: pd.DataFrame = self._cache[name]
        return frame.copy()

    @property
    def types(self) -> pd.DataFrame:
        """Per type: count and size in each, their change, new/freed/survived counts."""
        return self._view("types_diff")

    @property
    def modules(self) -> pd.DataFrame:
        return self._view("modules_diff")

    @property
    def cells(self) -> pd.DataFrame:
        """Per cell of birth (needs cells tracked in both snapshots)."""
        return self._view("cells_diff")

    @property
    def sites(self) -> pd.DataFrame:
        """Per allocation site (needs tracing on in both snapshots)."""
        return self._view("sites_diff")

    @property
    def variables(self) -> pd.DataFrame:
        """Per variable name: type and sizes in each snapshot and their change."""
        return self._view("variables_diff")

    @property
    def new(self) -> pd.DataFrame:
        """One row per object created between the snapshots (id, type, module, size)."""
        return self._view("new_objects")

    @property
    def freed(self) -> pd.DataFrame:
        """One row per object freed between the snapshots."""
        return self._view("freed_objects")

    @property
    def survived(self) -> pd.DataFrame:
        """One row per object alive in both, with its size in each."""
        return self._view("survived_objects")

    def __repr__(self) -> str:
        from ..views.format import human_bytes

        change = self.after.total_size - self.before.total_size
        return (
            f"<SnapshotDiff {len(self.new_rows):,} new, {len(self.freed_rows):,} freed, "
            f"{len(self.survived_rows[0]):,} survived objects; "
            f"heap {human_bytes(change, signed=True)}>"
        )
