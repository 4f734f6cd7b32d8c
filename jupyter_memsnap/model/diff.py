"""Two snapshots compared object by object: what is new, what was freed, what survived."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from .merges import survivors
from .snapshot import Snapshot

if TYPE_CHECKING:
    import pandas as pd


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
            "code_a": code_a,
            "code_b": code_b,
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
