"""Graph algorithms over a heap snapshot's reference graph.

The graph has ``n`` nodes in CSR form: ``offsets`` (uint32, length n + 1) and ``targets``
(int32), node ``i`` referring to ``targets[offsets[i]:offsets[i + 1]]``.  A virtual
super-root, not one of the n nodes, refers to ``root_children``.

Each public function runs the compiled ``_graph`` extension when it is built
(``HAVE_COMPILED``) and otherwise the pure Python/numpy reference (``_py_*``), which gives
exactly the same results and serves as the test oracle.  Integer inputs of another integer
dtype are converted (ValueError if a value does not fit); results are writable numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..compiled import load
from .compact import Sizes

_graph: Any = load(f"{__package__}._graph", "graph algorithms")

HAVE_COMPILED: bool = _graph is not None

__all__ = [
    "HAVE_COMPILED",
    "dominator_tree",
    "reach_mask",
    "reachable_sizes",
    "sole_holders",
    "type_inclusive",
]

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
_MAX_NODES = 2**31 - 3


def _arr(a: npt.ArrayLike, dtype: type[np.generic], name: str) -> Any:
    """Return ``a`` as a contiguous 1-D array of ``dtype``, converting integers safely."""
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype == dtype:
        return np.ascontiguousarray(arr)
    if arr.size == 0:
        return np.zeros(0, dtype)
    if dtype is np.bool_:
        if arr.dtype.kind not in "biu":
            raise TypeError(f"{name} must be a bool mask, got dtype {arr.dtype}")
        return np.ascontiguousarray(arr != 0)
    if arr.dtype.kind not in "biu":
        raise TypeError(f"{name} must have an integer dtype, got {arr.dtype}")
    info = np.iinfo(dtype)  # type: ignore[type-var]
    if int(arr.min()) < info.min or int(arr.max()) > info.max:
        raise ValueError(f"{name} has values that do not fit in {np.dtype(dtype).name}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _graph_args(offsets: npt.ArrayLike, targets: npt.ArrayLike, sizes: npt.ArrayLike) -> Any:
    return (
        _arr(offsets, np.uint32, "offsets"),
        _arr(targets, np.int32, "targets"),
        _arr(sizes, np.int64, "sizes"),
    )


def _check_shape(off: U32, sizes: Any) -> int:
    if len(off) < 1:
        raise ValueError("offsets must have n + 1 >= 1 entries")
    n = len(off) - 1
    if n > _MAX_NODES:
        raise ValueError(f"graph too large: {n} nodes (at most {_MAX_NODES})")
    if len(sizes) != n:
        raise ValueError(f"sizes has length {len(sizes)}, expected n={n}")
    return n


def _check_index(a: Any, lo: int, hi: int, name: str) -> None:
    bad = np.flatnonzero((a < lo) | (a >= hi))
    if len(bad):
        j = int(bad[0])
        raise ValueError(f"{name}[{j}]={int(a[j])} out of range [{lo}, {hi})")


def _check_csr(off: U32, tgt: I32, n: int) -> None:
    if off[0] != 0:
        raise ValueError(f"offsets[0] must be 0, got {int(off[0])}")
    dec = np.flatnonzero(off[1:] < off[:-1])
    if len(dec):
        i = int(dec[0])
        raise ValueError(
            f"offsets must be non-decreasing: offsets[{i}]={int(off[i])} > "
            f"offsets[{i + 1}]={int(off[i + 1])}"
        )
    if off[-1] != len(tgt):
        raise ValueError(f"offsets[-1]={int(off[-1])} must equal len(targets)={len(tgt)}")
    _check_index(tgt, 0, n, "targets")


# ---- dominator tree ------------------------------------------------------------------------


def _py_dominator_tree(
    offsets: npt.ArrayLike,
    targets: npt.ArrayLike,
    root_children: npt.ArrayLike,
    sizes: npt.ArrayLike,
) -> tuple[I32, I64]:
    """Reference semi-NCA dominator tree; see :func:`dominator_tree`."""
    off, tgt, sz = _graph_args(offsets, targets, sizes)
    rc = _arr(root_children, np.int32, "root_children")
    n = _check_shape(off, sz)
    _check_csr(off, tgt, n)
    _check_index(rc, 0, n, "root_children")
    o: list[int] = off.tolist()
    t: list[int] = tgt.tolist()

    # 1. Iterative DFS from the super-root (preorder number 0), children in order.
    pre = [-1] * n
    vertex = [-1]
    parent = [0]
    for r in rc.tolist():
        if pre[r] >= 0:
            continue
        pre[r] = len(vertex)
        vertex.append(r)
        parent.append(0)
        stk, cur = [r], [o[r]]
        while stk:
            u, c, end = stk[-1], cur[-1], o[stk[-1] + 1]
            while c < end and pre[t[c]] >= 0:
                c += 1
            if c >= end:
                stk.pop()
                cur.pop()
                continue
            cur[-1] = c + 1
            w = t[c]
            pre[w] = len(vertex)
            vertex.append(w)
            parent.append(pre[u])
            stk.append(w)
            cur.append(o[w])
    big_n = len(vertex)

    # 2. Predecessors in preorder numbers (every edge out of a reachable node stays reachable).
    pre_a = np.array(pre, dtype=np.int64)
    src = np.repeat(pre_a, np.diff(off))
    keep = src >= 0
    src = np.concatenate([np.zeros(len(rc), np.int64), src[keep]])
    dst = np.concatenate([pre_a[rc], pre_a[tgt[keep]]])
    order = np.argsort(dst, kind="stable")
    preds: list[int] = src[order].tolist()
    rs: list[int] = np.searchsorted(dst[order], np.arange(big_n + 1)).tolist()

    # 3. Semidominators in reverse preorder.  Vertices > i are linked into a forest with
    #    path compression: anc[v] is an ancestor, best[v] the minimum semi on the way to it.
    semi = list(range(big_n))
    best = list(range(big_n))
    anc = parent.copy()
    for i in range(big_n - 1, 0, -1):
        s = parent[i]
        for j in range(rs[i], rs[i + 1]):
            v = preds[j]
            if v <= i:
                s = min(s, v)
                continue
            if anc[v] > i:  # eval(v), compressing the path iteratively
                path = []
                while anc[v] > i:
                    path.append(v)
                    v = anc[v]
                top, b = anc[v], best[v]
                for v in reversed(path):
                    anc[v] = top
                    b = best[v] = min(best[v], b)
            s = min(s, best[v])
        semi[i] = best[i] = s

    # 4. Immediate dominators, in preorder.
    idom = parent
    for i in range(1, big_n):
        d = idom[i]
        while d > semi[i]:
            d = idom[d]
        idom[i] = d

    # 5. Back to node ids; retained sizes accumulated child-to-parent in reverse preorder.
    s_list: list[int] = sz.tolist()
    idom_out = [-2] * n
    ret = [0] * n
    for p in range(1, big_n):
        v = vertex[p]
        idom_out[v] = -1 if idom[p] == 0 else vertex[idom[p]]
        ret[v] = s_list[v]
    for p in range(big_n - 1, 0, -1):
        if idom[p]:
            ret[vertex[idom[p]]] += ret[vertex[p]]
    return np.array(idom_out, dtype=np.int32), np.array(ret, dtype=np.int64)


def _c_dominator_tree(
    offsets: npt.ArrayLike,
    targets: npt.ArrayLike,
    root_children: npt.ArrayLike,
    sizes: npt.ArrayLike,
) -> tuple[I32, I64]:
    """Compiled dominator tree; see :func:`dominator_tree`."""
    off, tgt, sz = _graph_args(offsets, targets, sizes)
    rc = _arr(root_children, np.int32, "root_children")
    idom_b, ret_b = _compiled().dominator_tree(off, tgt, rc, sz)
    return np.frombuffer(idom_b, np.int32), np.frombuffer(ret_b, np.int64)


def dominator_tree(
    offsets: npt.ArrayLike,
    targets: npt.ArrayLike,
    root_children: npt.ArrayLike,
    sizes: npt.ArrayLike,
) -> tuple[I32, I64]:
    """Immediate dominators and retained sizes of the graph rooted at the super-root.

    Returns ``(idom, retained)``: ``idom`` int32[n] is each node's immediate dominator,
    -1 for the super-root and -2 for nodes unreachable from it; ``retained`` int64[n] is the
    sum of ``sizes`` over the node's dominator subtree (itself included), 0 if unreachable.
    """
    impl = _c_dominator_tree if HAVE_COMPILED else _py_dominator_tree
    return impl(offsets, targets, root_children, sizes)


# ---- type-inclusive sizes ------------------------------------------------------------------


def _ti_args(
    idom: npt.ArrayLike, retained: npt.ArrayLike, type_index: npt.ArrayLike, n_types: int
) -> Any:
    d = _arr(idom, np.int32, "idom")
    r = _arr(retained, np.int64, "retained")
    t = _arr(type_index, np.int32, "type_index")
    if not len(d) == len(r) == len(t):
        raise ValueError(
            "idom, retained and type_index must have equal lengths, got "
            f"{len(d)}, {len(r)}, {len(t)}"
        )
    if len(d) > _MAX_NODES:
        raise ValueError(f"graph too large: {len(d)} nodes (at most {_MAX_NODES})")
    if n_types < 0:
        raise ValueError(f"n_types out of range: {n_types}")
    return d, r, t


def _py_type_inclusive(
    idom: npt.ArrayLike, retained: npt.ArrayLike, type_index: npt.ArrayLike, n_types: int
) -> I64:
    """Reference implementation of :func:`type_inclusive`."""
    d, r, t = _ti_args(idom, retained, type_index, n_types)
    n = len(d)
    _check_index(d, -2, n, "idom")
    _check_index(t, 0, n_types, "type_index")
    order = np.argsort(d, kind="stable")  # children grouped by parent, in node order
    starts: list[int] = np.searchsorted(d[order], np.arange(-1, n + 1)).tolist()
    kids: list[int] = order.tolist()
    ty: list[int] = t.tolist()
    ret: list[int] = r.tolist()
    active = [0] * n_types
    total = [0] * n_types
    visited = 0
    for root in np.flatnonzero(d < 0).tolist():
        stk = [root]
        cur = [starts[root + 1]]
        if active[ty[root]] == 0:
            total[ty[root]] += ret[root]
        active[ty[root]] += 1
        visited += 1
        while stk:
            u = stk[-1]
            if cur[-1] < starts[u + 2]:
                v = kids[cur[-1]]
                cur[-1] += 1
                if active[ty[v]] == 0:
                    total[ty[v]] += ret[v]
                active[ty[v]] += 1
                visited += 1
                stk.append(v)
                cur.append(starts[v + 1])
            else:
                active[ty[u]] -= 1
                stk.pop()
                cur.pop()
    if visited != n:
        raise ValueError("idom is not a forest: it contains a cycle")
    return np.array(total, dtype=np.int64)


def _c_type_inclusive(
    idom: npt.ArrayLike, retained: npt.ArrayLike, type_index: npt.ArrayLike, n_types: int
) -> I64:
    """Compiled implementation of :func:`type_inclusive`."""
    d, r, t = _ti_args(idom, retained, type_index, n_types)
    return np.frombuffer(_compiled().type_inclusive(d, r, t, int(n_types)), np.int64)


def type_inclusive(
    idom: npt.ArrayLike, retained: npt.ArrayLike, type_index: npt.ArrayLike, n_types: int
) -> I64:
    """Per type, the retained size of all its nodes, counting nothing twice.

    Sums ``retained`` over the nodes of each type that have no proper dominator-tree
    ancestor of the same type.  ``idom`` as returned by :func:`dominator_tree` (negative
    entries are tree roots); ``type_index`` holds values in ``[0, n_types)``.
    """
    impl = _c_type_inclusive if HAVE_COMPILED else _py_type_inclusive
    return impl(idom, retained, type_index, n_types)


# ---- reachable sizes -----------------------------------------------------------------------


def _rs_args(
    offsets: npt.ArrayLike,
    targets: npt.ArrayLike,
    sizes: npt.ArrayLike,
    starts: npt.ArrayLike,
    stop: npt.ArrayLike,
) -> Any:
    off, tgt, sz = _graph_args(offsets, targets, sizes)
    st = _arr(starts, np.int32, "starts")
    sp = _arr(stop, np.bool_, "stop")
    return off, tgt, sz, st, sp


def _py_reachable_sizes(
    offsets: npt.ArrayLike,
    targets: npt.ArrayLike,
    sizes: npt.ArrayLike | Sizes,
    starts: npt.ArrayLike,
    stop: npt.ArrayLike,
) -> I64:
    """Reference implementation of :func:`reachable_sizes`."""
    if isinstance(sizes, Sizes):
        sizes = sizes.decode()
    off, tgt, sz, st, sp = _rs_args(offsets, targets, sizes, starts, stop)
    n = _check_shape(off, sz)
    if len(sp) != n:
        raise ValueError(f"stop has length {len(sp)}, expected n={n}")
    _check_csr(off, tgt, n)
    _check_index(st, 0, n, "starts")
    o: list[int] = off.tolist()
    t: list[int] = tgt.tolist()
    s_list: list[int] = sz.tolist()
    stop_l: list[bool] = sp.tolist()
    stamp = [-1] * n
    out = []
    for k, s in enumerate(st.tolist()):
        stamp[s] = k
        total = s_list[s]
        stk = [s]
        while stk:
            u = stk.pop()
            for w in t[o[u] : o[u + 1]]:
                if stamp[w] != k and not stop_l[w]:
                    stamp[w] = k
                    total += s_list[w]
                    stk.append(w)
        out.append(total)
    return np.array(out, dtype=np.int64)


def _c_reachable_sizes(
    offsets: npt.ArrayLike,
    targets: npt.ArrayLike,
    sizes: npt.ArrayLike | Sizes,
    starts: npt.ArrayLike,
    stop: npt.ArrayLike,
) -> I64:
    """Compiled implementation of :func:`reachable_sizes`."""
    if not isinstance(sizes, Sizes):
        off, tgt, sz, st, sp = _rs_args(offsets, targets, sizes, starts, stop)
        return np.frombuffer(_compiled().reachable_sizes(off, tgt, sz, st, sp), np.int64)
    small, big_rows, big_values = sizes.arrays()
    off, tgt, st, sp = (
        _arr(offsets, np.uint32, "offsets"),
        _arr(targets, np.int32, "targets"),
        _arr(starts, np.int32, "starts"),
        _arr(stop, np.bool_, "stop"),
    )
    result = _compiled().reachable_sizes(off, tgt, small, st, sp, big_rows, big_values)
    return np.frombuffer(result, np.int64)


def reachable_sizes(
    offsets: npt.ArrayLike,
    targets: npt.ArrayLike,
    sizes: npt.ArrayLike | Sizes,
    starts: npt.ArrayLike,
    stop: npt.ArrayLike,
) -> I64:
    """For each start node, the total size of the nodes reachable from it.

    Nodes whose ``stop`` flag is set (bool mask of length n) are neither counted nor
    expanded, except the start itself, which always is.  Each node counts once per start.
    ``sizes`` may be a snapshot's compact :class:`Sizes` column (read as it is, not decoded).
    """
    impl = _c_reachable_sizes if HAVE_COMPILED else _py_reachable_sizes
    return impl(offsets, targets, sizes, starts, stop)


def reach_mask(
    offsets: npt.ArrayLike, targets: npt.ArrayLike, starts: npt.ArrayLike, stop: npt.ArrayLike
) -> npt.NDArray[np.bool_]:
    """Bool mask of the nodes reachable from any start. Nodes whose ``stop`` flag is set are
    neither included nor expanded, except the starts, which always are. One depth-first pass
    in C: a million-deep chain costs what a million-wide fan does."""
    mask = _compiled().reach_mask(
        _arr(offsets, np.uint32, "offsets"),
        _arr(targets, np.int32, "targets"),
        _arr(np.atleast_1d(np.asarray(starts)), np.int32, "starts"),
        _arr(stop, np.bool_, "stop"),
    )
    return np.frombuffer(mask, dtype=np.bool_)


# ---- sole holders ---------------------------------------------------------------------------

UNREACHED, SHARED, KEPT = -1, -2, -3


def _sh_args(
    offsets: npt.ArrayLike, targets: npt.ArrayLike, starts: npt.ArrayLike, skip: npt.ArrayLike
) -> Any:
    return (
        _arr(offsets, np.uint32, "offsets"),
        _arr(targets, np.int32, "targets"),
        _arr(starts, np.int32, "starts"),
        _arr(skip, np.int64, "skip"),
    )


def _py_sole_holders(
    offsets: npt.ArrayLike,
    targets: npt.ArrayLike,
    starts: npt.ArrayLike,
    kept: int,
    skip: npt.ArrayLike = (),
) -> I32:
    """Reference implementation of :func:`sole_holders`."""
    off, tgt, st, sk = _sh_args(offsets, targets, starts, skip)
    n = _check_shape(off, off[:-1])
    _check_csr(off, tgt, n)
    _check_index(st, 0, n, "starts")
    _check_index(sk, 0, len(tgt), "skip")
    if len(sk) > 1 and not (sk[1:] > sk[:-1]).all():
        raise ValueError("skip must be strictly ascending")
    if not 0 <= kept <= len(st):
        raise ValueError(f"kept={kept} out of range [0, {len(st)}]")
    o: list[int] = off.tolist()
    t: list[int] = tgt.tolist()
    skipped = set(sk.tolist())
    own = [UNREACHED] * n
    for j, s in enumerate(st.tolist()):
        label = KEPT if j < kept else j - kept
        stack = [s]
        while stack:
            v = stack.pop()
            if own[v] == UNREACHED:
                own[v] = label
            elif label >= 0 and own[v] >= 0 and own[v] != label:
                own[v] = SHARED
            else:
                continue
            stack.extend(t[c] for c in range(o[v], o[v + 1]) if c not in skipped)
    return np.array(own, dtype=np.int32)


def _c_sole_holders(
    offsets: npt.ArrayLike,
    targets: npt.ArrayLike,
    starts: npt.ArrayLike,
    kept: int,
    skip: npt.ArrayLike = (),
) -> I32:
    """Compiled implementation of :func:`sole_holders`."""
    off, tgt, st, sk = _sh_args(offsets, targets, starts, skip)
    return np.frombuffer(_compiled().sole_holders(off, tgt, st, kept, sk), np.int32)


def sole_holders(
    offsets: npt.ArrayLike,
    targets: npt.ArrayLike,
    starts: npt.ArrayLike,
    kept: int,
    skip: npt.ArrayLike = (),
) -> I32:
    """Which start alone reaches each node, edges at positions ``skip`` not followed.

    What ``starts[:kept]`` reach is ``KEPT``; of the other nodes, one reached from exactly
    one candidate ``starts[kept + j]`` is labelled ``j``, one reached from several
    ``SHARED``, one reached from none ``UNREACHED``. With one super-root child per start, the
    nodes labelled ``j`` are exactly those candidate ``j`` dominates: the sum of their sizes
    is its retained size, found with 4 bytes per node instead of a dominator tree.
    """
    impl = _c_sole_holders if HAVE_COMPILED else _py_sole_holders
    return impl(offsets, targets, starts, kept, skip)


def _compiled() -> Any:
    if _graph is None:
        raise RuntimeError("the compiled extension jupyter_memsnap.model._graph is not built")
    return _graph
