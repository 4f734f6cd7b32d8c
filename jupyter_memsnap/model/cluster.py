"""A snapshot of a Dask cluster: each worker's summary, the full snapshots left on workers.

Every worker walks its own heap and keeps its snapshot in its own process (never in Dask's
task data); the client keeps only these tables, and the token that names the kept
snapshots so that one worker's can be fetched or all of them released.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

WORKER_COLUMNS = [
    "worker",
    "name",
    "status",
    "objects",
    "heap",
    "native",
    "rss",
    "managed",
    "unmanaged",
    "unattributed",
    "kept",
    "seconds",
]
TASK_COLUMNS = ["worker", "key", "type", "retained", "dask_sizeof"]
TYPE_COLUMNS = ["worker", "type", "module", "count", "size", "retained"]
VARIABLE_COLUMNS = ["worker", "name", "type", "retained", "reachable"]

OK = "ok"


@dataclass(frozen=True, eq=False)
class ClusterSnapshot:
    """One snapshot per worker, taken at the same moment, as tables with a ``worker``
    column: ``workers`` (one row each, ``status`` says when one failed), ``tasks`` (each
    key in a worker's data: our retained size beside Dask's ``sizeof``), ``types``,
    ``variables`` (module globals on workers). Properties return copies."""

    token: str
    scheduler: str
    label: str
    taken_at: dt.datetime
    seconds: float
    worker_table: pd.DataFrame
    task_table: pd.DataFrame
    type_table: pd.DataFrame
    variable_table: pd.DataFrame

    @property
    def workers(self) -> pd.DataFrame:
        return self.worker_table.copy()

    @property
    def tasks(self) -> pd.DataFrame:
        return self.task_table.copy()

    @property
    def types(self) -> pd.DataFrame:
        return self.type_table.copy()

    @property
    def variables(self) -> pd.DataFrame:
        return self.variable_table.copy()

    @property
    def answered(self) -> list[str]:
        """Addresses of the workers that took their snapshot (and keep it)."""
        table = self.worker_table
        return list(table.loc[table["status"] == OK, "worker"])

    def __len__(self) -> int:
        return int(self.worker_table["objects"].fillna(0).sum())

    @property
    def total_size(self) -> int:
        return int(self.worker_table["heap"].fillna(0).sum())

    @property
    def rss(self) -> int:
        return int(self.worker_table["rss"].fillna(0).sum())

    def diff(self, before: ClusterSnapshot) -> ClusterDiff:
        """What changed on each worker from ``before`` to this one."""
        return ClusterDiff(before, self)

    def __repr__(self) -> str:
        label = f" {self.label!r}" if self.label else ""
        return (
            f"<ClusterSnapshot{label} {len(self.answered)} of {len(self.worker_table)} "
            f"workers, {len(self):,} objects, taken {self.taken_at:%H:%M:%S}>"
        )


@dataclass(frozen=True, eq=False)
class ClusterDiff:
    """Two cluster snapshots compared, worker by worker (``b.diff(a)``): ``workers``
    (objects, heap, RSS before and after; a worker only in one is ``gone`` or ``new``),
    ``tasks`` (each key's retained size before and after) and ``types`` per worker; the
    largest changes first."""

    before: ClusterSnapshot
    after: ClusterSnapshot

    @property
    def workers(self) -> pd.DataFrame:
        a = self.before.worker_table[["worker", "status", "objects", "heap", "rss"]]
        b = self.after.worker_table[["worker", "name", "status", "objects", "heap", "rss"]]
        df = a.merge(b, on="worker", how="outer", suffixes=("_a", "_b"))
        df["status"] = [
            "gone" if pd.isna(sb) else "new" if pd.isna(sa) else sb
            for sa, sb in zip(df["status_a"], df["status_b"], strict=True)
        ]
        for col in ("objects", "heap", "rss"):
            df[f"{col}_diff"] = df[f"{col}_b"] - df[f"{col}_a"]
        columns = ["worker", "name", "status"]
        for col in ("objects", "heap", "rss"):
            columns += [f"{col}_a", f"{col}_b", f"{col}_diff"]
        return _by_change(df[columns], "heap_diff")

    @property
    def tasks(self) -> pd.DataFrame:
        keys = ["worker", "key"]
        a = self.before.task_table[[*keys, "retained"]]
        b = self.after.task_table[[*keys, "type", "retained", "dask_sizeof"]]
        df = a.merge(b, on=keys, how="outer", suffixes=("_a", "_b"))
        df["retained_diff"] = df["retained_b"].fillna(0) - df["retained_a"].fillna(0)
        columns = [*keys, "type", "retained_a", "retained_b", "retained_diff", "dask_sizeof"]
        return _by_change(df[columns], "retained_diff")

    @property
    def types(self) -> pd.DataFrame:
        keys = ["worker", "type", "module"]
        a = self.before.type_table[[*keys, "count", "size"]]
        b = self.after.type_table[[*keys, "count", "size"]]
        df = a.merge(b, on=keys, how="outer", suffixes=("_a", "_b"))
        for col in ("count", "size"):
            df[f"{col}_a"] = df[f"{col}_a"].fillna(0).astype("int64")
            df[f"{col}_b"] = df[f"{col}_b"].fillna(0).astype("int64")
            df[f"{col}_diff"] = df[f"{col}_b"] - df[f"{col}_a"]
        columns = [*keys, "count_a", "count_b", "count_diff", "size_a", "size_b", "size_diff"]
        return _by_change(df[columns], "size_diff")


def _by_change(df: pd.DataFrame, column: str) -> pd.DataFrame:
    order = df[column].abs().fillna(-1).sort_values(ascending=False, kind="stable").index
    return df.loc[order].reset_index(drop=True)
