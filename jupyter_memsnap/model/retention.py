"""Who keeps what alive: dominators with one node per named root, and paths to roots.

Each named root (``df``, ``Out[3]``, ``sys.last_traceback``, ``module pandas`` …) becomes a
node of its own between the super-root and its object, so that "the bytes this name alone
keeps alive" is that node's retained size, exactly what ``del name`` would free.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from . import graph, spill
from .snapshot import Root, Snapshot

KIND_PRIORITY = (
    "variable",
    "pyplot",
    "output",
    "holder",
    "history",
    "namespace",
    "local",
    "frame",
    "module",
    "interpreter",
)
"""Order in which roots are named when several hold the same object (unreached last)."""


ALL_HIDDEN = "all hidden holders"


@dataclass(frozen=True)
class Retention:
    """Dominator results over an augmented graph: rows ``0..n-1`` are objects, then one
    node per root (``roots[j]`` is row ``n + j``), then group nodes over hidden holders —
    one per object in the output cache (``Out[3], _, _3`` together), one for the last
    result and exception (``sys.last_*``, the traceback kept for ``%debug``, the last
    execution result) — and last one over all hidden holders (what ``%memsnap release``
    would free)."""

    idom: np.ndarray  # int32; -1 = the super-root
    retained: np.ndarray  # int64
    roots: tuple[Root, ...]
    groups: tuple[tuple[str, int], ...]  # (holder names, row of their first object)

    @property
    def n_objects(self) -> int:
        return len(self.idom) - len(self.roots) - len(self.groups) - 1

    def object_retained(self) -> np.ndarray:
        return self.retained[: self.n_objects]

    def root_retained(self) -> np.ndarray:
        n = self.n_objects
        return self.retained[n : n + len(self.roots)]

    def group_retained(self) -> np.ndarray:
        start = self.n_objects + len(self.roots)
        return self.retained[start : start + len(self.groups)]

    @property
    def all_hidden_retained(self) -> int:
        """Bytes freed if every hidden holder let go (what ``%memsnap release`` frees)."""
        return int(self.retained[-1])

    def type_inclusive(self, snap: Snapshot, keep: np.ndarray | None = None) -> np.ndarray:
        """Per type: retained bytes of its objects not dominated by another of its kind
        (only the rows ``keep`` marks, when given)."""
        n_types = len(snap.type_table)
        extra = len(self.idom) - len(snap)
        own = snap.type_index.astype(np.int32)
        if keep is not None:
            own = np.where(keep, own, np.int32(n_types))
        types = np.concatenate([own, np.full(extra, n_types, np.int32)])
        return graph.type_inclusive(self.idom, self.retained, types, n_types + 1)[:n_types]

    def held_by_group(self, label: str) -> np.ndarray:
        """The objects a holder group keeps alive that nothing else in the group does: the
        rows its node, or one of its roots' nodes, immediately dominates."""
        n = self.n_objects
        start = n + len(self.roots)
        groups = [start + g for g, (name, _) in enumerate(self.groups) if name == label]
        if not groups:
            return np.zeros(0, np.int64)
        members = np.flatnonzero(np.isin(self.idom[n:start], groups)) + n
        return np.flatnonzero(np.isin(self.idom[:n], [*groups, *members]))


def _named_roots(snap: Snapshot) -> tuple[Root, ...]:
    return tuple(r for r in snap.roots if r.index >= 0)


def _holder_groups(roots: tuple[Root, ...], n: int) -> list[list[int]]:
    """The nodes (``n + j`` for ``roots[j]``) of each holder group's roots."""
    keys = [_group_key(r) for r in roots]
    group_of = {k: g for g, k in enumerate(dict.fromkeys(k for k in keys if k is not None))}
    members: list[list[int]] = [[] for _ in group_of]
    for j, key in enumerate(keys):
        if key is not None:
            members[group_of[key]].append(n + j)
    return members


def root_edges(snap: Snapshot) -> np.ndarray:
    """Ascending positions in ``snap.targets`` of the container references that *are* the
    named roots (the namespace dict's reference to a variable's value is the variable
    itself): one per root and container that holds it."""
    offsets, targets = snap.offsets, snap.targets
    taken: set[int] = set()
    for r in _named_roots(snap):
        for v in r.via:
            lo, hi = int(offsets[v]), int(offsets[v + 1])
            hits = [lo + int(h) for h in np.flatnonzero(targets[lo:hi] == r.index)]
            free = [h for h in hits if h not in taken]
            if free:
                taken.add(free[0])
                break
    return np.array(sorted(taken), dtype=np.int64)


def _with_root_nodes(snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """The graph of Retention's nodes: the snapshot's without its root edges, then each
    root's node -> its object, each group -> its roots' nodes, all-hidden -> the groups.
    Its first ``n + 1`` offsets are the pruned snapshot graph."""
    n, roots = len(snap), _named_roots(snap)
    offsets, targets = snap.offsets, snap.targets
    dropped = root_edges(snap).astype(np.uint32)
    members = _holder_groups(roots, n)
    first_group = n + len(roots)
    extra = [[r.index] for r in roots] + members
    extra.append(list(range(first_group, first_group + len(members))))
    degrees = np.array([len(e) for e in extra], dtype=np.int64)
    kept = len(targets) - len(dropped)
    if kept + int(degrees.sum()) > np.iinfo(np.uint32).max:
        raise ValueError("the graph with root nodes has more references than offsets can index")
    new_offsets = np.empty(n + 1 + len(extra), dtype=np.uint32)
    new_offsets[: n + 1] = offsets
    # rows from the k-th dropped edge's on lost k + 1 edges (one slice per dropped edge)
    bounds = [*(np.searchsorted(offsets, dropped, side="right") - 1).tolist(), n]
    for k in range(len(dropped)):
        new_offsets[1 + bounds[k] : 1 + bounds[k + 1]] -= k + 1
    new_offsets[n + 1 :] = kept + np.cumsum(degrees)
    new_targets = np.empty(int(new_offsets[-1]), dtype=np.int32)
    at = start = 0
    for end in [*dropped.tolist(), len(targets)]:  # the runs between dropped edges
        new_targets[at : at + end - start] = targets[start:end]
        at, start = at + end - start, end + 1
    new_targets[kept:] = [t for e in extra for t in e]
    return spill.to_file(new_offsets), spill.to_file(new_targets)


def _root_node_graph(snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    graph: tuple[np.ndarray, np.ndarray] = snap.cached("root nodes", lambda: _with_root_nodes(snap))
    return graph


def pruned_graph(snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """The snapshot's graph without the references that are named roots (views of the
    cached graph with root nodes)."""
    offsets, targets = _root_node_graph(snap)
    n = len(snap)
    return offsets[: n + 1], targets[: int(offsets[n])]


def compute_retention(snap: Snapshot) -> Retention:
    """Dominator tree of the snapshot with root and holder-group nodes (see Retention)."""
    n = len(snap)
    roots = _named_roots(snap)
    members = _holder_groups(roots, n)
    offsets, targets = _root_node_graph(snap)
    all_hidden = n + len(roots) + len(members)
    sizes = np.zeros(len(offsets) - 1, dtype=np.int64)
    sizes[:n] = snap.sizes
    children = [all_hidden] + [n + j for j, r in enumerate(roots) if not r.hidden]
    idom, retained = graph.dominator_tree(
        offsets, targets, np.array(children, dtype=np.int32), sizes
    )
    del sizes
    return Retention(
        idom=spill.to_file(idom),
        retained=spill.to_file(retained),
        roots=roots,
        groups=tuple(
            (", ".join(roots[m - n].name for m in mem), roots[mem[0] - n].index) for mem in members
        ),
    )


def sole_retained(snap: Snapshot, candidates: list[Root]) -> np.ndarray:
    """For each of these named roots, the bytes it alone keeps alive: its node's retained
    size in :class:`Retention`. Taken from the dominator tree when it is already computed;
    otherwise from which root alone reaches each object (``graph.sole_holders``: 4 bytes per
    object, where the tree needs about 90)."""
    if snap.is_cached("retention") or not graph.HAVE_COMPILED:
        retention = snap.retention
        by_root = dict(zip(retention.roots, retention.root_retained(), strict=True))
        return np.array([by_root.get(r, 0) for r in candidates], dtype=np.int64)
    chosen = set(candidates)
    others = [r.index for r in _named_roots(snap) if r not in chosen]
    starts = np.array(others + [r.index for r in candidates], dtype=np.int32)
    owner = graph.sole_holders(snap.offsets, snap.targets, starts, len(others), root_edges(snap))
    return snap.size_column.sum_by(owner, len(candidates))


def _group_key(root: Root) -> tuple[str, int] | None:
    """Which holder group a root belongs to (None: not a hidden holder)."""
    if root.kind == "output":
        return ("output", root.index)
    if root.kind == "holder":
        return ("holder", -1)
    return None


def distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values. Sorting and comparing neighbours: numpy >= 2.3's
    ``np.unique`` hashes instead, several times slower on millions of row numbers."""
    if values.size < 2:
        return values
    values = np.sort(values)
    keep = np.empty(values.size, dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    result: np.ndarray = values[keep]
    return result


def reach_mask(
    offsets: np.ndarray, targets: np.ndarray, starts: int | np.ndarray, stop: np.ndarray
) -> np.ndarray:
    """Bool mask of the rows reachable from ``starts`` (one row or several; always included
    and expanded); other rows flagged in ``stop`` are neither included nor expanded.
    Compiled, or breadth-first with one numpy step per level (slow on deep chains)."""
    if graph.HAVE_COMPILED:
        return graph.reach_mask(offsets, targets, starts, stop)
    return bfs_reach_mask(offsets, targets, starts, stop)


def bfs_reach_mask(
    offsets: np.ndarray, targets: np.ndarray, starts: int | np.ndarray, stop: np.ndarray
) -> np.ndarray:
    """reach_mask without the compiled extension."""
    seen = np.zeros(len(offsets) - 1, dtype=bool)
    frontier = distinct(np.atleast_1d(np.asarray(starts, dtype=np.int64)))
    seen[frontier] = True
    while frontier.size:
        lo = offsets[frontier].astype(np.int64)
        counts = offsets[frontier + 1] - lo
        total = int(counts.sum())
        if not total:
            break
        index = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(total)
        nxt = targets[index]
        frontier = distinct(nxt[~seen[nxt] & ~stop[nxt]].astype(np.int64))
        seen[frontier] = True
    return seen


def _root_rank(root: Root) -> int:
    kind = root.kind
    return KIND_PRIORITY.index(kind) if kind in KIND_PRIORITY else len(KIND_PRIORITY)


def roots_by_object(snap: Snapshot) -> dict[int, list[Root]]:
    """Row -> the roots pointing straight at it, best named first."""
    out: dict[int, list[Root]] = {}
    for r in snap.roots:
        if r.index >= 0:
            out.setdefault(r.index, []).append(r)
    for rs in out.values():
        rs.sort(key=_root_rank)
    return out


def reverse_graph(snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """CSR of referrers, over the graph without the references that are named roots
    (so a variable's value is reached from the variable, not from the namespace dict):
    ``sources[roff[i]:roff[i + 1]]`` are the rows referring to row i."""
    n = len(snap)
    offsets, targets = pruned_graph(snap)
    degree = np.diff(offsets)
    sources = np.repeat(np.arange(n, dtype=np.int32), degree)
    order = np.argsort(targets, kind="stable")
    counts = np.bincount(targets, minlength=n)
    roff = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=roff[1:])
    del counts, degree
    return spill.to_file(roff), spill.to_file(sources[order])


def paths_to_root(
    snap: Snapshot,
    row: int,
    *,
    max_paths: int = 3,
    reverse: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[tuple[Root, list[int]]]:
    """Shortest paths from named roots to ``row``: ``(root, [root's row, …, row])``.

    A backward breadth-first search; the nearest root of each name comes first, preferring
    variables and hidden holders over modules and frames at equal distance. At most one
    path per root object and ``max_paths`` in all. The search stops at namespaces: what
    reaches the user's namespace (a function's globals, the ``__main__`` module) does not
    keep its entries alive, those entries' names do.
    """
    roff, sources = reverse if reverse is not None else reverse_graph(snap)
    holders = roots_by_object(snap)
    namespaces = {r.index for r in snap.roots if r.kind == "namespace"}
    namespaces.update(v for r in snap.roots if r.kind == "variable" for v in r.via)
    parent = {row: -1}
    found: list[tuple[int, int]] = []  # (rank, node)
    queue = deque([row])
    depth = {row: 0}
    limit_depth: int | None = None
    while queue:
        node = queue.popleft()
        d = depth[node]
        if limit_depth is not None and d > limit_depth:
            break
        if node in holders:
            found.append((d, node))
            if len(found) >= max_paths and limit_depth is None:
                limit_depth = d  # finish this level to rank ties fairly, then stop
        if node in namespaces:
            continue
        for src in sources[roff[node] : roff[node + 1]]:
            s = int(src)
            if s not in parent:
                parent[s] = node
                depth[s] = d + 1
                queue.append(s)
    found.sort(key=lambda item: (item[0], _root_rank(holders[item[1]][0])))
    paths: list[tuple[Root, list[int]]] = []
    for _, node in found[:max_paths]:
        path = [node]
        while path[-1] != row:
            path.append(parent[path[-1]])
        paths.append((holders[node][0], path))
    return paths
