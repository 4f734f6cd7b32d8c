"""Timings of the analyses built on a snapshot, on the synthetic data-notebook heap.

    python benchmarks/bench_analysis.py [--size 3] [--census-size 1] [--repeat 3]

Measures, with the targets of the issues next to them:
- snapshot with retained sizes (walk + dominator tree): <= 1.0 s at ~3 M objects
- ``why`` on one object (paths to root, reverse graph included): <= 0.2 s
- diff of two ~3 M-object snapshots (match + per-type table): <= 0.2 s
- per-cell census (no reference graph) at ~1 M objects: <= 150 ms
- tracemalloc's cost: the same workload built with and without tracing, and a snapshot
  with allocation sites, next to tracemalloc's own overhead
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from heap_builder import build_heap

import jupyter_memsnap
from jupyter_memsnap.api import census
from jupyter_memsnap.model.retention import compute_retention, paths_to_root

_runs: list[float] = []  # the runs behind the last timed() median


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds over ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    _runs[:] = times
    return statistics.median(times), result


def spread() -> str:
    """min-max of the runs of the last timed() call."""
    return f"{min(_runs):.3f}-{max(_runs):.3f}" if len(_runs) > 1 else ""


def auto_mode_cost(heap: Any, cells: int) -> tuple[float, float]:
    """In a real IPython shell holding ``heap``: the median extra seconds a trivial cell takes
    with ``%memsnap auto on``, and the median census time the tracker records per cell."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    shell.user_ns["heap"] = heap
    shell.run_line_magic("load_ext", "jupyter_memsnap")

    def cell_seconds() -> float:
        times = []
        for _ in range(cells):
            start = time.perf_counter()
            shell.run_cell("x = 1", store_history=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    plain = cell_seconds()
    shell.run_line_magic("memsnap", "auto on")
    shell.run_cell("x = 1", store_history=True)  # the first census registers every object
    tracked = cell_seconds()
    tracker = shell.magics_manager.registry["MemsnapMagics"].tracker
    census_s = statistics.median(row.seconds for row in tracker.rows[-cells:])
    shell.run_line_magic("memsnap", "auto off")
    shell.run_line_magic("unload_ext", "jupyter_memsnap")
    del shell.user_ns["heap"]
    InteractiveShell.clear_instance()
    return tracked - plain, census_s


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=3.0, help="millions of objects")
    parser.add_argument("--census-size", type=float, default=1.0, help="millions, census")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows: list[tuple[str, float, str, str]] = []

    heap = build_heap(int(args.census_size * 1e6))
    roots = [("heap", "variable", heap)]
    census(roots)  # warm up
    t, raw = timed(lambda: census(roots), args.repeat)
    rows.append((f"census walk, {len(raw.order) / 1e6:.2f} M objects", t, spread(), ""))
    per_cell, tracker_s = auto_mode_cost(heap, max(args.repeat, 5))
    rows.append(("auto mode: added time per cell (real IPython shell)", per_cell, "", ""))
    rows.append(
        ("  census per cell (walk + cells of birth)", tracker_s, "", verdict(tracker_s, 0.150))
    )
    del heap, roots, raw

    heap = build_heap(int(args.size * 1e6))
    roots = [("heap", "variable", heap)]
    t_walk, snap = timed(lambda: jupyter_memsnap.take(roots=roots, collect=False), args.repeat)
    name = f"snapshot, {len(snap) / 1e6:.2f} M objects (walk only)"
    rows.append((name, t_walk, spread(), verdict(t_walk, 0.5)))
    t_dom, _ = timed(lambda: compute_retention(snap), args.repeat)
    rows.append(("  dominator tree + retained sizes", t_dom, spread(), ""))
    total = t_walk + t_dom
    rows.append(("  snapshot with retained sizes", total, "", verdict(total, 1.0)))

    target = snap.row(id(heap["records"][len(heap["records"]) // 2]))
    snap.retention  # noqa: B018 - computed once, as in a session
    t_why, paths = timed(lambda: paths_to_root(snap, target, reverse=snap._reverse()), args.repeat)
    rows.append(("why: paths to root (reverse graph cached)", t_why, spread(), verdict(t_why, 0.2)))

    def rebuild_reverse() -> Any:
        snap._cache.pop("reverse", None)
        return snap._reverse()

    t_rev, _ = timed(rebuild_reverse, 1)
    rows.append(("  first why: building the reverse graph", t_rev, "", ""))
    assert paths and paths[0][0].name == "heap", paths

    heap["more"] = [{"k": i} for i in range(int(args.size * 1e5))]
    after = jupyter_memsnap.take(roots=roots, collect=False)

    def diff() -> Any:
        d = after.diff(snap)
        return d.types

    t_diff, _types = timed(diff, args.repeat)
    rows.append(
        ("diff of the two snapshots (match + by type)", t_diff, spread(), verdict(t_diff, 0.2))
    )

    small = int(args.size * 1e5)
    t_plain, _ = timed(lambda: build_heap(small), 1)
    tracemalloc.start(10)
    t_traced, traced_heap = timed(lambda: build_heap(small), 1)
    t_sites, _ = timed(
        lambda: jupyter_memsnap.take(roots=[("h", "variable", traced_heap)], collect=False), 1
    )
    overhead = tracemalloc.get_tracemalloc_memory()
    tracemalloc.stop()
    t_nosites, _ = timed(
        lambda: jupyter_memsnap.take(roots=[("h", "variable", traced_heap)], collect=False), 1
    )
    rows.append((f"build {small / 1e6:.1f} M-object heap, no tracing", t_plain, "", ""))
    rows.append(("  same with tracemalloc (10 frames)", t_traced, "", f"x{t_traced / t_plain:.1f}"))
    rows.append(("  snapshot with allocation sites", t_sites, "", f"x{t_sites / t_nosites:.1f}"))
    rows.append(("  snapshot, tracing off", t_nosites, "", ""))

    print(f"{'measure':58} {'median s':>8}  {'runs':11}  target")
    for name, seconds, runs, note in rows:
        print(f"{name:58} {seconds:8.3f}  {runs:11}  {note}")
    print(f"tracemalloc's own memory for the traced heap: {overhead / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
