"""Time jupyter_memsnap.model.graph on a random heap-shaped graph.

Usage (from the repository root, after `python setup.py build_ext --inplace`):
    PYTHONPATH=. python benchmarks/bench_graph.py [n_nodes] [n_edges] [python_nodes]

The graph: a random tree of references (each object is referred to by one earlier,
mostly nearby, object; a few hundred roots), plus extra edges pointing at popular shared
objects (Zipf-distributed, like types, small ints and interned strings), at nearby objects
(both directions, so there are cycles) and at uniformly random objects.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from jupyter_memsnap.model import graph


def heap_graph(n: int, m: int, seed: int = 0) -> tuple[Any, Any, Any, Any]:
    """Return (offsets, targets, root_children, sizes) of a heap-like graph."""
    rng = np.random.default_rng(seed)
    n_roots = min(n, 500)
    child = np.arange(n_roots, n)
    near = child - 1 - rng.geometric(0.05, len(child))
    parent = np.where(rng.random(len(child)) < 0.8, near, rng.integers(0, child))
    parent = np.maximum(parent, 0)
    extra = m - len(child)
    src = rng.integers(0, n, extra)
    kind = rng.random(extra)
    popular = np.minimum(rng.zipf(1.6, extra) - 1, n - 1)
    local = np.clip(src + rng.integers(-50, 50, extra), 0, n - 1)
    uniform = rng.integers(0, n, extra)
    dst = np.where(kind < 0.5, popular, np.where(kind < 0.9, local, uniform))
    sources = np.concatenate([parent, src])
    targets = np.concatenate([child, dst]).astype(np.int32)
    order = np.argsort(sources, kind="stable")
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(sources, minlength=n), out=offsets[1:])
    sizes = rng.choice(np.array([16, 28, 56, 64, 72, 104, 232, 1024]), n).astype(np.int64)
    return offsets.astype(np.uint32), targets[order], np.arange(n_roots, dtype=np.int32), sizes


def bfs_renumber(offsets: Any, targets: Any, roots: Any, sizes: Any) -> tuple[Any, Any, Any, Any]:
    """Renumber nodes in BFS order from the roots, as the heap walker numbers its rows."""
    n = len(sizes)
    offsets = offsets.astype(np.int64)
    seen = np.zeros(n, np.bool_)
    levels = []
    frontier = roots[np.sort(np.unique(roots, return_index=True)[1])]
    while len(frontier):
        seen[frontier] = True
        levels.append(frontier)
        deg = offsets[frontier + 1] - offsets[frontier]
        starts = np.repeat(offsets[frontier] - np.cumsum(deg) + deg, deg)
        nxt = targets[starts + np.arange(deg.sum())]
        nxt = nxt[~seen[nxt]]
        frontier = nxt[np.sort(np.unique(nxt, return_index=True)[1])]
    levels.append(np.flatnonzero(~seen))
    order = np.concatenate(levels)  # new -> old
    new_id = np.empty(n, np.int64)
    new_id[order] = np.arange(n)
    deg = np.diff(offsets)[order]
    new_off = np.zeros(n + 1, np.int64)
    np.cumsum(deg, out=new_off[1:])
    starts = np.repeat(offsets[order] - new_off[:-1], deg)
    new_tgt = new_id[targets[starts + np.arange(len(targets))]].astype(np.int32)
    return new_off.astype(np.uint32), new_tgt, new_id[roots].astype(np.int32), sizes[order]


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench(name: str, n: int, m: int, repeat: int, bfs: bool = False) -> None:
    dom, tinc, reach = {
        "c": (graph._c_dominator_tree, graph._c_type_inclusive, graph._c_reachable_sizes),
        "python": (graph._py_dominator_tree, graph._py_type_inclusive, graph._py_reachable_sizes),
    }[name]
    off, tgt, rc, sz = heap_graph(n, m)
    if bfs:
        off, tgt, rc, sz = bfs_renumber(off, tgt, rc, sz)
        name += "/bfs"
    t_dom = best_of(lambda: dom(off, tgt, rc, sz), repeat)
    idom, ret = dom(off, tgt, rc, sz)
    types = (np.arange(n) % 1000).astype(np.int32)
    t_ti = best_of(lambda: tinc(idom, ret, types, 1000), repeat)
    # Like the variables table: walks stop at shared objects (here the 1% most referenced).
    starts = np.random.default_rng(1).integers(0, n, 10).astype(np.int32)
    stop = np.zeros(n, np.bool_)
    stop[np.argsort(-np.bincount(tgt, minlength=n))[: n // 100]] = True
    t_rs = best_of(lambda: reach(off, tgt, sz, starts, stop), repeat)
    print(
        f"{name:10s} n={n:>9,d} m={m:>10,d}  dominator_tree {t_dom:6.3f}s  "
        f"type_inclusive {t_ti:6.3f}s  reachable_sizes {t_rs / len(starts):6.3f}s per start"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3_000_000
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 8_000_000
    n_py = int(sys.argv[3]) if len(sys.argv) > 3 else 300_000
    if graph.HAVE_COMPILED:
        bench("c", n, m, repeat=3)
        bench("c", n, m, repeat=3, bfs=True)
    else:
        print("compiled extension not built: python setup.py build_ext --inplace")
    bench("python", n_py, n_py * m // n, repeat=1)


if __name__ == "__main__":
    main()
