"""One entry point for "this snapshot (or diff) grouped by X, filtered, top K" — shared by
the magics and the explorer so that nothing computes twice."""

from __future__ import annotations

import re

import pandas as pd

from ..model.diff import SnapshotDiff
from ..model.snapshot import Snapshot

SNAPSHOT_GROUPS = ("type", "variable", "module", "holder", "cell", "site")
DIFF_GROUPS = ("type", "variable", "module", "cell", "site")
NAME_COLUMNS = {
    "type": ["type", "module"],
    "module": ["module"],
    "variable": ["name", "type", "type_a", "type_b"],
    "holder": ["held_by", "type"],
    "cell": ["cell"],
    "site": ["site"],
}


class PatternError(ValueError):
    """A filter that is not a valid regular expression."""


def available_groups(source: Snapshot | SnapshotDiff) -> tuple[str, ...]:
    """Groupings this snapshot (or both snapshots of this diff) can answer."""
    snaps = (source.before, source.after) if isinstance(source, SnapshotDiff) else (source,)
    groups = DIFF_GROUPS if isinstance(source, SnapshotDiff) else SNAPSHOT_GROUPS
    return tuple(
        g
        for g in groups
        if (g != "cell" or all(s.born is not None for s in snaps))
        and (g != "site" or all(s.site_index is not None for s in snaps))
    )


def grouped(source: Snapshot | SnapshotDiff, by: str) -> pd.DataFrame:
    """The snapshot's or the diff's table for one grouping (ValueError when the data for
    that grouping was not recorded)."""
    tables = {
        "type": "types",
        "variable": "variables",
        "module": "modules",
        "holder": "holders",
        "cell": "cells",
        "site": "sites",
    }
    if by not in tables or (by == "holder" and isinstance(source, SnapshotDiff)):
        raise ValueError(f"cannot group by {by!r}")
    frame: pd.DataFrame = getattr(source, tables[by])
    return frame


def filtered(df: pd.DataFrame, pattern: str | None, by: str) -> pd.DataFrame:
    """Rows whose names match ``pattern`` (a case-insensitive regular expression)."""
    if not pattern:
        return df
    try:
        rx = re.compile(pattern, re.IGNORECASE)
    except re.error as e:
        raise PatternError(f"{pattern!r} is not a valid pattern: {e}") from None
    hit = pd.Series(False, index=df.index)
    for col in NAME_COLUMNS[by]:
        if col in df.columns:
            hit |= df[col].astype(str).map(lambda s: rx.search(s) is not None)
    return df[hit]
