"""Benchmark jupyter_memsnap's heap snapshot against pympler, guppy3 and gc.get_objects().

Usage (from the repository root):
    python benchmarks/bench_snapshot.py [--sizes 0.1,1,3] [--repeat N] [--skip-peers]
                                        [--json results.json]

For each size (millions of live objects the synthetic heap adds, see heap_builder.py) three
fresh subprocesses build the same heap:

* timing   — every tool runs in this one process on this one heap, so the ratios hold on a
             noisy machine. One explicit, untimed gc.collect() runs before every timed call and
             the tools' own gc.collect() calls are switched off (ours: collect=False; pympler's
             muppy.get_objects() and guppy's heap() call gc.collect() internally: gc.collect is
             replaced by a no-op while they run). So garbage-collection time is measured in no
             tool. Each tool also runs once "as shipped", its own gc.collect() included.
* memory   — peak extra memory while capturing: the kernel's RSS high-water mark (VmHWM) is
             reset through /proc/self/clear_refs just before the capture and read after it
             (a sampler thread would see nothing: the compiled walk holds the GIL), for the
             first capture in the process and for a second one, plus the tracemalloc peak of a
             third (bytes requested; tracemalloc started after the heap exists).
* coverage — tracemalloc starts BEFORE the heap is built; the traced-bytes delta is compared
             with the bytes our snapshot attributes to what the heap added.
A fourth subprocess splits the coverage by part of the heap at 0.1 M objects, to explain
the gap.

Default run (0.1, 1 and 3 M objects, 3 repeats, pympler once at >= 2 M): ~100 s on an idle
2-core machine (AMD EPYC, 24 GB); a 3 M-object process peaks at ~1.3 GB RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

TARGETS = {
    "take_s": 0.5,  # snapshot without retained sizes, at ~3 M objects (brief)
    "census_s": 0.3,  # DESIGN.md: census only
    "full_s": 1.0,  # DESIGN.md: full snapshot with retained sizes
    "diff_s": 0.2,  # DESIGN.md: diff of two such snapshots
    "pympler_ratio": 10.0,  # pympler time / our time
    "stored_bpo": 48.0,
    "peak_bpo": 100.0,
    "coverage": 0.95,
}
REAL_GC_COLLECT = gc.collect  # the untimed collections, even while a peer's is switched off
PYMPLER_SINGLE_RUN_FROM = 2.0  # millions: pympler runs once (it takes seconds per run)
PYTHON_WALKER_UP_TO = 0.15  # millions: the pure-Python walker runs only at the small size


# ------------------------------------------------------------------------------ helpers


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


@contextlib.contextmanager
def gc_collect_disabled() -> Iterator[list[int]]:
    """Replace gc.collect by a no-op (peers call it internally); count the calls skipped."""
    orig = gc.collect
    calls = [0]

    def noop(*args: Any, **kwargs: Any) -> int:
        calls[0] += 1
        return 0

    gc.collect = noop  # type: ignore[assignment]
    try:
        yield calls
    finally:
        gc.collect = orig  # type: ignore[assignment]


def run_timed(
    fn: Callable[[], Any],
    repeat: int,
    keep: Callable[[Any], None] | None = None,
    limit_s: float = float("inf"),
    cpu: list[float] | None = None,
) -> list[float]:
    """Wall times of fn(), `repeat` runs, each after an untimed gc.collect(); stop early past
    limit_s. ``cpu`` receives the process CPU time (user + system) of each run."""
    times: list[float] = []
    for _ in range(repeat):
        REAL_GC_COLLECT()
        c0 = time.process_time()
        t0 = time.perf_counter()
        r = fn()
        times.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.process_time() - c0)
        if keep is not None:
            keep(r)
        del r
        if sum(times) > limit_s:
            break
    REAL_GC_COLLECT()
    return times


def proc_status(field: str) -> int:
    """A `kB` field of /proc/self/status, in bytes."""
    with open("/proc/self/status") as f:
        m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) * 1024 if m else -1


def heap_roots(heap: Any) -> list[tuple[str, str, object]]:
    return [("heap", "variable", heap)]


def build(size_m: float) -> tuple[Any, float]:
    from heap_builder import build_heap

    t0 = time.perf_counter()
    heap = build_heap(round(size_m * 1_000_000))
    return heap, time.perf_counter() - t0


def warm_up() -> None:
    """Import everything the capture and the heap need, so that imports are not measured."""
    from heap_builder import build_heap

    import jupyter_memsnap

    small = build_heap(2000)
    snap = jupyter_memsnap.take(roots=heap_roots(small), engine="c")
    del snap, small
    gc.collect()


# ------------------------------------------------------------------------------ workers


def worker_timing(size_m: float, repeat: int, skip_peers: bool) -> dict[str, Any]:
    import numpy as np

    import jupyter_memsnap
    from jupyter_memsnap.capture.process import read_process_memory
    from jupyter_memsnap.model import graph

    res: dict[str, Any] = {"size_m": size_m, "repeat": repeat}
    warm_up()
    before = jupyter_memsnap.take(roots=[], engine="c")
    n0, b0 = len(before), before.total_size
    del before
    gc.collect()
    log(f"[{size_m} M] building the heap")
    heap, build_s = build(size_m)
    gc.collect()
    from heap_builder import array_bytes

    res.update(build_s=build_s, array_bytes=array_bytes(heap), baseline_objects=n0)
    roots = heap_roots(heap)

    # ours, compiled walker, no gc.collect() inside
    log(f"[{size_m} M] ours (C walker)")
    snaps: list[dict[str, Any]] = []

    def keep_snap(s: Any) -> None:
        snaps.append(
            dict(n=len(s), total=s.total_size, nbytes=s.nbytes, edges=s.n_edges, walk_s=s.seconds)
        )

    cpu_c: list[float] = []
    t_c = run_timed(
        lambda: jupyter_memsnap.take(roots=roots, collect=False, engine="c"),
        repeat,
        keep_snap,
        cpu=cpu_c,
    )
    last = {k: v for k, v in snaps[-1].items() if k != "walk_s"}
    res["ours_c"] = dict(times=t_c, cpu=cpu_c, walk_s=[s["walk_s"] for s in snaps], **last)
    res["objects_added"] = snaps[-1]["n"] - n0
    res["bytes_added"] = snaps[-1]["total"] - b0

    # the phases of take(): gc.get_objects() (inside the walk), process memory, the rest
    res["read_process_memory_s"] = run_timed(read_process_memory, repeat)
    cpu_o: list[float] = []
    res["gc_get_objects"] = dict(
        times=run_timed(gc.get_objects, repeat, cpu=cpu_o), cpu=cpu_o, n=len(gc.get_objects())
    )

    # retained sizes on the captured graph (DESIGN.md: full snapshot with retained sizes)
    snap = jupyter_memsnap.take(roots=roots, collect=False, engine="c")
    rc = np.unique(np.array([r.index for r in snap.roots if r.index >= 0], dtype=np.int32))
    res["dominator_s"] = run_timed(
        lambda: graph.dominator_tree(snap.offsets, snap.targets, rc, snap.sizes), repeat
    )
    snap = None  # free it (not `del`: the lambda above refers to the name)

    # ours as shipped: gc.collect() inside
    t_gc = run_timed(lambda: jupyter_memsnap.take(roots=roots, collect=True, engine="c"), 1)
    res["ours_c_collect"] = dict(times=t_gc)
    t_collect = run_timed(gc.collect, repeat)
    res["gc_collect_s"] = t_collect

    if size_m <= PYTHON_WALKER_UP_TO:
        log(f"[{size_m} M] ours (pure-Python walker)")
        py: list[dict[str, Any]] = []
        t_py = run_timed(
            lambda: jupyter_memsnap.take(roots=roots, collect=False, engine="python"),
            repeat,
            lambda s: py.append(dict(n=len(s), total=s.total_size)),
            limit_s=60,
            cpu=(cpu_py := []),
        )
        res["ours_python"] = dict(times=t_py, cpu=cpu_py, **py[-1])

    # diff of two snapshots (DESIGN.md: <= 0.2 s at ~3 M objects): ~1 % of the objects
    # change between them; the heap is restored afterwards. Before the peers: guppy3 changes
    # the heap (it materialises every instance's __dict__ on Python 3.11).
    log(f"[{size_m} M] diff of two snapshots")
    try:
        from heap_builder import build_part

        s1 = jupyter_memsnap.take(roots=roots, collect=False, engine="c")
        n_obj = round(size_m * 1_000_000)
        heap["extra"] = build_part("records", n_obj // 40, seed=1)  # ~1 % new objects
        k = n_obj // 100
        del heap["strings"][:k]  # ~1 % freed
        gc.collect()
        s2 = jupyter_memsnap.take(roots=roots, collect=False, engine="c")
        holder: dict[str, Any] = {}

        def diff_types() -> Any:
            d = s2.diff(s1)
            holder["new"], holder["freed"] = len(d.new_rows), len(d.freed_rows)
            return d.types

        res["diff"] = dict(
            times=run_timed(diff_types, repeat, cpu=(cpu_d := [])),
            cpu=cpu_d,
            n_before=len(s1),
            n_after=len(s2),
            **holder,
        )
        s1 = s2 = None
        del heap["extra"]
        heap["strings"][0:0] = build_part("strings", n_obj)[:k]  # the same strings again
        gc.collect()
    except Exception as exc:  # the diff API is young: report, do not fail the run
        res["diff"] = dict(error=f"{type(exc).__name__}: {exc}")

    if not skip_peers:
        from guppy import hpy
        from pympler import muppy, summary

        log(f"[{size_m} M] pympler muppy.get_objects() + summary.summarize()")
        seen: dict[str, Any] = {}

        def pympler_run() -> Any:
            objs = muppy.get_objects()
            rows = summary.summarize(objs)
            seen["n"] = len(objs)
            del objs
            return rows

        def pympler_keep(rows: Any) -> None:
            seen["rows_n"] = sum(r[1] for r in rows)
            seen["rows_bytes"] = sum(r[2] for r in rows)

        p_rep = 1 if size_m >= PYMPLER_SINGLE_RUN_FROM else repeat
        with gc_collect_disabled() as skipped:
            t_p = run_timed(pympler_run, p_rep, pympler_keep, cpu=(cpu_p := []))
        res["pympler"] = dict(
            times=t_p,
            cpu=cpu_p,
            n=seen["n"],
            total=seen["rows_bytes"],
            gc_collect_skipped=skipped[0],
        )
        res["pympler"]["shipped"] = run_timed(pympler_run, 1, pympler_keep)

        log(f"[{size_m} M] guppy3 hpy().heap()")
        g: dict[str, Any] = {}

        def guppy_keep(h: Any) -> None:
            if not g:
                g["n"], g["total"] = int(h.count), int(h.size)

        with gc_collect_disabled() as skipped:
            # untimed warm-up: guppy's first heap() in a process also walks the whole heap
            # once for its own one-time initialisation
            run_timed(lambda: hpy().heap(), 1)
            skipped[0] = 0
            t_g = run_timed(lambda: hpy().heap(), repeat, guppy_keep, cpu=(cpu_g := []))
        res["guppy"] = dict(times=t_g, cpu=cpu_g, gc_collect_skipped=skipped[0], **g)
        res["guppy"]["shipped"] = run_timed(lambda: hpy().heap(), 1)

    heap = roots = None
    return res


def worker_memory(size_m: float) -> dict[str, Any]:
    import tracemalloc

    import jupyter_memsnap
    from jupyter_memsnap.capture.process import reset_peak

    warm_up()
    log(f"[{size_m} M] memory: building the heap")
    heap, _ = build(size_m)
    roots = heap_roots(heap)
    gc.collect()
    res: dict[str, Any] = {"size_m": size_m}
    for run in ("", "2"):  # the first capture in the process, then a repeat
        base = proc_status("VmRSS")
        res["hwm_reset"] = reset_peak()
        snap = jupyter_memsnap.take(roots=roots, collect=False, engine="c")
        peak = proc_status("VmHWM")
        after = proc_status("VmRSS")
        res.update(
            {
                f"n{run}": len(snap),
                f"nbytes{run}": snap.nbytes,
                f"rss_base{run}": base,
                f"rss_peak{run}": peak,
                f"rss_after{run}": after,
                f"peak_extra{run}": peak - base,
                f"kept{run}": after - base,
            }
        )
        del snap
        gc.collect()
    # the same capture, allocation by allocation (tracemalloc traces PyMem_Raw* too)
    tracemalloc.start()
    t0 = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    snap = jupyter_memsnap.take(roots=roots, collect=False, engine="c")
    cur, tpeak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    res.update(traced_peak_extra=tpeak - t0, traced_kept=cur - t0, n_traced_run=len(snap))
    del snap, heap, roots
    return res


def worker_coverage(size_m: float) -> dict[str, Any]:
    import tracemalloc

    import numpy as np

    import jupyter_memsnap

    warm_up()
    before = jupyter_memsnap.take(roots=[], engine="c")
    ids0, n0, b0 = before.ids.copy(), len(before), before.total_size
    del before
    gc.collect()
    log(f"[{size_m} M] coverage: building the heap under tracemalloc")
    tracemalloc.start()
    t0 = tracemalloc.get_traced_memory()[0]
    heap, _ = build(size_m)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - t0
    tracemalloc.stop()
    snap = jupyter_memsnap.take(roots=heap_roots(heap), engine="c")
    new = ~np.isin(snap.ids, ids0, assume_unique=True)
    res = {
        "size_m": size_m,
        "traced": traced,
        "attributed_delta": snap.total_size - b0,
        "attributed_new": int(snap.sizes[new].sum()),
        "objects_added": len(snap) - n0,
        "new_objects": int(new.sum()),
    }
    del snap, heap
    return res


def worker_components(size_m: float) -> dict[str, Any]:
    """Coverage per part of the heap: which part's bytes tracemalloc sees and we do not (for
    a pyarrow-backed frame, tracemalloc's bytes plus those pyarrow's allocator reports)."""
    import tracemalloc

    from heap_builder import PART_NAMES, build_part

    import jupyter_memsnap

    warm_up()
    n = round(size_m * 1_000_000)
    records = build_part("records", n)
    try:  # pyarrow's buffers come from its own allocator, which tracemalloc does not see
        import pyarrow

        names, arrow_bytes = (*PART_NAMES, "arrow_frame"), pyarrow.total_allocated_bytes
    except ImportError:
        names, arrow_bytes = PART_NAMES, lambda: 0
    out = {}
    for name in names:
        gc.collect()
        s0 = jupyter_memsnap.take(roots=[("records", "variable", records)], engine="c")
        n0, b0 = len(s0), s0.total_size
        del s0
        gc.collect()
        tracemalloc.start()
        t0, a0 = tracemalloc.get_traced_memory()[0], arrow_bytes()
        part = build_part(name, n, records=records)
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - t0 + arrow_bytes() - a0
        tracemalloc.stop()
        s1 = jupyter_memsnap.take(
            roots=[("records", "variable", records), ("part", "variable", part)], engine="c"
        )
        out[name] = dict(traced=traced, attributed=s1.total_size - b0, objects=len(s1) - n0)
        del s1, part
    return {"size_m": size_m, "parts": out}


WORKERS = {"memory": worker_memory, "coverage": worker_coverage, "components": worker_components}


# ------------------------------------------------------------------------------ driver


def run_worker(kind: str, size_m: float, extra: list[str] | None = None) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as f:
        path = f.name
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        kind,
        "--size",
        str(size_m),
        "--out",
        path,
        *(extra or []),
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    with open(path) as f:
        res: dict[str, Any] = json.load(f)
    os.unlink(path)
    res["worker_s"] = time.perf_counter() - t0
    return res


def machine() -> dict[str, str]:
    import numpy
    import pandas

    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
        cpu = m.group(1) if m else "?"
    vers = {}
    for mod in ("pympler", "guppy3", "psutil"):
        try:
            from importlib.metadata import version

            vers[mod] = version(mod)
        except Exception:
            vers[mod] = "?"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        **vers,
        "kernel": platform.release(),
    }


def fmt_s(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def mb(x: float) -> str:
    return f"{x / 1e6:,.1f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join([line, sep, *body])


def report(
    runs: list[dict[str, Any]], parts: dict[str, Any] | None, info: dict[str, str], repeat: int
) -> str:
    out: list[str] = []
    out.append("Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    out.append("")
    out.append("## Heaps")
    rows = []
    for r in runs:
        t = r["timing"]
        rows.append(
            [
                f"{r['size_m']} M",
                f"{t['objects_added']:,}",
                f"{t['ours_c']['n']:,}",
                f"{t['ours_c']['edges']:,}",
                mb(t["bytes_added"]),
                mb(t["array_bytes"]),
                f"{t['build_s']:.2f}",
            ]
        )
    out.append(
        table(
            [
                "heap",
                "objects added",
                "objects in snapshot",
                "edges",
                "MB added (ours)",
                "numpy MB",
                "build s",
            ],
            rows,
        )
    )
    out.append("")
    out.append(f"## Time (median of up to {repeat} runs, same process and heap per size)")
    out.append(
        "GC-free: one untimed gc.collect() before every call; our take(collect=False); "
        "the peers' internal gc.collect() replaced by a no-op. 'as shipped': one run "
        "with each tool's own gc.collect() (ours: collect=True). 'median CPU s': this "
        "process's user+system CPU time (time.process_time), less sensitive than wall time to "
        "other processes on the machine. 'peer / ours': wall-time ratio to our take()."
    )
    for r in runs:
        t = r["timing"]
        ours = median(t["ours_c"]["times"])
        rows: list[list[str]] = []

        def row(
            name: str,
            times: list[float],
            n: Any = "",
            total: Any = "",
            note: str = "",
            ratio: bool = True,
            cpu: list[float] | None = None,
            rows: list[list[str]] = rows,
            ours: float = ours,
        ) -> None:
            m = median(times)
            rows.append(
                [
                    name,
                    fmt_s(m),
                    fmt_s(median(cpu)) if cpu else "",
                    f"{fmt_s(min(times))}–{fmt_s(max(times))}" if len(times) > 1 else "",
                    str(len(times)),
                    f"{m / ours:.1f}x" if ratio else "",
                    f"{n:,}" if isinstance(n, int) else n,
                    mb(total) if isinstance(total, int) else total,
                    note,
                ]
            )

        row(
            "ours take(), C walker",
            t["ours_c"]["times"],
            t["ours_c"]["n"],
            t["ours_c"]["total"],
            f"walk {fmt_s(median(t['ours_c']['walk_s']))} s, process memory "
            f"{fmt_s(median(t['read_process_memory_s']))} s",
            ratio=False,
            cpu=t["ours_c"].get("cpu"),
        )
        row(
            "ours + retained sizes",
            [a + b for a, b in zip(t["ours_c"]["times"], t["dominator_s"], strict=True)],
            note=f"dominator_tree {fmt_s(median(t['dominator_s']))} s",
        )
        if "ours_python" in t:
            p = t["ours_python"]
            row("ours take(), Python walker", p["times"], p["n"], p["total"], cpu=p.get("cpu"))
        if "pympler" in t:
            p = t["pympler"]
            row(
                "pympler muppy+summarize",
                p["times"],
                p["n"],
                p["total"],
                "objects = muppy.get_objects(); bytes = summarize",
                cpu=p.get("cpu"),
            )
        if "guppy" in t:
            g = t["guppy"]
            row(
                "guppy3 hpy().heap()",
                g["times"],
                g.get("n", ""),
                g.get("total", ""),
                "a set: no sizes, no edges",
                cpu=g.get("cpu"),
            )
        row(
            "gc.get_objects()",
            t["gc_get_objects"]["times"],
            t["gc_get_objects"]["n"],
            note="tracked containers only, no sizes",
            cpu=t["gc_get_objects"].get("cpu"),
        )
        row(
            "ours take(collect=True), as shipped",
            t["ours_c_collect"]["times"],
            note=f"a gc.collect() alone: {fmt_s(median(t['gc_collect_s']))} s",
        )
        if "diff" in t and "times" in t["diff"]:
            d = t["diff"]
            row(
                "ours after.diff(before).types",
                d["times"],
                ratio=False,
                note=f"{d['n_before']:,} vs {d['n_after']:,} objects, {d['new']:,} new, "
                f"{d['freed']:,} freed",
                cpu=d.get("cpu"),
            )
        elif "diff" in t:
            rows.append(
                ["ours after.diff(before).types", "error", *[""] * 5, t["diff"]["error"][:80]]
            )
        if "pympler" in t:
            row("pympler, as shipped", t["pympler"]["shipped"])
        if "guppy" in t:
            row("guppy3, as shipped", t["guppy"]["shipped"])
        out.append("")
        out.append(f"### {r['size_m']} M objects added ({t['ours_c']['n']:,} in the snapshot)")
        out.append(
            table(
                [
                    "tool",
                    "median s",
                    "median CPU s",
                    "min–max s",
                    "runs",
                    "peer / ours",
                    "objects seen",
                    "MB seen",
                    "note",
                ],
                rows,
            )
        )
    out.append("")
    out.append("## Memory (bytes per object in the snapshot)")
    rows = []
    for r in runs:
        m = r["memory"]
        n = m["n"]
        peak = max(m["peak_extra"], m["peak_extra2"])
        rows.append(
            [
                f"{r['size_m']} M",
                f"{n:,}",
                f"{m['nbytes'] / n:.1f}",
                f"{m['peak_extra'] / n:.1f}",
                f"{m['peak_extra2'] / m['n2']:.1f}",
                f"{m['traced_peak_extra'] / n:.1f}",
                f"{m['kept'] / n:.1f}",
                f"{verdict(m['nbytes'] / n <= TARGETS['stored_bpo'])} / "
                f"{verdict(peak / n <= TARGETS['peak_bpo'])}",
            ]
        )
    out.append(
        table(
            [
                "heap",
                "objects",
                "stored (nbytes/obj)",
                "peak extra, RSS HWM",
                "same, 2nd capture",
                "peak extra, tracemalloc",
                "RSS kept after",
                "stored / peak vs target",
            ],
            rows,
        )
    )
    out.append(
        "RSS HWM: VmHWM reset via /proc/self/clear_refs before take(), minus the RSS "
        "before it. tracemalloc: peak traced bytes during a 3rd take() (sees PyMem_* and "
        "numpy allocations as requested, including reserved pages never touched; not memory "
        "the walker maps directly with mmap). Peak vs target: the larger RSS measure."
    )
    out.append("")
    out.append("## Coverage (tracemalloc started before the heap was built)")
    rows = []
    for r in runs:
        c = r["coverage"]
        rows.append(
            [
                f"{r['size_m']} M",
                mb(c["traced"]),
                mb(c["attributed_delta"]),
                f"{100 * c['attributed_delta'] / c['traced']:.1f} %",
                mb(c["attributed_new"]),
                f"{100 * c['attributed_new'] / c['traced']:.1f} %",
                verdict(c["attributed_delta"] / c["traced"] >= TARGETS["coverage"]),
            ]
        )
    out.append(
        table(
            [
                "heap",
                "traced MB",
                "attributed MB (total delta)",
                "ratio",
                "attributed MB (new objects)",
                "ratio",
                "vs 95 %",
            ],
            rows,
        )
    )
    if parts:
        out.append("")
        out.append(f"### Coverage by part of the heap ({parts['size_m']} M-object scale)")
        rows = []
        for name, p in parts["parts"].items():
            gap = p["traced"] - p["attributed"]
            rows.append(
                [
                    name,
                    f"{p['objects']:,}",
                    mb(p["traced"]),
                    mb(p["attributed"]),
                    f"{100 * p['attributed'] / p['traced']:.1f} %" if p["traced"] else "-",
                    mb(gap),
                    f"{gap / max(1, p['objects']):.1f}",
                ]
            )
        out.append(
            table(
                [
                    "part",
                    "objects",
                    "traced MB",
                    "attributed MB",
                    "ratio",
                    "gap MB",
                    "gap B/object",
                ],
                rows,
            )
        )
    out.append("")
    big = max(runs, key=lambda r: r["size_m"])
    t, m, c = big["timing"], big["memory"], big["coverage"]
    ours = median(t["ours_c"]["times"])
    walk = median(t["ours_c"]["walk_s"])
    full = median([a + b for a, b in zip(t["ours_c"]["times"], t["dominator_s"], strict=True)])
    n = m["n"]
    peak = max(m["peak_extra"], m["peak_extra2"])
    out.append(
        f"## Targets at the largest heap ({big['size_m']} M objects added, "
        f"{t['ours_c']['n']:,} in the snapshot)"
    )
    if big["size_m"] < 2.5:
        out.append("The time targets are set for ~3 M objects: this run's largest heap is smaller.")
    rows = [
        [
            "snapshot without retained sizes (take)",
            "<= 0.5 s",
            f"{ours:.3f} s (CPU {median(t['ours_c']['cpu']):.3f} s)",
            verdict(ours <= TARGETS["take_s"]),
        ],
    ]
    if "pympler" in t:
        ratio = median(t["pympler"]["times"]) / ours
        rows.append(
            [
                "... vs pympler (GC-free both)",
                "<= 1/10 of pympler",
                f"1/{ratio:.1f}",
                verdict(ratio >= TARGETS["pympler_ratio"]),
            ]
        )
    rows += [
        [
            "DESIGN.md: census only (walk, snap.seconds)",
            "<= 0.3 s",
            f"{walk:.3f} s",
            verdict(walk <= TARGETS["census_s"]),
        ],
        [
            "DESIGN.md: full snapshot with retained sizes",
            "<= 1.0 s",
            f"{full:.3f} s",
            verdict(full <= TARGETS["full_s"]),
        ],
        *(
            [
                [
                    "DESIGN.md: diff of two snapshots (.types)",
                    "<= 0.2 s",
                    f"{median(t['diff']['times']):.3f} s",
                    verdict(median(t["diff"]["times"]) <= TARGETS["diff_s"]),
                ]
            ]
            if "times" in t.get("diff", {})
            else []
        ),
        [
            "stored snapshot",
            "<= 48 B/object",
            f"{m['nbytes'] / n:.1f} B/object",
            verdict(m["nbytes"] / n <= TARGETS["stored_bpo"]),
        ],
        [
            "peak extra RSS while capturing (1st or 2nd capture)",
            "<= 100 B/object",
            f"{peak / n:.1f} B/object",
            verdict(peak / n <= TARGETS["peak_bpo"]),
        ],
        [
            "bytes attributed / traced",
            ">= 95 %",
            f"{100 * c['attributed_delta'] / c['traced']:.1f} %",
            verdict(c["attributed_delta"] / c["traced"] >= TARGETS["coverage"]),
        ],
    ]
    out.append(table(["target", "goal", "measured", ""], rows))
    return markdown_blocks("\n".join(out))


def markdown_blocks(text: str) -> str:
    """Blank lines after headings and around tables, so the report renders as Markdown."""
    lines = text.split("\n")
    res: list[str] = []
    for i, line in enumerate(lines):
        res.append(line)
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if not nxt:
            continue
        is_table, next_table = line.startswith("|"), nxt.startswith("|")
        if line.startswith("#") or (is_table != next_table and line):
            res.append("")
    return "\n".join(res)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="0.1,1,3", help="millions of objects, comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-peers", action="store_true", help="skip pympler and guppy3")
    ap.add_argument("--json", help="also write the raw measurements here")
    ap.add_argument("--worker", choices=["timing", *WORKERS], help=argparse.SUPPRESS)
    ap.add_argument("--size", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        if args.worker == "timing":
            res = worker_timing(args.size, args.repeat, args.skip_peers)
        else:
            res = WORKERS[args.worker](args.size)
        with open(args.out, "w") as f:
            json.dump(res, f)
        return

    t0 = time.perf_counter()
    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    info = machine()
    runs = []
    for size in sizes:
        extra = ["--repeat", str(args.repeat)] + (["--skip-peers"] if args.skip_peers else [])
        runs.append(
            {
                "size_m": size,
                "timing": run_worker("timing", size, extra),
                "memory": run_worker("memory", size),
                "coverage": run_worker("coverage", size),
            }
        )
    parts = run_worker("components", 0.1)
    text = report(runs, parts, info, args.repeat)
    print(text)
    print(
        f"\nTotal benchmark time: {time.perf_counter() - t0:.0f} s "
        f"(command: python benchmarks/bench_snapshot.py {' '.join(sys.argv[1:])})"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "runs": runs, "parts": parts}, f, indent=1)


if __name__ == "__main__":
    main()
