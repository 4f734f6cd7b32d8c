"""The DataFrames a snapshot shows: by type, by module, per object, per variable, memory."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..model import graph
from ..model.retention import reach_mask, sole_retained
from ..model.snapshot import Root, Snapshot
from .memory import memory_table  # noqa: F401 - the memory view lives there

SHARED_INFRASTRUCTURE = frozenset(
    {
        "module",
        "function",
        "builtin_function_or_method",
        "method_descriptor",
        "wrapper_descriptor",
        "getset_descriptor",
        "member_descriptor",
        "classmethod_descriptor",
        "method-wrapper",
        "code",
        "frame",
    }
)
"""Builtin types a variable's reachable size does not go through (nor through classes):
reaching a module or a class from a variable says nothing about what the variable costs."""


def _grouped(
    snap: Snapshot,
    keys: list[str],
    key_of_type: pd.DataFrame,
    retained: bool,
    keep: np.ndarray | None = None,
) -> pd.DataFrame:
    n_types = len(snap.type_table)
    types, sizes = snap.type_index, snap.sizes
    if keep is not None:
        types, sizes = types[keep], sizes[keep]
    counts = np.bincount(types, minlength=n_types)
    per_type = key_of_type.assign(
        count=counts, size=np.bincount(types, weights=sizes, minlength=n_types).astype(np.int64)
    )
    columns = ["count", "size"]
    if retained:
        per_type["retained"] = snap.retention.type_inclusive(snap, keep)
        columns.append("retained")
    per_type = per_type[per_type["count"] > 0]
    out = per_type.groupby(keys, sort=False, as_index=False)[columns].sum()
    total = max(int(sizes.sum()), 1)
    out["share"] = out["size"] / total
    return out.sort_values(["size", "count"], ascending=False, ignore_index=True)


def _type_frame(snap: Snapshot) -> pd.DataFrame:
    t = snap.type_table
    return pd.DataFrame({"type": list(t.qualname), "module": list(t.module)})


def types_table(snap: Snapshot, keep: np.ndarray | None = None) -> pd.DataFrame:
    """type, module, count, size (shallow bytes), retained (the type's inclusive size: bytes
    its objects keep alive, nothing counted twice), share of all bytes; largest first.
    ``keep``: count only these rows (their share is of their own total)."""
    return _grouped(snap, ["type", "module"], _type_frame(snap), retained=True, keep=keep)


def modules_table(snap: Snapshot, keep: np.ndarray | None = None) -> pd.DataFrame:
    """module (that defines the type), count, size, share; largest first."""
    return _grouped(snap, ["module"], _type_frame(snap)[["module"]], retained=False, keep=keep)


def objects_table(snap: Snapshot) -> pd.DataFrame:
    """One row per object: id, type, module, size and retained size (what freeing it would
    free; categoricals keep it compact)."""
    t = snap.type_table
    return pd.DataFrame(
        {
            "id": snap.ids,
            "type": _categorical(t.qualname, snap.type_index),
            "module": _categorical(t.module, snap.type_index),
            "size": snap.sizes,
            "retained": snap.retained,
        }
    )


def _categorical(names_per_type: tuple[str, ...], type_index: np.ndarray) -> Any:
    categories, codes = np.unique(np.array(names_per_type, dtype=object), return_inverse=True)
    return pd.Categorical.from_codes(codes[type_index], categories=pd.Index(categories))


def shared_mask(snap: Snapshot) -> np.ndarray:
    """Rows that are shared infrastructure: classes, modules and their namespaces (reached
    from any function through its globals), functions, code, frames, numpy dtypes (shared
    by every array of the type). Computed once per snapshot; read-only."""
    mask: np.ndarray = snap.cached("shared_mask", lambda: _shared_mask(snap))
    return mask


def _shared_mask(snap: Snapshot) -> np.ndarray:
    t = snap.type_table
    builtin = [t.module[i] == "builtins" for i in range(len(t))]
    per_type = np.array(
        [
            t.is_class[i]
            or (builtin[i] and t.qualname[i] in SHARED_INFRASTRUCTURE)
            or t.module[i] == "numpy.dtypes"
            for i in range(len(t))
        ],
        dtype=bool,
    )
    if not len(per_type):
        return np.zeros(len(snap), dtype=bool)
    mask = per_type[snap.type_index]
    is_module = np.array([builtin[i] and t.qualname[i] == "module" for i in range(len(t))])
    is_dict = np.array([builtin[i] and t.qualname[i] == "dict" for i in range(len(t))])
    namespaces = [r.index for r in snap.roots if r.kind == "namespace" and r.index >= 0]
    for row in np.flatnonzero(is_module[snap.type_index]):
        refs = snap.referents_of_row(int(row))
        namespaces.extend(int(x) for x in refs if is_dict[snap.type_index[x]])
    mask[np.array(namespaces, dtype=np.int64)] = True
    mask.setflags(write=False)
    result: np.ndarray = mask
    return result


def variables_table(snap: Snapshot) -> pd.DataFrame:
    """name, type, size (shallow), reachable (deep, not through classes, modules or
    functions), retained (what ``del name`` would free, every holder considered), shared
    (reachable bytes something else also keeps alive) and shared_with (those holders)."""
    roots = [r for r in snap.roots if r.kind == "variable" and r.index >= 0]
    starts = np.array([r.index for r in roots], dtype=np.int64)
    retained = sole_retained(snap, roots)
    stop = shared_mask(snap)
    sizes = snap.size_column
    reachable = graph.reachable_sizes(snap.offsets, snap.targets, sizes, starts, stop)
    shared = np.maximum(np.asarray(reachable, dtype=np.int64) - retained, 0)
    df = pd.DataFrame(
        {
            "name": [r.name for r in roots],
            "type": [snap.type_label(r.index) for r in roots],
            "size": sizes.take(starts),
            "reachable": np.asarray(reachable, dtype=np.int64),
            "retained": retained,
            "shared": shared,
            "shared_with": _shared_with(snap, roots, shared, stop),
        }
    )
    return df.sort_values(
        ["retained", "reachable", "name"], ascending=[False, False, True], ignore_index=True
    )


SHARED_CANDIDATE_KINDS = ("variable", "output", "holder")
MAX_SHARING_ROOTS = 64
ATOM_TYPES = frozenset({"str", "int", "float", "bool", "NoneType", "bytes"})
ATOM_BYTES = 256
"""Small immutable objects (interned names, small ints) that every holder shares: bytes
shared only through them make no one a sharer."""


def _sharers(snap: Snapshot) -> list[Root]:
    """The roots a variable can share with: every variable, and one entry per object the
    hidden holders keep (``Out[4]`` for ``Out[4], _4, _, displayhook._``)."""
    out: list[Root] = []
    hidden: dict[int, Root] = {}
    for r in snap.roots:
        if r.index < 0 or r.kind not in SHARED_CANDIDATE_KINDS:
            continue
        if not r.hidden:
            out.append(r)
        elif r.index not in hidden or _alias_rank(r) < _alias_rank(hidden[r.index]):
            hidden[r.index] = r
    return (out + list(hidden.values()))[:MAX_SHARING_ROOTS]


def _alias_rank(root: Root) -> int:
    """Which of an object's hidden holders names it: ``Out[n]``, then ``_n``, then others."""
    name = root.name
    return 0 if name.startswith("Out[") else 1 if name[1:].isdigit() else 2


def _atoms(snap: Snapshot) -> np.ndarray:
    t = snap.type_table
    codes = [i for i, q in enumerate(t.qualname) if q in ATOM_TYPES and t.module[i] == "builtins"]
    return np.isin(snap.type_index, codes) & (snap.size_column.small < ATOM_BYTES)


def _shared_with(
    snap: Snapshot, roots: list[Root], shared: np.ndarray, stop: np.ndarray
) -> list[str]:
    """For each variable with shared bytes, the other named holders that reach them. Each
    object gets one bit per holder that reaches it (one word per object, as narrow as the
    number of holders allows, not a mask per holder); overlaps are summed over the objects
    two or more reach."""
    candidates = _sharers(snap)
    if not candidates or not shared.any():
        return [""] * len(roots)
    word = np.min_scalar_type((1 << len(candidates)) - 1)
    one = word.type(1)
    counted = ~_atoms(snap)
    bits = np.zeros(len(snap), dtype=word)
    for j, r in enumerate(candidates):
        reached = reach_mask(snap.offsets, snap.targets, r.index, stop) & counted
        bits[reached] |= word.type(1 << j)
        del reached
    several = np.flatnonzero(bits & (bits - one))  # two or more bits set
    bits, sizes = bits[several], snap.size_column.take(several)
    column = {r: j for j, r in enumerate(candidates)}
    out = []
    for root, amount in zip(roots, shared, strict=True):
        if amount <= 0 or root not in column:
            out.append("")
            continue
        mine = (bits >> word.type(column[root])) & one == 1
        held, held_sizes = bits[mine], sizes[mine]
        overlaps = [
            (int(held_sizes[(held >> word.type(j)) & one == 1].sum()), o.name)
            for j, o in enumerate(candidates)
            if o is not root
        ]
        names = [name for size, name in sorted(overlaps, reverse=True) if size >= amount / 10]
        out.append(", ".join(names))
    return out


def holders_table(snap: Snapshot) -> pd.DataFrame:
    """One row per object held by hidden holders (output cache, last result, exception,
    traceback): who holds it, what they alone keep alive together, how to release it."""
    from .paths import release_hint

    retention = snap.retention
    groups = retention.groups
    rows = np.array([row for _, row in groups], dtype=np.int64)
    reachable = graph.reachable_sizes(
        snap.offsets, snap.targets, snap.size_column, rows, shared_mask(snap)
    )
    first_kind = {r.index: r for r in retention.roots if r.hidden}
    df = pd.DataFrame(
        {
            "held_by": [label for label, _ in groups],
            "type": [snap.type_label(int(r)) for r in rows],
            "retained": retention.group_retained(),
            "reachable": np.asarray(reachable, dtype=np.int64),
            "fix": [release_hint(first_kind[int(r)]) for r in rows],
        }
    )
    return df.sort_values(["retained", "reachable"], ascending=False, ignore_index=True)


def cell_label(born: int, first: int | None = None) -> str:
    """``In[7]``; ``In[5–7]`` when births of cells 5 to 7 were first seen together."""
    if born == 0:
        return "before tracking"
    return f"In[{born}]" if first is None or first >= born else f"In[{first}–{born}]"


def born_labels(snap: Snapshot) -> np.ndarray | None:
    """Each row's cell of birth as text, or None when cells were not tracked."""
    if snap.born is None:
        return None
    if not len(snap.born):
        return np.zeros(0, dtype=object)
    lookup = np.empty(int(snap.born.max()) + 1, dtype=object)
    first = dict(snap.born_ranges)
    for cell in np.flatnonzero(np.bincount(snap.born)):
        lookup[cell] = cell_label(int(cell), first.get(int(cell)))
    result: np.ndarray = lookup[snap.born]
    return result


def site_labels(snap: Snapshot) -> np.ndarray | None:
    """Each row's allocation site as text, or None when tracemalloc was not tracing."""
    if snap.site_index is None:
        return None
    labels = np.array([*snap.site_labels, "unknown (allocated before tracing)"], dtype=object)
    result: np.ndarray = labels[snap.site_index]  # -1 picks the last label
    return result


def _by_label(snap: Snapshot, labels: np.ndarray, key: str) -> pd.DataFrame:
    df = pd.DataFrame({key: labels, "size": snap.sizes})
    out = df.groupby(key, sort=False).agg(count=("size", "size"), size=("size", "sum"))
    out = out.reset_index()
    out["share"] = out["size"] / max(snap.total_size, 1)
    return out.sort_values(["size", "count"], ascending=False, ignore_index=True)


class NotRecorded(ValueError):
    """A grouping needs what was not recorded when the snapshot was taken (cells of birth,
    allocation sites)."""


def cells_table(snap: Snapshot) -> pd.DataFrame:
    """cell (of birth), count, size, share: which cell made the objects alive now."""
    labels = born_labels(snap)
    if labels is None:
        raise NotRecorded("cells were not tracked for this snapshot: run %memsnap auto on first")
    return _by_label(snap, labels, "cell")


def sites_table(snap: Snapshot) -> pd.DataFrame:
    """site (``In[7] line 3`` or ``file.py:120``), count, size, share."""
    labels = site_labels(snap)
    if labels is None:
        raise NotRecorded("no allocation sites: run %memsnap trace on before allocating")
    return _by_label(snap, labels, "site")
