"""The demo job: build a small data-notebook heap, take two snapshots, print the tables."""

from __future__ import annotations

import sys
from typing import TextIO

import numpy as np
import pandas as pd

from .api import take
from .model.store import SnapshotStore
from .views.format import for_display
from .views.history import history_table


def _workload(rows: int) -> dict[str, object]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "id": np.arange(rows),
            "price": rng.random(rows),
            "name": [f"item-{i}" for i in range(rows)],
            "colour": pd.Categorical(rng.choice(["red", "green", "blue"], rows)),
        }
    )
    return {
        "frame": frame,
        "matrix": rng.random((2_000, 2_000)),
        "records": [{"id": i, "name": f"user{i}", "score": i * 0.5} for i in range(rows // 2)],
    }


def run(rows: int = 200_000, out: TextIO | None = None) -> SnapshotStore:
    """Take a baseline, build the workload, take a second snapshot, print what changed."""
    stream = out or sys.stdout
    store = SnapshotStore()
    store.add(take("baseline", roots=[]))
    data = _workload(rows)
    after = take("workload", roots=[(k, "variable", v, (data,)) for k, v in data.items()])
    store.add(after)

    def show(title: str, df: pd.DataFrame) -> None:
        print(f"\n== {title}", file=stream)
        print(for_display(df).to_string(index=False), file=stream)

    show("snapshots", history_table(store))
    show("largest types in snapshot 2", after.types.head(10))
    show("variables in snapshot 2", after.variables)
    show("process memory", after.memory.drop(columns="note"))
    print(
        f"\nsnapshot 2: {len(after):,} objects walked in {after.seconds:.2f} s "
        f"({after.engine} walker); the snapshot itself takes {after.nbytes / len(after):.0f} "
        "bytes per object",
        file=stream,
    )
    del data
    return store
