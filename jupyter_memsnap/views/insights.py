"""Insights: what to change to get memory back, each with the bytes it saves and the code.

From the snapshot alone: what only IPython's hidden holders keep, figures pyplot still
holds, ``lru_cache`` caches, allocator memory not returned, tracemalloc's own tables. From
several snapshots: what grows every time. From live values (``capture.values`` findings,
checked here against the snapshot by id and type): small views of big arrays, duplicate
strings, oversized column dtypes, mostly-zero arrays.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ..capture.values import MIN_BYTES, Finding
from ..model.graph import reachable_sizes
from ..model.retention import paths_to_root, roots_by_object
from ..model.snapshot import Snapshot
from .format import human_bytes
from .memory import FREE_KEPT_LARGE, free_kept
from .paths import Namer, expression, path_labels, release_hint
from .tables import born_labels, shared_mask

COLUMNS = ["kind", "bytes", "where", "evidence", "fix"]
LEAK_WINDOW = 6
"""Leak suspects are read over at most this many of the latest snapshots."""

LEAK_VARIABLES = 10
"""The variables whose growth is followed: the newest snapshot's largest, by retained."""

Insight = dict[str, object]


def insights_table(
    snap: Snapshot,
    findings: Sequence[Finding] = (),
    series: Sequence[Snapshot] = (),
    namer: Namer | None = None,
    censuses: Sequence[tuple[str, int]] = (),
) -> pd.DataFrame:
    """kind, bytes (what the fix saves), where (in notebook words), evidence, fix (code);
    largest first. ``series``: earlier snapshots, oldest first, for leak suspects (three
    or more with ``snap``), as are auto mode's censuses (cells, heap bytes), oldest first;
    ``namer`` names the paths to caches."""
    found = [
        *_hidden_holders(snap),
        *_pyplot_figures(snap),
        *_caches(snap, namer),
        *_allocator(snap),
        *_tracing(snap),
        *_checked(snap, findings),
        *_leaks([*series, snap][-LEAK_WINDOW:]),
        *_growing_cells(censuses[-LEAK_WINDOW:]),
    ]
    df = pd.DataFrame(found, columns=COLUMNS)
    df["bytes"] = df["bytes"].astype(np.int64)
    return df.sort_values("bytes", ascending=False, ignore_index=True)


def _insight(kind: str, saved: int, where: str, evidence: str, fix: str) -> Insight:
    return {"kind": kind, "bytes": int(saved), "where": where, "evidence": evidence, "fix": fix}


def _hidden_holders(snap: Snapshot) -> list[Insight]:
    retention = snap.retention
    freed = retention.all_hidden_retained
    if freed < MIN_BYTES:
        return []
    groups = sorted(
        zip(retention.group_retained(), (label for label, _ in retention.groups), strict=True),
        key=lambda g: -g[0],
    )
    hidden = [r for r in retention.roots if r.hidden]
    outputs_only = all(r.kind == "output" for r in hidden)
    return [
        _insight(
            "held only by IPython",
            freed,
            "; ".join(label for _, label in groups[:3]) + ("; …" if len(groups) > 3 else ""),
            "no variable keeps it: only the output cache"
            + ("" if outputs_only else ", the last result, exception or traceback")
            + f" ({len(hidden)} hidden references)",
            "%reset -f out" if outputs_only else "%memsnap release",
        )
    ]


def _pyplot_figures(snap: Snapshot) -> list[Insight]:
    retention = snap.retention
    held = [
        (root, int(size))
        for root, size in zip(retention.roots, retention.root_retained(), strict=True)
        if root.kind == "pyplot"
    ]
    freed = sum(size for _, size in held)
    if not held or freed < MIN_BYTES:
        return []
    same = roots_by_object(snap)
    if len(held) == 1:
        root = held[0][0]
        fix = release_hint(root, [o for o in same.get(root.index, []) if o is not root])
    else:
        fix = 'plt.close("all")'
    return [
        _insight(
            "figures pyplot holds",
            freed,
            ", ".join(root.name for root, _ in held),
            f"{len(held)} open figure{'s' if len(held) > 1 else ''} (canvas buffers included); "
            "`del fig` frees nothing while pyplot keeps them",
            fix,
        )
    ]


def _caches(snap: Snapshot, namer: Namer | None) -> list[Insight]:
    t = snap.type_table
    codes = t.indices("functools", "_lru_cache_wrapper")
    if not len(codes):
        return []
    retained = snap.retained
    is_dict = np.isin(np.arange(len(t)), t.indices("builtins", "dict"))
    out: list[Insight] = []
    for row in np.flatnonzero(np.isin(snap.type_index, codes)):
        dicts = [int(r) for r in snap.referents_of_row(int(row)) if is_dict[snap.type_index[r]]]
        cache = max(dicts, key=lambda r: retained[r], default=-1)
        if cache < 0 or retained[cache] < MIN_BYTES:
            continue
        where, fix = _named(snap, int(row), namer)
        out.append(
            _insight(
                "cache",
                int(retained[cache]),
                where,
                f"an lru_cache keeps its results alive ({human_bytes(int(retained[cache]))})",
                f"{fix}.cache_clear()" if fix else f"%memsnap why --type {t.label(codes[0])}",
            )
        )
    return out


def _named(snap: Snapshot, row: int, namer: Namer | None) -> tuple[str, str | None]:
    """The shortest path's text to ``row``, and its code when the path names every step."""
    paths = paths_to_root(snap, row, max_paths=1, reverse=snap._reverse())
    if not paths:
        return "unreachable from a named root", None
    root, rows = paths[0]
    labels = path_labels(snap, root, rows, namer)
    text, covered, last = expression(root, labels)
    complete = covered == len(rows) - 1 and (last is not None or covered == 0)
    return text, text if complete else None


def _allocator(snap: Snapshot) -> list[Insight]:
    p = snap.process
    kept = free_kept(p)
    if kept < MIN_BYTES or kept <= FREE_KEPT_LARGE * p.rss:
        return []
    parts = [
        f"{name} {human_bytes(size)}"
        for name, size in (("glibc malloc", p.malloc_free), ("pymalloc", p.pymalloc_free))
        if size
    ]
    return [
        _insight(
            "allocator keeps freed memory",
            kept,
            "the process",
            f"{', '.join(parts)} free but not returned to the OS ({kept / p.rss:.0%} of RSS); "
            "at most this: trim returns the whole free pages among them",
            "%memsnap trim",
        )
    ]


def _tracing(snap: Snapshot) -> list[Insight]:
    own = snap.process.tracemalloc_own
    if not own or own < MIN_BYTES:
        return []
    return [
        _insight(
            "tracing left on",
            own,
            "tracemalloc",
            "tracemalloc's own tables: one trace per live allocation",
            "%memsnap trace off",
        )
    ]


def _checked(snap: Snapshot, findings: Sequence[Finding]) -> list[Insight]:
    """Findings whose object is in the snapshot with the same type; a small view only when
    it alone keeps its array alive (else copying it frees nothing)."""
    out: list[Insight] = []
    for f in findings:
        row = snap.row(f.obj_id)
        if row < 0 or snap.type_label(row) != f.type_name:
            continue
        if f.base_id:
            base = snap.row(f.base_id)
            if base < 0 or snap.retained[row] < snap.size_of(base):
                continue
        out.append(_insight(f.kind, f.bytes, f.where, f.evidence, f.fix))
    return out


# ---------------------------------------------------------------- leak suspects
def _leaks(series: Sequence[Snapshot]) -> list[Insight]:
    if len(series) < 3:
        return []
    found = []
    for label, sizes in _growing((_per_type(s) for s in series), True):
        steps = len(sizes) - 1
        found.append(
            _insight(
                "leak suspect",
                sizes[-1] - sizes[0],
                f"type {label}",
                f"grew in each of the last {steps} snapshots, {human_bytes(sizes[-1] - sizes[0])}"
                f" in all ({human_bytes((sizes[-1] - sizes[0]) // steps)} per snapshot)"
                + _born(series[-2], series[-1], label),
                f"%memsnap why --type {label}",
            )
        )
    names = _largest_variables(series[-1])
    for name, sizes in _growing((_reachable(s, names) for s in series), False):
        steps = len(sizes) - 1
        found.append(
            _insight(
                "leak suspect",
                sizes[-1] - sizes[0],
                name,
                f"what {name} reaches grew in each of the last {steps} snapshots "
                f"({human_bytes((sizes[-1] - sizes[0]) // steps)} per snapshot)",
                f"%memsnap why {name}",
            )
        )
    return found


def _growing_cells(censuses: Sequence[tuple[str, int]]) -> list[Insight]:
    """The heap grew after each of the last censused cells (auto mode)."""
    heaps = [heap for _, heap in censuses]
    rising = all(b > a for a, b in itertools.pairwise(heaps))
    if len(heaps) < 3 or not rising or heaps[-1] - heaps[0] < MIN_BYTES:
        return []
    total, cells = heaps[-1] - heaps[0], [cells for cells, _ in censuses[1:]]
    return [
        _insight(
            "leak suspect",
            total,
            f"cells {cells[0]} … {cells[-1]}",
            f"the heap grew after each of the last {len(cells)} censused cells, "
            f"{human_bytes(total // len(cells))} per cell",
            "%memsnap show --by cell",
        )
    ]


def _growing(tables: Iterable[dict[str, int]], absent_is_zero: bool) -> list[tuple[str, list[int]]]:
    """Keys whose value rose at every step, by MIN_BYTES in all: over every table when an
    absent key counts as 0, else over the latest three or more tables that have the key."""
    series = list(tables)
    out = []
    for key in set().union(*series):
        values = [t.get(key, 0) for t in series]
        if not absent_is_zero:
            present = [key in t for t in series][::-1]
            values = values[len(values) - present.index(False) :] if False in present else values
        rising = all(b > a for a, b in itertools.pairwise(values))
        if len(values) >= 3 and rising and values[-1] - values[0] >= MIN_BYTES:
            out.append((key, values))
    return out


def _per_type(snap: Snapshot) -> dict[str, int]:
    sizes = np.bincount(snap.type_index, weights=snap.sizes, minlength=len(snap.type_table))
    out: dict[str, int] = {}
    for code, label in enumerate(snap.type_table.labels()):
        out[label] = out.get(label, 0) + int(sizes[code])
    return out


def _largest_variables(snap: Snapshot) -> set[str]:
    retention = snap.retention
    held = [
        (int(size), r.name)
        for r, size in zip(retention.roots, retention.root_retained(), strict=True)
        if r.kind == "variable"
    ]
    return {name for _, name in sorted(held, reverse=True)[:LEAK_VARIABLES]}


def _reachable(snap: Snapshot, names: set[str]) -> dict[str, int]:
    """Bytes each of these variables reaches (not through modules, classes or functions):
    a walk from each, not the dominator tree, which an earlier snapshot may not have."""
    roots = [r for r in snap.roots if r.kind == "variable" and r.name in names and r.index >= 0]
    if not roots:
        return {}
    starts = np.array([r.index for r in roots], dtype=np.int64)
    sizes = reachable_sizes(snap.offsets, snap.targets, snap.size_column, starts, shared_mask(snap))
    return {r.name: int(size) for r, size in zip(roots, sizes, strict=True)}


def _born(before: Snapshot, after: Snapshot, label: str) -> str:
    """``; the new ones were born in In[7]`` when cells were tracked."""
    labels = born_labels(after)
    if labels is None:
        return ""
    new = after.diff(before).new_rows
    codes = [i for i, name in enumerate(after.type_table.labels()) if name == label]
    rows = new[np.isin(after.type_index[new], codes)]
    if not len(rows):
        return ""
    cells = pd.Series(labels[rows]).value_counts()
    return f"; the new ones were born in {cells.index[0]} ({cells.iloc[0] / len(rows):.0%})"
