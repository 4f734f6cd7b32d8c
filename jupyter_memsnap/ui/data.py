"""The explorer's data side, without widgets: which rows a set of control values shows.

A :class:`Query` (snapshot, baseline, grouping, filter, "just my code", "collapse small",
sort) is turned into a :class:`Selection` (every row that passes, sorted, numeric) by
:class:`ExplorerData`, which caches each stage so that a control change recomputes only
what it changes: the grouped table comes from :func:`views.select.grouped` (cached per
snapshot, baseline and grouping), the filter from :func:`views.select.filtered`, then the
"just my code" and "collapse small" masks, then the sort. Paging only slices the result.

Besides the groupings :mod:`views.select` offers (``type``, ``variable``, ``module``,
``holder``, and ``cell`` / ``site`` when the snapshots recorded them), the explorer shows
one row per object: ``object`` for a snapshot, ``new`` and ``freed`` for a diff. Those
tables can have millions of rows; they are filtered through the type table (a row matches
when its type does) and never rendered beyond one page.

**Just my code.** An object is "mine" when it is reachable from a user variable without
passing through classes, modules (and their namespaces), functions, code or frames -- the
stop set :func:`views.tables.shared_mask` that the variables' ``reachable`` size uses -- or,
when the snapshot knows cells of birth, when it was born in a cell. One breadth-first pass
over the snapshot's CSR graph (numpy, one step per level: O(objects + edges)) gives a
boolean per row, computed once per snapshot and cached. Then ``type`` and ``module`` are
recomputed over those objects only (count, size, retained and share of what is mine),
``object``/``new``/``freed`` keep the objects themselves; ``variable``, ``holder`` and
``cell`` are the user's by definition and ``site`` is left as it is. A diff keeps what is
mine in either snapshot.

Nothing here holds a user object: only Snapshots (ids and numbers) and DataFrames of them.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from ..api import path_namer
from ..model.diff import SnapshotDiff
from ..model.retention import reach_mask
from ..model.snapshot import Snapshot
from ..views import diffs, select, tables
from ..views.paths import rows_frame, why_frame

OBJECT_GROUPS = ("object",)
"""One row per object of a snapshot (not a grouping of :mod:`views.select`)."""
DIFF_OBJECT_GROUPS = ("new", "freed")
"""One row per object created / freed between the two snapshots of a diff."""
COLLAPSE_SHARE = 0.005
""""Collapse small" hides rows under this share of the total (0.5 %)."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class Query:
    """What the controls ask for. ``sort == ""`` keeps the table's own order (largest, or
    largest growth, first); ``baseline`` turns the view into a diff (``snapshot`` compared
    to ``baseline``, VS "Compare To")."""

    snapshot: int
    baseline: int | None = None
    group: str = "type"
    pattern: str = ""
    mine: bool = False
    collapse: bool = False
    sort: str = ""
    ascending: bool = False

    @property
    def is_diff(self) -> bool:
        return self.baseline is not None and self.baseline != self.snapshot

    @property
    def per_object(self) -> bool:
        return self.group in (*OBJECT_GROUPS, *DIFF_OBJECT_GROUPS)


@dataclass(frozen=True)
class Selection:
    """Every row a query shows, numeric (formatting happens when rendering). ``rows`` are
    in the table's own order (index: the base table's); a sort is kept as ``order``, the
    positions in sorted order, so that sorting a million-row table copies no column and a
    page is ``rows.iloc[order[start:stop]]``."""

    rows: pd.DataFrame
    total_rows: int  # rows of the grouping before filter, "just my code" and collapse
    measure: str | None  # the column "collapse small" compares (size, size_diff …)
    hidden_small: int = 0  # rows "collapse small" hid
    hidden_bytes: int = 0  # and what they add up to (absolute values)
    literal: bool = False  # the filter was not a valid regex: it matched as plain text
    order: np.ndarray | None = None  # positions into ``rows`` when sorted

    def __len__(self) -> int:
        return len(self.rows)

    def page(self, start: int, stop: int) -> pd.DataFrame:
        """Rows ``start`` to ``stop`` (exclusive) in sorted order."""
        if self.order is None:
            return self.rows.iloc[start:stop]
        return self.rows.iloc[self.order[start:stop]]

    @property
    def frame(self) -> pd.DataFrame:
        """Every row, sorted (a copy when sorted: for tests and users, not for rendering)."""
        return self.rows if self.order is None else self.rows.iloc[self.order]


class _Lru:
    """A small least-recently-used cache."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        if key in self._items:
            self._items.move_to_end(key)
            value: _T = self._items[key]
            return value
        value = compute()
        self._items[key] = value
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        self._items.clear()


def mine_mask(snap: Snapshot) -> np.ndarray:
    """Rows reachable from user variables (not through shared infrastructure) or born in a
    cell: the objects "just my code" keeps. See the module docstring."""
    starts = np.array(
        [r.index for r in snap.roots if r.kind == "variable" and r.index >= 0], dtype=np.int64
    )
    if len(starts):
        mask = reach_mask(snap.offsets, snap.targets, starts, tables.shared_mask(snap))
    else:
        mask = np.zeros(len(snap), dtype=bool)
    born = getattr(snap, "born", None)
    if born is not None:
        mask |= np.asarray(born) > 0
    return mask


def _rows_of(snap: Snapshot, group: str, record: pd.Series) -> np.ndarray:
    """Rows of the objects behind a ``type`` row (that module and qualname: every class of
    that name after a redefinition) or a ``module`` row (every type the module defines)."""
    t = snap.type_table
    if group == "type":
        key = (str(record["module"]), str(record["type"]))
        codes = [i for i in range(len(t)) if (t.module[i], t.qualname[i]) == key]
    else:
        codes = [i for i in range(len(t)) if t.module[i] == record["module"]]
    return np.flatnonzero(np.isin(snap.type_index, codes))


def _largest(snap: Snapshot, rows: np.ndarray, top: int) -> list[int]:
    """The ``top`` rows with the largest retained size."""
    best = rows[np.argsort(-snap.retained[rows], kind="stable")[:top]]
    return [int(r) for r in best]


@dataclass(frozen=True)
class _Objects:
    """A per-object table with the snapshot and rows its lines come from."""

    frame: pd.DataFrame
    snap: Snapshot
    rows: np.ndarray


class ExplorerData:
    """Numbered snapshots and every table the explorer shows of them, cached."""

    def __init__(self, snapshots: Iterable[tuple[int, Snapshot]]) -> None:
        self.snapshots: dict[int, Snapshot] = dict(snapshots)
        self._diffs: dict[tuple[int, int], SnapshotDiff] = {}
        self._mine: dict[int, np.ndarray] = {}
        # Per-object tables have a row per object: few of them are kept.
        self._base: _Lru = _Lru(8)
        self._objects: _Lru = _Lru(2)
        self._selected: _Lru = _Lru(4)
        self._sorted: _Lru = _Lru(4)

    @property
    def numbers(self) -> list[int]:
        return sorted(self.snapshots)

    def clear(self) -> None:
        """Drop every cached table (the snapshots stay)."""
        self._diffs.clear()
        self._mine.clear()
        for cache in (self._base, self._objects, self._selected, self._sorted):
            cache.clear()

    # ------------------------------------------------------------ sources and groupings
    def source(self, snapshot: int, baseline: int | None = None) -> Snapshot | SnapshotDiff:
        """The snapshot, or its diff against the baseline."""
        snap = self.snapshots[snapshot]
        if baseline is None or baseline == snapshot:
            return snap
        key = (baseline, snapshot)
        if key not in self._diffs:
            self._diffs[key] = snap.diff(self.snapshots[baseline])
        return self._diffs[key]

    def groups(self, snapshot: int, baseline: int | None = None) -> tuple[str, ...]:
        """Groupings this snapshot or diff offers: those of ``views.select`` whose data was
        recorded, then one row per object."""
        source = self.source(snapshot, baseline)
        available: Callable[[Snapshot | SnapshotDiff], tuple[str, ...]] | None = getattr(
            select, "available_groups", None
        )
        if isinstance(source, SnapshotDiff):
            groups = available(source) if available else select.DIFF_GROUPS
            return (*groups, *DIFF_OBJECT_GROUPS)
        groups = available(source) if available else select.SNAPSHOT_GROUPS
        return (*groups, *OBJECT_GROUPS)

    def _object_table(self, q: Query) -> _Objects:
        """``object`` / ``new`` / ``freed``: id, type, module, size, retained per object."""

        def compute() -> _Objects:
            source = self.source(q.snapshot, q.baseline)
            if isinstance(source, SnapshotDiff):
                if q.group == "new":
                    snap, rows, frame = source.after, source.new_rows, source.new
                else:
                    snap, rows, frame = source.before, source.freed_rows, source.freed
            else:
                snap, rows, frame = source, np.arange(len(source)), source.objects
            retained = snap.retained[rows]
            largest = np.argsort(-retained, kind="stable")
            frame = frame.iloc[largest].reset_index(drop=True)
            frame["retained"] = retained[largest]
            return _Objects(frame, snap, np.asarray(rows, dtype=np.int64)[largest])

        return self._objects.get((q.snapshot, q.baseline, q.group), compute)

    def base(self, q: Query) -> pd.DataFrame:
        """The whole table of the query's grouping, in its own order (not a copy: the
        caller must not modify it). With "just my code", types and modules count only
        the objects it keeps."""
        if q.per_object:
            return self._object_table(q).frame
        mine = q.mine and q.group in ("type", "module")
        return self._base.get(
            (q.snapshot, q.baseline, q.group, mine),
            lambda: (
                self._mine_table(q)
                if mine
                else select.grouped(self.source(q.snapshot, q.baseline), q.group)
            ),
        )

    def _mine_table(self, q: Query) -> pd.DataFrame:
        source = self.source(q.snapshot, q.baseline)
        if isinstance(source, SnapshotDiff) and q.baseline is not None:
            table = diffs.types_diff if q.group == "type" else diffs.modules_diff
            return table(source, self.mine(q.baseline), self.mine(q.snapshot))
        assert isinstance(source, Snapshot)
        grouping = tables.types_table if q.group == "type" else tables.modules_table
        return grouping(source, self.mine(q.snapshot))

    # ------------------------------------------------------------ just my code
    def mine(self, snapshot: int) -> np.ndarray:
        """Per row of the snapshot: is it "mine" (see the module docstring)."""
        if snapshot not in self._mine:
            self._mine[snapshot] = mine_mask(self.snapshots[snapshot])
        return self._mine[snapshot]

    def _mine_rows(self, q: Query, frame: pd.DataFrame) -> np.ndarray | None:
        """Bool per row of ``frame`` (a filtered base table): is it kept by "just my code";
        None when the grouping keeps everything."""
        if q.per_object:
            objects = self._object_table(q)
            number = q.baseline if q.group == "freed" and q.baseline is not None else q.snapshot
            mask = self.mine(number)[objects.rows]
            return np.asarray(mask[frame.index.to_numpy()], dtype=bool)
        return None

    # ------------------------------------------------------------ filter
    def _filter_objects(self, q: Query, pattern: str) -> pd.DataFrame:
        """Object rows whose type matches: the type table is filtered by ``views.select``
        (type or module matches) and the objects kept by type code -- a million string
        matches become a few thousand."""
        objects = self._object_table(q)
        t = objects.snap.type_table
        names = pd.DataFrame({"type": list(t.qualname), "module": list(t.module)})
        codes = select.filtered(names, pattern, "type").index.to_numpy()
        keep = np.isin(objects.snap.type_index[objects.rows], codes)
        return objects.frame[keep]

    def _filtered(self, q: Query, pattern: str) -> pd.DataFrame:
        if not pattern:
            return self.base(q)
        if q.per_object:
            return self._filter_objects(q, pattern)
        return select.filtered(self.base(q), pattern, q.group)

    # ------------------------------------------------------------ selection
    def measure(self, q: Query, frame: pd.DataFrame) -> str | None:
        """The column "collapse small" compares: bytes, or their change in a diff."""
        if q.per_object:
            candidates = ["size"]
        elif q.is_diff:
            candidates = ["reachable_diff"] if q.group == "variable" else []
            candidates += ["size_diff", "retained_diff"]
        elif q.group == "variable":
            candidates = ["reachable", "retained", "size"]
        elif q.group == "holder":
            candidates = ["retained", "reachable"]
        else:
            candidates = ["size", "retained"]
        return next((c for c in candidates if c in frame.columns), None)

    def _total(self, q: Query, base: pd.DataFrame, measure: str) -> float:
        """What 0.5 % is of: the heap of a snapshot; for a diff, all the changes added up."""
        if not q.is_diff:
            return float(self.snapshots[q.snapshot].total_size)
        return float(np.abs(pd.to_numeric(base[measure], errors="coerce")).sum())

    def _unsorted(self, q: Query) -> Selection:
        def compute() -> Selection:
            base = self.base(q)
            literal = False
            try:
                frame = self._filtered(q, q.pattern)
            except select.PatternError:
                frame, literal = self._filtered(q, re.escape(q.pattern)), True
            if q.mine:
                keep = self._mine_rows(q, frame)
                if keep is not None:
                    frame = frame[keep]
            measure = self.measure(q, base)
            hidden, hidden_bytes = 0, 0
            if q.collapse and measure is not None and len(frame):
                sizes = np.abs(pd.to_numeric(frame[measure], errors="coerce").fillna(0))
                small = np.asarray(sizes < COLLAPSE_SHARE * self._total(q, base, measure))
                hidden, hidden_bytes = int(small.sum()), int(sizes[small].sum())
                frame = frame[~small]
            total = len(self.base(replace(q, mine=False))) if q.mine else len(base)
            return Selection(frame, total, measure, hidden, hidden_bytes, literal)

        key = replace(q, sort="", ascending=False)
        return self._selected.get(key, compute)

    def selection(self, q: Query) -> Selection:
        """Every row the query shows, sorted (the frame keeps the base table's index)."""

        def compute() -> Selection:
            sel = self._unsorted(q)
            if not q.sort or q.sort not in sel.rows.columns:
                return sel
            column = pd.Series(sel.rows[q.sort].array, copy=False)  # positions as index
            ordered = column.sort_values(ascending=q.ascending, kind="stable", na_position="last")
            return replace(sel, order=ordered.index.to_numpy())

        return self._sorted.get(q, compute)

    # ------------------------------------------------------------ drill-down
    def instance_rows(
        self, q: Query, record: pd.Series, top: int = 10
    ) -> tuple[int, list[int], str]:
        """The snapshot number and its rows of the largest objects (by retained size) behind
        one row of the view, and which objects they are ("", "new" or "freed"). In a diff a
        type's or module's new objects come first (what grew); a type that is gone shows
        its freed objects, in the baseline."""
        number = q.baseline if q.group == "freed" and q.baseline is not None else q.snapshot
        snap = self.snapshots[number]
        rows: list[int] = []
        which = q.group if q.group in DIFF_OBJECT_GROUPS else ""
        if q.per_object:
            row = snap.row(int(record["id"]))
            rows = [row] if row >= 0 else []
        elif q.group in ("type", "module"):
            candidates = _rows_of(snap, q.group, record)
            if q.is_diff and q.baseline is not None:
                source = self.source(q.snapshot, q.baseline)
                assert isinstance(source, SnapshotDiff)
                new = np.intersect1d(candidates, source.new_rows, assume_unique=True)
                candidates, which = (new, "new") if len(new) else (candidates, "")
                if not len(candidates):  # all gone: the freed ones, in the baseline
                    number, snap = q.baseline, self.snapshots[q.baseline]
                    candidates, which = _rows_of(snap, q.group, record), "freed"
            rows = _largest(snap, candidates, top)
        elif q.group == "variable":
            for n in (q.snapshot, q.baseline) if q.is_diff else (q.snapshot,):
                if n is None:
                    continue
                found = [
                    r.index
                    for r in self.snapshots[n].roots
                    if r.kind == "variable" and r.name == record["name"] and r.index >= 0
                ]
                if found:
                    number, rows = n, found[:1]
                    break
        elif q.group == "holder":
            rows = _largest(snap, snap.retention.held_by_group(str(record["held_by"])), top)
        elif q.group in ("cell", "site"):
            labeller = getattr(tables, "born_labels" if q.group == "cell" else "site_labels", None)
            labels = labeller(snap) if labeller is not None else None
            if labels is not None:
                rows = _largest(snap, np.flatnonzero(labels == record[q.group]), top)
        return number, rows, which

    def instances(self, number: int, rows: list[int]) -> pd.DataFrame:
        """id, type, module, size, retained of these objects, largest retained first."""
        return rows_frame(self.snapshots[number], np.asarray(rows, dtype=np.int64))

    def paths(self, number: int, row: int, max_paths: int = 3) -> pd.DataFrame:
        """Shortest paths from named roots to the object, in notebook words, with the fix."""
        return why_frame(self.snapshots[number], [row], max_paths=max_paths, namer=path_namer())
