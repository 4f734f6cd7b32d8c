"""DataFrames of a SnapshotDiff: per type, per module, per variable, per object."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..model.diff import SnapshotDiff
from ..model.merges import tally
from .tables import NotRecorded


def types_diff(d: SnapshotDiff) -> pd.DataFrame:
    """type, module, count/size in a and b and their change, new/freed/survived objects;
    sorted by size growth."""
    m = d._match
    names = m["names"]
    n = len(names)
    kept_a, freed, kept_a_size, freed_size = tally(m["type_a"], ~m["survived_a"], d.before.sizes, n)
    survived, new, kept_b_size, new_size = tally(m["type_b"], ~m["survived_b"], d.after.sizes, n)
    df = pd.DataFrame(
        {
            "type": names[:, 1] if n else [],
            "module": names[:, 0] if n else [],
            "count_a": kept_a + freed,
            "count_b": survived + new,
            "size_a": kept_a_size + freed_size,
            "size_b": kept_b_size + new_size,
            "new": new,
            "freed": freed,
            "survived": survived,
            "new_size": new_size,
            "freed_size": freed_size,
        }
    )
    df.insert(4, "count_diff", df["count_b"] - df["count_a"])
    df.insert(7, "size_diff", df["size_b"] - df["size_a"])
    df = df[(df["count_a"] > 0) | (df["count_b"] > 0)]
    return df.sort_values(
        ["size_diff", "new_size"], ascending=False, ignore_index=True, kind="stable"
    )


def modules_diff(d: SnapshotDiff) -> pd.DataFrame:
    """The per-type diff summed by the module that defines each type."""
    t = types_diff(d)
    cols = [c for c in t.columns if c not in ("type", "module")]
    out = t.groupby("module", as_index=False, sort=False)[cols].sum()
    return out.sort_values(["size_diff", "new_size"], ascending=False, ignore_index=True)


def variables_diff(d: SnapshotDiff) -> pd.DataFrame:
    """name, type in each, size and reachable size in each and their change."""
    a = d.before.variables.set_index("name")
    b = d.after.variables.set_index("name")
    df = a.add_suffix("_a").join(b.add_suffix("_b"), how="outer").reset_index()
    for col in ("size", "reachable"):
        for side in ("a", "b"):
            df[f"{col}_{side}"] = df[f"{col}_{side}"].fillna(0).astype(np.int64)
        df[f"{col}_diff"] = df[f"{col}_b"] - df[f"{col}_a"]
    df[["type_a", "type_b"]] = df[["type_a", "type_b"]].fillna("")
    order = ["name", "type_a", "type_b", "size_a", "size_b", "size_diff"]
    order += ["reachable_a", "reachable_b", "reachable_diff"]
    return df[order].sort_values(
        ["reachable_diff", "name"], ascending=[False, True], ignore_index=True
    )


def new_objects(d: SnapshotDiff) -> pd.DataFrame:
    """Objects of the newer snapshot that the older one did not have."""
    return d.after.objects.iloc[d.new_rows].reset_index(drop=True)


def freed_objects(d: SnapshotDiff) -> pd.DataFrame:
    """Objects of the older snapshot that are gone."""
    return d.before.objects.iloc[d.freed_rows].reset_index(drop=True)


def survived_objects(d: SnapshotDiff) -> pd.DataFrame:
    """Objects alive in both, with their size in each."""
    rows_a, rows_b = d.survived_rows
    df = d.after.objects.iloc[rows_b].reset_index(drop=True)
    df = df.rename(columns={"size": "size_b"})
    df.insert(3, "size_a", d.before.sizes[rows_a])
    df["size_diff"] = df["size_b"] - df["size_a"]
    return df


def _labels_diff(d: SnapshotDiff, key: str, labels_of: Any) -> pd.DataFrame:
    la, lb = labels_of(d.before), labels_of(d.after)
    if la is None or lb is None:
        what = "cells were not tracked" if key == "cell" else "sites were not recorded"
        raise NotRecorded(f"cannot diff by {key}: {what} in both snapshots")
    fresh, gone = ~d._match["survived_b"], ~d._match["survived_a"]
    frames = [
        pd.DataFrame(
            {
                key: la,
                "count_a": 1,
                "size_a": d.before.sizes,
                "freed": gone,
                "freed_size": np.where(gone, d.before.sizes, 0),
            }
        ),
        pd.DataFrame(
            {
                key: lb,
                "count_b": 1,
                "size_b": d.after.sizes,
                "new": fresh,
                "new_size": np.where(fresh, d.after.sizes, 0),
            }
        ),
    ]
    df = pd.concat(frames).fillna(0).groupby(key, sort=False).sum().reset_index()
    for col in ("count_a", "count_b", "size_a", "size_b", "new", "freed", "new_size", "freed_size"):
        df[col] = df[col].astype(np.int64)
    df["count_diff"] = df["count_b"] - df["count_a"]
    df["size_diff"] = df["size_b"] - df["size_a"]
    columns = [key, "count_a", "count_b", "count_diff", "size_a", "size_b", "size_diff"]
    columns += ["new", "freed", "new_size", "freed_size"]
    return df[columns].sort_values(["size_diff", "new_size"], ascending=False, ignore_index=True)


def cells_diff(d: SnapshotDiff) -> pd.DataFrame:
    """Per cell of birth: count and size in each snapshot, change, new and freed."""
    from .tables import born_labels

    return _labels_diff(d, "cell", born_labels)


def sites_diff(d: SnapshotDiff) -> pd.DataFrame:
    """Per allocation site: count and size in each snapshot, change, new and freed."""
    from .tables import site_labels

    return _labels_diff(d, "site", site_labels)
