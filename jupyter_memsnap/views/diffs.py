"""DataFrames of a SnapshotDiff: per type, per module, per variable, per object."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..model.diff import SnapshotDiff
from ..model.merges import tally
from ..model.snapshot import Snapshot
from .tables import NotRecorded


def by_change(df: pd.DataFrame, column: str, then: str) -> pd.DataFrame:
    """Largest changes first, growth and shrinkage alike (by ``|column|``, then ``then``);
    ``attrs["change"]`` remembers the column."""
    out = df.sort_values(
        [column, then], key=lambda c: c.abs(), ascending=False, ignore_index=True, kind="stable"
    )
    out.attrs["change"] = column
    return out


def growth_only(df: pd.DataFrame) -> pd.DataFrame:
    """The rows whose ranking column grew, largest growth first."""
    column = str(df.attrs.get("change", "size_diff"))
    grew = df[df[column] > 0]
    return grew.sort_values(column, ascending=False, ignore_index=True, kind="stable")


def ranking(growth: bool) -> str:
    """How a diff's rows are ordered, for titles."""
    return "growth only, largest first" if growth else "largest changes first (+ grew, - shrank)"


def _retained_by_type(
    snap: Snapshot, codes: np.ndarray, n: int, keep: np.ndarray | None
) -> np.ndarray:
    """The snapshot's per-type inclusive retained sizes, on the diff's common type codes."""
    inclusive = snap.retention.type_inclusive(snap, keep)
    return np.bincount(codes, weights=inclusive, minlength=n).astype(np.int64)


def types_diff(
    d: SnapshotDiff, keep_a: np.ndarray | None = None, keep_b: np.ndarray | None = None
) -> pd.DataFrame:
    """type, module, count/size/retained in a and b and their change, new/freed/survived
    objects; largest changes (growth or shrinkage) first. ``keep_a``/``keep_b``: count only
    these rows of each snapshot."""
    m = d._match
    names = m["names"]
    n = len(names)
    a = slice(None) if keep_a is None else keep_a
    b = slice(None) if keep_b is None else keep_b
    kept_a, freed, kept_a_size, freed_size = tally(
        m["type_a"][a], ~m["survived_a"][a], d.before.sizes[a], n
    )
    survived, new, kept_b_size, new_size = tally(
        m["type_b"][b], ~m["survived_b"][b], d.after.sizes[b], n
    )
    sides = {
        "count": (kept_a + freed, survived + new),
        "size": (kept_a_size + freed_size, kept_b_size + new_size),
        "retained": (
            _retained_by_type(d.before, m["code_a"], n, keep_a),
            _retained_by_type(d.after, m["code_b"], n, keep_b),
        ),
    }
    columns: dict[str, Any] = {"type": names[:, 1] if n else [], "module": names[:, 0] if n else []}
    for name, (before, after) in sides.items():
        columns.update({f"{name}_a": before, f"{name}_b": after, f"{name}_diff": after - before})
    columns.update(
        new=new, freed=freed, survived=survived, new_size=new_size, freed_size=freed_size
    )
    df = pd.DataFrame(columns)
    df = df[(df["count_a"] > 0) | (df["count_b"] > 0)]
    return by_change(df, "size_diff", "retained_diff")


def modules_diff(
    d: SnapshotDiff, keep_a: np.ndarray | None = None, keep_b: np.ndarray | None = None
) -> pd.DataFrame:
    """The per-type diff summed by the module that defines each type (without retained
    sizes: one module's types keep each other's objects alive, their sum would count twice)."""
    t = types_diff(d, keep_a, keep_b)
    cols = [c for c in t.columns if c not in ("type", "module") and not c.startswith("retained")]
    out = t.groupby("module", as_index=False, sort=False)[cols].sum()
    return by_change(out, "size_diff", "new_size")


def variables_diff(d: SnapshotDiff) -> pd.DataFrame:
    """name, type in each, size, reachable and retained size in each and their change;
    largest retained changes first."""
    a = d.before.variables.set_index("name")
    b = d.after.variables.set_index("name")
    df = a.add_suffix("_a").join(b.add_suffix("_b"), how="outer").reset_index()
    for col in ("size", "reachable", "retained"):
        for side in ("a", "b"):
            df[f"{col}_{side}"] = df[f"{col}_{side}"].fillna(0).astype(np.int64)
        df[f"{col}_diff"] = df[f"{col}_b"] - df[f"{col}_a"]
    df[["type_a", "type_b"]] = df[["type_a", "type_b"]].fillna("")
    order = ["name", "type_a", "type_b", "size_a", "size_b", "size_diff"]
    order += ["reachable_a", "reachable_b", "reachable_diff"]
    order += ["retained_a", "retained_b", "retained_diff"]
    return by_change(df[order], "retained_diff", "reachable_diff")


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
    return by_change(df[columns], "size_diff", "new_size")


def cells_diff(d: SnapshotDiff) -> pd.DataFrame:
    """Per cell of birth: count and size in each snapshot, change, new and freed."""
    from .tables import born_labels

    return _labels_diff(d, "cell", born_labels)


def sites_diff(d: SnapshotDiff) -> pd.DataFrame:
    """Per allocation site: count and size in each snapshot, change, new and freed."""
    from .tables import site_labels

    return _labels_diff(d, "site", site_labels)
