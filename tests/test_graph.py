"""Tests of jupyter_memsnap.model.graph: hand-built graphs, brute-force oracles, C vs Python."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_memsnap.model import graph
from jupyter_memsnap.model.compact import Sizes
from jupyter_memsnap.model.retention import bfs_reach_mask

NEED_C = pytest.mark.skipif(
    not graph.HAVE_COMPILED,
    reason="compiled extension jupyter_memsnap.model._graph is not built "
    "(python setup.py build_ext --inplace)",
)
IMPLS = [pytest.param("py", id="python"), pytest.param("c", id="c", marks=NEED_C)]
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fn(impl: str, name: str) -> Callable[..., Any]:
    """The ``impl`` ("py" or "c") implementation of ``name``."""
    f: Callable[..., Any] = getattr(graph, f"_{impl}_{name}")
    return f


@dataclass
class G:
    """A test graph: node count, edge list (in order), root children and sizes."""

    n: int
    edges: list[tuple[int, int]]
    roots: list[int]
    sizes: list[int]

    def csr(self) -> tuple[np.ndarray, np.ndarray]:
        src = np.array([s for s, _ in self.edges], dtype=np.int64)
        dst = np.array([d for _, d in self.edges], dtype=np.int32)
        order = np.argsort(src, kind="stable")
        offsets = np.zeros(self.n + 1, np.int64)
        np.cumsum(np.bincount(src, minlength=self.n), out=offsets[1:])
        return offsets.astype(np.uint32), dst[order]

    def args(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        off, tgt = self.csr()
        return off, tgt, np.array(self.roots, np.int32), np.array(self.sizes, np.int64)

    def adj(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in range(self.n)]
        for s, d in self.edges:
            out[s].append(d)
        return out


def graph_of(n: int, edges: Sequence[tuple[int, int]], roots: Sequence[int]) -> G:
    return G(n, list(edges), list(roots), [10 * (i + 1) for i in range(n)])


# ---- brute-force oracles ---------------------------------------------------------------------


def reach(adj: list[list[int]], starts: Sequence[int], removed: int = -1) -> set[int]:
    seen = {s for s in starts if s != removed}
    stack = list(seen)
    while stack:
        for w in adj[stack.pop()]:
            if w != removed and w not in seen:
                seen.add(w)
                stack.append(w)
    return seen


def brute_dominators(g: G) -> tuple[list[int], list[int], dict[int, set[int]]]:
    """idom, retained and dominator subtrees by deleting each node in turn."""
    adj = g.adj()
    full = reach(adj, g.roots)
    sub = {v: full - reach(adj, g.roots, removed=v) for v in full}  # includes v itself
    idom, retained = [-2] * g.n, [0] * g.n
    for v in full:
        strict = [d for d in full if d != v and v in sub[d]]
        # Dominators form a chain: the immediate one has the smallest subtree.
        idom[v] = min(strict, key=lambda d: len(sub[d])) if strict else -1
        retained[v] = sum(g.sizes[w] for w in sub[v])
    return idom, retained, sub


def subtrees(idom: Sequence[int]) -> dict[int, set[int]]:
    """Dominator subtree of every reachable node, from an idom array."""
    out: dict[int, set[int]] = {v: set() for v in range(len(idom)) if idom[v] != -2}
    for w in out:
        v = w
        while v >= 0:
            out[v].add(w)
            v = idom[v]
    return out


def brute_type_inclusive(
    idom: Sequence[int], retained: Sequence[int], types: Sequence[int], n_types: int
) -> list[int]:
    total = [0] * n_types
    for v, t in enumerate(types):
        a = idom[v]
        while a >= 0 and types[a] != t:
            a = idom[a]
        if a < 0:
            total[t] += retained[v]
    return total


def brute_reachable(g: G, starts: Sequence[int], stop: Sequence[bool]) -> list[int]:
    adj, out = g.adj(), []
    for s in starts:
        seen, stack = {s}, [s]
        while stack:
            for w in adj[stack.pop()]:
                if w not in seen and not stop[w]:
                    seen.add(w)
                    stack.append(w)
        out.append(sum(g.sizes[w] for w in seen))
    return out


# ---- strategies --------------------------------------------------------------------------------


@st.composite
def graphs(draw: st.DrawFn, max_nodes: int = 12) -> G:
    n = draw(st.integers(0, max_nodes))
    if n == 0:
        return G(0, [], [], [])
    node = st.integers(0, n - 1)
    edges = draw(st.lists(st.tuples(node, node), max_size=3 * n))
    roots = draw(st.lists(node, max_size=4))
    sizes = draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n))
    return G(n, edges, roots, sizes)


def random_graph(n: int, seed: int) -> G:
    """Heap-like random graph: a deep spanning structure plus shared, local and back edges."""
    rng = np.random.default_rng(seed)
    edges: list[tuple[int, int]] = []
    if n > 1:
        child = np.arange(1, n)
        parent = np.maximum(child - 1 - rng.geometric(0.3, n - 1), 0)
        m = int(rng.integers(0, 2 * n))
        src = rng.integers(0, n, m)
        dst = np.where(
            rng.random(m) < 0.5, rng.integers(0, max(1, n // 10), m), rng.integers(0, n, m)
        )
        pairs = np.stack([np.concatenate([parent, src]), np.concatenate([child, dst])], 1)
        edges = [(int(a), int(b)) for a, b in rng.permutation(pairs)]
    roots = rng.integers(0, n, int(rng.integers(1, 4))).tolist()
    return G(n, edges, roots, rng.integers(0, 100, n).tolist())


# ---- dominator tree: hand-built graphs ---------------------------------------------------------

# (name, n, edges, roots, expected idom)
HAND = [
    ("empty", 0, [], [], []),
    ("no roots", 2, [(0, 1)], [], [-2, -2]),
    ("single", 1, [], [0], [-1]),
    ("chain", 4, [(0, 1), (1, 2), (2, 3)], [0], [-1, 0, 1, 2]),
    ("diamond", 4, [(0, 1), (0, 2), (1, 3), (2, 3)], [0], [-1, 0, 0, 0]),
    ("cycle", 3, [(0, 1), (1, 2), (2, 0)], [0], [-1, 0, 1]),
    ("cycle two entries", 3, [(0, 1), (1, 2), (2, 0)], [0, 1], [-1, -1, 1]),
    ("self loops and duplicates", 2, [(0, 0), (0, 1), (0, 1), (1, 1)], [0, 0], [-1, 0]),
    ("shared subtree", 4, [(0, 2), (1, 2), (2, 3)], [0, 1], [-1, -1, -1, 2]),
    ("roots reach same node", 3, [(0, 2), (1, 2)], [1, 0, 1], [-1, -1, -1]),
    ("root child dominated", 3, [(0, 1), (1, 2)], [0, 2], [-1, 0, -1]),
    ("unreachable", 4, [(0, 1), (2, 1), (3, 3), (2, 3)], [0], [-1, 0, -2, -2]),
    ("back edge into loop", 4, [(0, 1), (1, 2), (2, 3), (3, 1)], [0], [-1, 0, 1, 2]),
    ("side entry into loop", 4, [(0, 1), (1, 2), (2, 1), (0, 3), (3, 2)], [0], [-1, 0, 0, 0]),
    # Lengauer & Tarjan (1979), figure 1: R A B C D E F G H I J K L = 0..12.
    (
        "lengauer-tarjan",
        13,
        [(0, 1), (0, 2), (0, 3), (1, 4), (2, 1), (2, 4), (2, 5), (3, 6), (3, 7), (4, 12),
         (5, 8), (6, 9), (7, 9), (7, 10), (8, 5), (8, 11), (9, 11), (10, 9), (11, 9),
         (11, 0), (12, 8)],
        [0],
        [-1, 0, 0, 0, 0, 0, 3, 3, 0, 0, 7, 0, 4],
    ),
]  # fmt: skip


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("n", "edges", "roots", "expected"), [pytest.param(*h[1:], id=h[0]) for h in HAND]
)
def test_hand_built(
    impl: str, n: int, edges: list[tuple[int, int]], roots: list[int], expected: list[int]
) -> None:
    g = graph_of(n, edges, roots)
    idom, retained = fn(impl, "dominator_tree")(*g.args())
    assert idom.dtype == np.int32 and retained.dtype == np.int64
    assert idom.tolist() == expected
    b_idom, b_retained, _ = brute_dominators(g)
    assert b_idom == expected  # the table itself is right
    assert retained.tolist() == b_retained


@pytest.mark.parametrize("impl", IMPLS)
def test_retained_chain_and_diamond(impl: str) -> None:
    dom = fn(impl, "dominator_tree")
    _, ret = dom([0, 1, 2, 3, 3], [1, 2, 3], [0], [1, 2, 3, 4])
    assert ret.tolist() == [10, 9, 7, 4]
    _, ret = dom([0, 2, 3, 4, 4], [1, 2, 3, 3], [0], [1, 2, 4, 8])
    assert ret.tolist() == [15, 2, 4, 8]


@pytest.mark.parametrize("impl", IMPLS)
def test_results_are_writable_arrays(impl: str) -> None:
    idom, ret = fn(impl, "dominator_tree")([0, 1, 1], [1], [0], [5, 6])
    idom[0] = 7
    ret[0] = 7
    assert fn(impl, "type_inclusive")([-1], [3], [0], 1).flags.writeable
    assert fn(impl, "reachable_sizes")([0, 0], [], [4], [0], [False]).flags.writeable


# ---- dominator tree: oracle and agreement -----------------------------------------------------


def check_against_brute(g: G, idom: np.ndarray, retained: np.ndarray) -> None:
    b_idom, b_retained, sub = brute_dominators(g)
    assert idom.tolist() == b_idom
    assert retained.tolist() == b_retained
    # The nodes cut off by deleting v (plus v) are exactly v's dominator subtree.
    assert subtrees(idom.tolist()) == sub


@SETTINGS
@given(graphs())
def test_python_matches_brute_force(g: G) -> None:
    check_against_brute(g, *graph._py_dominator_tree(*g.args()))


@NEED_C
@SETTINGS
@given(graphs())
def test_c_matches_brute_force_and_python(g: G) -> None:
    c_idom, c_ret = graph._c_dominator_tree(*g.args())
    check_against_brute(g, c_idom, c_ret)
    p_idom, p_ret = graph._py_dominator_tree(*g.args())
    assert np.array_equal(c_idom, p_idom) and np.array_equal(c_ret, p_ret)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 80), st.integers(0, 2**32 - 1))
def test_heap_like_graphs_against_brute_force(n: int, seed: int) -> None:
    g = random_graph(n, seed)
    check_against_brute(g, *graph._py_dominator_tree(*g.args()))
    if graph.HAVE_COMPILED:
        check_against_brute(g, *graph._c_dominator_tree(*g.args()))


@NEED_C
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5000), st.integers(0, 2**32 - 1))
def test_c_and_python_agree_on_larger_graphs(n: int, seed: int) -> None:
    g = random_graph(n, seed)
    c = graph._c_dominator_tree(*g.args())
    p = graph._py_dominator_tree(*g.args())
    assert np.array_equal(c[0], p[0]) and np.array_equal(c[1], p[1])
    types = np.random.default_rng(seed).integers(0, 7, n)
    assert np.array_equal(
        graph._c_type_inclusive(c[0], c[1], types, 7),
        graph._py_type_inclusive(p[0], p[1], types, 7),
    )


def test_public_functions_dispatch() -> None:
    g = graph_of(3, [(0, 1), (1, 2), (0, 2)], [0])
    idom, ret = graph.dominator_tree(*g.args())
    assert idom.tolist() == [-1, 0, 0]
    assert ret.tolist() == [60, 20, 30]
    assert graph.type_inclusive(idom, ret, [0, 0, 1], 2).tolist() == [60, 30]
    assert graph.reachable_sizes(*g.args()[:2], g.sizes, [1], [False] * 3).tolist() == [50]
    assert graph.sole_holders(*g.args()[:2], [1, 0], 1).tolist() == [0, graph.KEPT, graph.KEPT]


def test_fallback_without_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph, "_graph", None)
    monkeypatch.setattr(graph, "HAVE_COMPILED", False)
    g = graph_of(3, [(0, 1), (1, 2), (0, 2)], [0])
    assert graph.dominator_tree(*g.args())[0].tolist() == [-1, 0, 0]
    assert graph.type_inclusive([-1], [5], [0], 1).tolist() == [5]
    assert graph.reachable_sizes([0, 0], [], [4], [0], [False]).tolist() == [4]
    assert graph.sole_holders([0, 1, 1], [1], [0, 1], 0).tolist() == [0, graph.SHARED]
    with pytest.raises(RuntimeError, match="not built"):
        graph._c_dominator_tree(*g.args())


# ---- big graphs: no recursion anywhere -------------------------------------------------------

BIG = 1_000_000


def chain(n: int) -> tuple[np.ndarray, ...]:
    off = np.minimum(np.arange(n + 1), n - 1).astype(np.uint32)
    return off, np.arange(1, n, dtype=np.int32), np.array([0], np.int32), np.ones(n, np.int64)


def deep_with_back_edges(n: int) -> tuple[np.ndarray, ...]:
    """i -> i + 1, plus i -> i // 2 and i -> 0 back edges: a chain-deep DFS with cycles."""
    src = np.repeat(np.arange(n), 3)
    dst = np.stack([np.arange(1, n + 1), np.arange(n) // 2, np.zeros(n, np.int64)], 1).ravel()
    keep = dst < n
    off = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src[keep], minlength=n), out=off[1:])
    off = off.astype(np.uint32)
    return off, dst[keep].astype(np.int32), np.array([0], np.int32), np.ones(n, np.int64)


def check_chain_result(idom: np.ndarray, ret: np.ndarray, n: int) -> None:
    assert idom[0] == -1
    assert np.array_equal(idom[1:], np.arange(n - 1))
    assert np.array_equal(ret, np.arange(n, 0, -1))


@NEED_C
def test_big_chain_c() -> None:
    check_chain_result(*graph._c_dominator_tree(*chain(BIG)), BIG)
    check_chain_result(*graph._c_dominator_tree(*deep_with_back_edges(BIG)), BIG)
    idom, ret = graph._c_dominator_tree(*chain(BIG))
    types = np.zeros(BIG, np.int32)
    types[1::2] = 1
    assert graph._c_type_inclusive(idom, ret, types, 2).tolist() == [BIG, BIG - 1]
    off, tgt, _, sz = chain(BIG)
    got = graph._c_reachable_sizes(off, tgt, sz, [0, BIG - 1], np.zeros(BIG, bool))
    assert got.tolist() == [BIG, 1]


@pytest.mark.slow
def test_big_chain_python() -> None:
    """Takes a few seconds: the pure-Python reference on a 1,000,000-node chain."""
    check_chain_result(*graph._py_dominator_tree(*chain(BIG)), BIG)
    idom, ret = graph._py_dominator_tree(*deep_with_back_edges(BIG))
    check_chain_result(idom, ret, BIG)
    types = np.zeros(BIG, np.int32)
    types[1::2] = 1
    assert graph._py_type_inclusive(idom, ret, types, 2).tolist() == [BIG, BIG - 1]
    off, tgt, _, sz = chain(BIG)
    got = graph._py_reachable_sizes(off, tgt, sz, [0, BIG - 1], np.zeros(BIG, bool))
    assert got.tolist() == [BIG, 1]


@NEED_C
def test_c_releases_gil_and_is_thread_safe() -> None:
    args = chain(200_000)
    results: list[tuple[np.ndarray, np.ndarray]] = []

    def work() -> None:
        results.append(graph._c_dominator_tree(*args))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for idom, ret in results:
        check_chain_result(idom, ret, 200_000)


# ---- type_inclusive ------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_type_inclusive_nested(impl: str) -> None:
    ti = fn(impl, "type_inclusive")
    # 0 -> 1 -> 2 -> 3 in the dominator tree, types A B A B; 4 is a second root of type A.
    idom = [-1, 0, 1, 2, -1]
    retained = [100, 60, 30, 10, 7]
    assert ti(idom, retained, [0, 1, 0, 1, 0], 3).tolist() == [107, 60, 0]
    # Siblings of the same type both count; unreachable (-2) nodes are roots of their own.
    assert ti([-1, 0, 0, -2], [9, 4, 3, 5], [1, 0, 0, 0], 2).tolist() == [12, 9]
    assert ti([], [], [], 0).tolist() == []


@pytest.mark.parametrize("impl", IMPLS)
def test_type_inclusive_errors(impl: str) -> None:
    ti = fn(impl, "type_inclusive")
    with pytest.raises(ValueError, match="cycle"):
        ti([1, 0], [1, 1], [0, 0], 1)
    with pytest.raises(ValueError, match="cycle"):
        ti([-1, 1], [1, 1], [0, 0], 1)  # self-loop
    with pytest.raises(ValueError, match=r"type_index\[1\]=2 out of range \[0, 2\)"):
        ti([-1, 0], [1, 1], [0, 2], 2)
    with pytest.raises(ValueError, match=r"idom\[0\]=5 out of range \[-2, 2\)"):
        ti([5, 0], [1, 1], [0, 0], 1)
    with pytest.raises(ValueError, match="equal lengths"):
        ti([-1, 0], [1], [0, 0], 1)
    with pytest.raises(ValueError, match="n_types"):
        ti([], [], [], -1)


@SETTINGS
@given(graphs(), st.data())
def test_type_inclusive_against_brute_force(g: G, data: st.DataObject) -> None:
    n_types = data.draw(st.integers(1, 4))
    types = data.draw(st.lists(st.integers(0, n_types - 1), min_size=g.n, max_size=g.n))
    idom, ret = graph._py_dominator_tree(*g.args())
    expected = brute_type_inclusive(idom.tolist(), ret.tolist(), types, n_types)
    assert graph._py_type_inclusive(idom, ret, types, n_types).tolist() == expected
    if graph.HAVE_COMPILED:
        assert graph._c_type_inclusive(idom, ret, types, n_types).tolist() == expected


# ---- reachable_sizes -----------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_reachable_sizes_hand_built(impl: str) -> None:
    rs = fn(impl, "reachable_sizes")
    # 0 -> 1 -> 2 -> 0 (cycle), 1 -> 3, 3 -> 3; sizes 1, 2, 4, 8.
    g = graph_of(4, [(0, 1), (1, 2), (2, 0), (1, 3), (3, 3)], [0])
    off, tgt = g.csr()
    sizes = [1, 2, 4, 8]
    no_stop = [False] * 4
    assert rs(off, tgt, sizes, [0, 3, 0], no_stop).tolist() == [15, 8, 15]
    # Stopped nodes are neither counted nor expanded, except a start, which always is.
    assert rs(off, tgt, sizes, [0, 1], [False, True, False, False]).tolist() == [1, 15]
    assert rs(off, tgt, sizes, [2], [True, False, True, False]).tolist() == [4]
    assert rs(off, tgt, sizes, [], no_stop).tolist() == []
    assert rs(off, tgt, sizes, [1], np.array([0, 0, 0, 1], np.uint8)).tolist() == [7]


@SETTINGS
@given(graphs(), st.data())
def test_reachable_sizes_against_brute_force(g: G, data: st.DataObject) -> None:
    if g.n == 0:
        return
    starts = data.draw(st.lists(st.integers(0, g.n - 1), max_size=6))
    stop = data.draw(st.lists(st.booleans(), min_size=g.n, max_size=g.n))
    off, tgt = g.csr()
    expected = brute_reachable(g, starts, stop)
    assert graph._py_reachable_sizes(off, tgt, g.sizes, starts, stop).tolist() == expected
    if graph.HAVE_COMPILED:
        assert graph._c_reachable_sizes(off, tgt, g.sizes, starts, stop).tolist() == expected


@SETTINGS
@given(graphs(), st.data())
def test_reachable_sizes_read_a_compact_column(g: G, data: st.DataObject) -> None:
    """A snapshot's Sizes column, sizes of 4 GiB and more kept aside, read without decoding."""
    if g.n == 0:
        return
    sizes = data.draw(st.lists(st.integers(0, 2**34), min_size=g.n, max_size=g.n))
    starts = data.draw(st.lists(st.integers(0, g.n - 1), max_size=6))
    stop = data.draw(st.lists(st.booleans(), min_size=g.n, max_size=g.n))
    off, tgt = g.csr()
    expected = brute_reachable(G(g.n, g.edges, g.roots, sizes), starts, stop)
    column = Sizes.encode(np.array(sizes, np.int64))
    assert graph._py_reachable_sizes(off, tgt, column, starts, stop).tolist() == expected
    if graph.HAVE_COMPILED:
        assert graph._c_reachable_sizes(off, tgt, column, starts, stop).tolist() == expected


@NEED_C
def test_reachable_sizes_refuse_a_bad_compact_column() -> None:
    from jupyter_memsnap.model import _graph  # type: ignore[attr-defined]

    off, tgt, stop = np.array([0, 1, 1], np.uint32), np.array([1], np.int32), np.zeros(2, bool)
    small, starts = np.array([1, 0xFFFFFFFF], np.uint32), np.array([0], np.int32)
    big = np.array([2**33], np.int64)
    assert _graph.reachable_sizes(off, tgt, small, starts, stop, np.array([1]), big) is not None
    for rows, message in [([2], "ascending rows"), ([1, 0], "has length 2"), ([-1], "ascending")]:
        with pytest.raises(ValueError, match=message):
            _graph.reachable_sizes(off, tgt, small, starts, stop, np.array(rows), big)
    with pytest.raises(TypeError, match="sizes must be a 1-D uint32 buffer"):
        _graph.reachable_sizes(off, tgt, small.astype(np.int64), starts, stop, big, big)
    with pytest.raises(TypeError, match="big_rows needs big_values"):
        _graph.reachable_sizes(off, tgt, small, starts, stop, big)


# ---- reach_mask ---------------------------------------------------------------------------------


def brute_reach_mask(g: G, starts: Sequence[int], stop: Sequence[bool]) -> list[bool]:
    adj, seen = g.adj(), set(starts)
    stack = list(seen)
    while stack:
        for w in adj[stack.pop()]:
            if w not in seen and not stop[w]:
                seen.add(w)
                stack.append(w)
    return [i in seen for i in range(g.n)]


@SETTINGS
@given(graphs(), st.data())
def test_reach_mask_against_brute_force(g: G, data: st.DataObject) -> None:
    if g.n == 0:
        return
    starts = data.draw(st.lists(st.integers(0, g.n - 1), max_size=6))
    stop = np.array(data.draw(st.lists(st.booleans(), min_size=g.n, max_size=g.n)))
    off, tgt = g.csr()
    expected = brute_reach_mask(g, starts, stop.tolist())
    starts_a = np.array(starts, np.int64)
    assert bfs_reach_mask(off, tgt, starts_a, stop).tolist() == expected
    if graph.HAVE_COMPILED:
        assert graph.reach_mask(off, tgt, starts_a, stop).tolist() == expected


@NEED_C
def test_reach_mask_on_a_million_deep_chain_and_bad_input() -> None:
    off, tgt, _, _ = chain(BIG)
    stop = np.zeros(BIG, bool)
    assert graph.reach_mask(off, tgt, 0, stop).all()
    stop[10] = True
    assert int(graph.reach_mask(off, tgt, [0], stop).sum()) == 10
    assert int(graph.reach_mask(off, tgt, [10, 5], stop).sum()) == BIG - 5, "stopped starts expand"
    with pytest.raises(ValueError, match="out of range"):
        graph.reach_mask(off, tgt, [BIG], stop)
    with pytest.raises(ValueError, match="stop has length 1"):
        graph.reach_mask(off, tgt, [0], [False])
    with pytest.raises(ValueError, match=r"targets\[1\]=2 out of range"):
        graph.reach_mask([0, 1, 2], [1, 2], [0], [False, False])


# ---- sole holders ------------------------------------------------------------------------------


def brute_sole_holders(g: G, starts: list[int], kept: int, skip: set[int]) -> list[int]:
    """Each node's label from reach sets of the graph without the skipped edge positions."""
    off, tgt = g.csr()
    adj = [[int(tgt[c]) for c in range(off[v], off[v + 1]) if c not in skip] for v in range(g.n)]
    by_kept = reach(adj, starts[:kept])
    reached_from = [reach(adj, [s]) for s in starts[kept:]]
    out = []
    for v in range(g.n):
        holders = [j for j, seen in enumerate(reached_from) if v in seen]
        if v in by_kept:
            out.append(graph.KEPT)
        elif not holders:
            out.append(graph.UNREACHED)
        else:
            out.append(holders[0] if len(holders) == 1 else graph.SHARED)
    return out


@st.composite
def sole_cases(draw: st.DrawFn) -> tuple[G, list[int], int, list[int]]:
    g = draw(graphs().filter(lambda g: g.n > 0))
    starts = draw(st.lists(st.integers(0, g.n - 1), max_size=6))
    kept = draw(st.integers(0, len(starts)))
    skip = sorted(draw(st.sets(st.integers(0, len(g.edges) - 1)))) if g.edges else []
    return g, starts, kept, skip


@pytest.mark.parametrize("impl", IMPLS)
@SETTINGS
@given(sole_cases())
def test_sole_holders_against_brute_force(
    impl: str, case: tuple[G, list[int], int, list[int]]
) -> None:
    g, starts, kept, skip = case
    off, tgt = g.csr()
    got = fn(impl, "sole_holders")(off, tgt, np.array(starts, np.int32), kept, np.array(skip))
    assert got.tolist() == brute_sole_holders(g, starts, kept, set(skip))


@SETTINGS
@given(sole_cases())
def test_sole_holders_sum_to_the_dominator_trees_retained(
    case: tuple[G, list[int], int, list[int]],
) -> None:
    """Against the dominator tree of the graph with one node per start (what Retention
    builds): a candidate's labelled nodes are what its node dominates."""
    g, starts, kept, skip = case
    off, tgt = g.csr()
    labels = graph.sole_holders(off, tgt, np.array(starts, np.int32), kept, np.array(skip))
    dropped = set(skip)
    edges = [(int(v), int(tgt[c])) for v in range(g.n) for c in range(off[v], off[v + 1])]
    edges = [e for c, e in enumerate(edges) if c not in dropped]
    nodes = [g.n + j for j in range(len(starts))]
    aug = G(g.n + len(starts), edges + list(zip(nodes, starts, strict=True)), nodes,
            g.sizes + [0] * len(starts))  # fmt: skip
    _, retained = graph.dominator_tree(*aug.args())
    sizes = np.array(g.sizes, np.int64)
    for j in range(len(starts) - kept):
        assert int(sizes[labels == j].sum()) == int(retained[g.n + kept + j])


@pytest.mark.parametrize("impl", IMPLS)
def test_sole_holders_bad_inputs(impl: str) -> None:
    sole = fn(impl, "sole_holders")
    off, tgt = np.array([0, 2, 2]), np.array([1, 1])
    for skip, message in [([1, 0], "strictly ascending"), ([1, 1], "strictly ascending"),
                          ([2], r"skip\[0\]=2 out of range"), ([-1], "out of range")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            sole(off, tgt, np.array([0], np.int32), 0, np.array(skip, np.int64))
    with pytest.raises(ValueError, match="kept=2 out of range"):
        sole(off, tgt, np.array([0], np.int32), 2, np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="out of range"):
        sole(off, tgt, np.array([5], np.int32), 0, np.zeros(0, np.int64))


@NEED_C
def test_sole_holders_on_a_million_deep_chain() -> None:
    off, tgt, _, _ = chain(BIG)
    labels = graph.sole_holders(off, tgt, np.array([0, 10], np.int32), 0)
    assert labels[:10].tolist() == [0] * 10
    assert (labels[10:] == graph.SHARED).all()
    labels = graph.sole_holders(off, tgt, np.array([10, 0], np.int32), 1)
    assert (labels[:10] == 0).all() and (labels[10:] == graph.KEPT).all()


# ---- input validation ------------------------------------------------------------------------

BAD_GRAPHS = [
    ("no offsets", [], [], [], [], "n \\+ 1 >= 1"),
    ("offsets[0]", [1, 1], [0], [0], [1], r"offsets\[0\] must be 0, got 1"),
    ("decreasing", [0, 2, 1, 2], [0, 0], [0], [1, 1, 1], r"offsets\[1\]=2 > offsets\[2\]=1"),
    ("end", [0, 1, 1], [0, 0], [0], [1, 1], r"offsets\[-1\]=1 must equal len\(targets\)=2"),
    ("target", [0, 1, 2], [1, 2], [0], [1, 1], r"targets\[1\]=2 out of range \[0, 2\)"),
    ("negative target", [0, 1, 1], [-1], [0], [1, 1], r"targets\[0\]=-1 out of range"),
    ("root", [0, 0, 0], [], [0, 5], [1, 1], r"root_children\[1\]=5 out of range \[0, 2\)"),
    ("sizes", [0, 0, 0], [], [0], [1], "sizes has length 1, expected n=2"),
    ("too big for int32", [0, 1], [2**40], [0], [1], "do not fit in int32"),
    ("2-D", [[0, 0]], [], [], [], "must be 1-D"),
]  # fmt: skip


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("off", "tgt", "roots", "sizes", "message"), [pytest.param(*b[1:], id=b[0]) for b in BAD_GRAPHS]
)
def test_bad_graphs_raise(
    impl: str, off: Any, tgt: Any, roots: Any, sizes: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fn(impl, "dominator_tree")(off, tgt, roots, sizes)
    if message.startswith("root_children"):
        return
    stop = [False] * len(sizes)
    with pytest.raises(ValueError, match=message):
        fn(impl, "reachable_sizes")(off, tgt, sizes, [0] if sizes else [], stop)


@pytest.mark.parametrize("impl", IMPLS)
def test_reachable_sizes_bad_inputs(impl: str) -> None:
    rs = fn(impl, "reachable_sizes")
    with pytest.raises(ValueError, match=r"starts\[0\]=2 out of range \[0, 2\)"):
        rs([0, 0, 0], [], [1, 1], [2], [False, False])
    with pytest.raises(ValueError, match="stop has length 1, expected n=2"):
        rs([0, 0, 0], [], [1, 1], [0], [False])


@pytest.mark.parametrize("impl", IMPLS)
def test_non_integer_input_is_a_type_error(impl: str) -> None:
    with pytest.raises(TypeError, match="targets"):
        fn(impl, "dominator_tree")([0, 1], [0.5], [0], [1])
    with pytest.raises(TypeError, match="stop"):
        fn(impl, "reachable_sizes")([0, 0], [], [1], [0], [0.5])


@NEED_C
def test_extension_validates_raw_buffers() -> None:
    from jupyter_memsnap.model import _graph  # type: ignore[attr-defined]

    off, tgt, rc, sz = graph_of(3, [(0, 1), (1, 2)], [0]).args()
    idom_b, ret_b = _graph.dominator_tree(off, tgt, rc, sz)
    assert np.frombuffer(idom_b, np.int32).tolist() == [-1, 0, 1]
    assert np.frombuffer(ret_b, np.int64).tolist() == [60, 50, 30]
    # Any buffer with the right layout works, e.g. a memoryview over bytes.
    mv = memoryview(off.tobytes()).cast("I")
    idom_b, _ = _graph.dominator_tree(mv, tgt, memoryview(rc.tobytes()).cast("i"), sz)
    assert np.frombuffer(idom_b, np.int32).tolist() == [-1, 0, 1]
    with pytest.raises(TypeError, match="offsets must be a 1-D uint32 buffer"):
        _graph.dominator_tree(off.astype(np.float64), tgt, rc, sz)
    with pytest.raises(TypeError, match="targets must be a 1-D int32 buffer"):
        _graph.dominator_tree(off, tgt.astype(np.int64), rc, sz)
    with pytest.raises(TypeError, match="targets must be a 1-D int32 buffer"):
        _graph.dominator_tree(off, tgt.astype(np.uint32), rc, sz)
    with pytest.raises(TypeError, match="targets must be a 1-D int32 buffer"):
        _graph.dominator_tree(off, tgt.astype(">i4"), rc, sz)
    with pytest.raises(TypeError, match="root_children must be a C-contiguous"):
        _graph.dominator_tree(off, tgt, [0], sz)
    with pytest.raises(TypeError, match="sizes must be a C-contiguous"):
        _graph.dominator_tree(off, tgt, rc, np.arange(6, dtype=np.int64)[::2])
    with pytest.raises(TypeError, match="1-D"):
        _graph.dominator_tree(off.reshape(2, 2), tgt, rc, sz)
    with pytest.raises(ValueError, match=r"targets\[1\]=-7 out of range"):
        _graph.dominator_tree(off, np.array([1, -7], np.int32), rc, sz)
    with pytest.raises(ValueError, match=r"root_children\[0\]=3 out of range"):
        _graph.dominator_tree(off, tgt, np.array([3], np.int32), sz)
    with pytest.raises(TypeError, match="stop must be a 1-D bool/uint8 buffer"):
        _graph.reachable_sizes(off, tgt, sz, rc, np.zeros(3, np.int32))
    with pytest.raises(TypeError):
        _graph.type_inclusive(np.array([-1], np.int32), np.array([1], np.int64), rc[:1], "1")
    with pytest.raises(TypeError):
        _graph.dominator_tree(off, tgt, rc)


@NEED_C
@pytest.mark.parametrize("bad", BAD_GRAPHS[:-2], ids=[b[0] for b in BAD_GRAPHS[:-2]])
def test_c_and_python_error_messages_agree(bad: tuple[Any, ...]) -> None:
    args = bad[1:5]
    errors = []
    for impl in ("py", "c"):
        with pytest.raises(ValueError, match=r".") as info:
            fn(impl, "dominator_tree")(*args)
        errors.append(str(info.value))
    assert errors[0] == errors[1]
