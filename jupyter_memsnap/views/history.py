"""The snapshot history table: one row per snapshot with the change since the previous one
(VS Memory Usage's "Objects (Diff)" and "Heap Size (Diff)")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..model.cluster import ClusterSnapshot
from ..model.snapshot import Snapshot

COLUMNS = [
    "snapshot",
    "label",
    "cell",
    "taken",
    "objects",
    "objects_diff",
    "heap",
    "heap_diff",
    "rss",
    "rss_diff",
    "peak",
    "seconds",
]


class CensusLike(Protocol):
    """A per-cell census row (see ``ipython.cells.CensusRow``)."""

    @property
    def cell(self) -> int: ...
    @property
    def taken_at(self) -> dt.datetime: ...
    @property
    def cells(self) -> str: ...
    @property
    def objects(self) -> int | None: ...
    @property
    def heap(self) -> int | None: ...
    @property
    def rss(self) -> int: ...
    @property
    def seconds(self) -> float: ...
    @property
    def peak(self) -> int | None: ...


def history_table(
    items: Iterable[tuple[int, Snapshot]],
    censuses: Iterable[CensusLike] = (),
    clusters: Iterable[tuple[int, ClusterSnapshot]] = (),
) -> pd.DataFrame:
    """One row per snapshot and per cell census, in time order: snapshot number (empty for
    a census), label, cell, time, objects/heap/RSS and their change, the RSS high-water mark
    while the cell ran (censuses, Linux), capture seconds. A cell after which auto mode
    skipped the census has no objects or heap; the next census's cell shows the range whose
    births it saw (``In[7–9]``). A cluster snapshot's row adds up its workers (its label
    says how many answered); changes are between rows of the same kind."""
    rows: list[dict[str, Any]] = [
        {
            "snapshot": str(number),
            "label": snap.label,
            "cell": f"In[{snap.cell}]" if snap.cell is not None else "",
            "at": snap.taken_at,
            "objects": len(snap),
            "heap": snap.total_size,
            "rss": snap.process.rss,
            "peak": None,
            "seconds": round(snap.seconds, 3),
        }
        for number, snap in items
    ]
    rows += [
        {
            "snapshot": str(number),
            "label": f"{c.label} ({len(c.answered)} of {len(c.worker_table)} workers)".strip(),
            "cell": "",
            "at": c.taken_at,
            "objects": len(c),
            "heap": c.total_size,
            "rss": c.rss,
            "peak": None,
            "seconds": round(c.seconds, 3),
            "cluster": True,
        }
        for number, c in clusters
    ]
    rows += [
        {
            "snapshot": "",
            "label": "",
            "cell": c.cells,
            "at": c.taken_at,
            "objects": c.objects,
            "heap": c.heap,
            "rss": c.rss,
            "peak": c.peak,
            "seconds": round(c.seconds, 3),
        }
        for c in censuses
    ]
    rows.sort(key=lambda r: r["at"])
    for r in rows:
        r["taken"] = r.pop("at").strftime("%H:%M:%S")
    cluster = pd.Series([bool(r.get("cluster")) for r in rows], dtype=bool)
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if not c.endswith("_diff")])
    for col in ("objects", "heap", "rss"):
        values = df[col].astype("Int64")  # empty after a cell with no census
        df[col] = values
        change = pd.Series(pd.NA, index=df.index, dtype="Int64")
        for part in (cluster, ~cluster):  # since the last row of its kind that has a value
            kind = values[part]
            change[part] = kind - kind.ffill().shift()
        df.insert(list(df.columns).index(col) + 1, f"{col}_diff", change.astype("Int64"))
    df["seconds"] = df["seconds"].astype(np.float64)
    df["peak"] = df["peak"].astype("Int64")
    return df[COLUMNS]
