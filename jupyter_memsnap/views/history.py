"""The snapshot history table: one row per snapshot with the change since the previous one
(VS Memory Usage's "Objects (Diff)" and "Heap Size (Diff)")."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

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
    "seconds",
]


def history_table(items: Iterable[tuple[int, Snapshot]]) -> pd.DataFrame:
    """snapshot number, label, cell, time, objects/heap/RSS and their change, capture time."""
    rows = [
        {
            "snapshot": number,
            "label": snap.label,
            "cell": f"In[{snap.cell}]" if snap.cell is not None else "",
            "taken": snap.taken_at.strftime("%H:%M:%S"),
            "objects": len(snap),
            "heap": snap.total_size,
            "rss": snap.process.rss,
            "seconds": round(snap.seconds, 3),
        }
        for number, snap in items
    ]
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if not c.endswith("_diff")])
    for col in ("objects", "heap", "rss"):
        df.insert(list(df.columns).index(col) + 1, f"{col}_diff", df[col].diff())
        df[f"{col}_diff"] = df[f"{col}_diff"].astype("Int64")
    df["seconds"] = df["seconds"].astype(np.float64)
    return df[COLUMNS]
