"""The 20 GB kernel (issue 13): what a snapshot costs at 3, 10 and 30 M objects.

```bash
python benchmarks/bench_scale.py                       # 3, 10, 30 M objects (~1 min, 6.2 GB)
python benchmarks/bench_scale.py --sizes 3 --peers     # guppy3 and pympler beside us at 3 M
python benchmarks/bench_scale.py --json out.json
python benchmarks/bench_scale.py --sizes 30 --backed 2 # the first take on backed memory
```

Each size runs in a fresh subprocess on ``heap_builder``'s synthetic notebook heap, inside a
real IPython shell (the heap is a notebook variable). Memory is the kernel's own count:
peak extra is VmHWM (reset through /proc/self/clear_refs) over RSS before; kept is RssAnon
after minus before (file mappings the OS can drop are reported apart, as RssFile). Rows:

- ``take``: time, peak extra, kept anonymous and file-backed bytes per object;
- ``take --to-disk``: the same with every column in file mappings;
- ``vars``: ``%memsnap vars`` (a fresh snapshot and its variables' retained sizes);
- ``vars, kept``: the variables of the snapshot already kept (retained sizes from scratch),
  the part of ``vars`` that is not a ``take``;
- ``auto``: a trivial cell's time with auto mode on, less the same cell with it off;
- with ``--peers``: guppy3's ``hpy().heap()`` and pympler's ``summarize(get_objects())``.

``--backed GIB`` touches and frees that much fresh memory before the first take, so that the
take runs on pages the machine has already backed: on a VM whose freed pages go back to the
host (free page reporting), a process's first touch of a page costs the host's fault as well,
and the first take measures that more than the walk. The touch's own time is reported.

The 300 M row is a projection: bytes per object and seconds per million objects of the
largest size measured, times 300 M (not measured).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from jupyter_memsnap.model import allocator

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

TARGETS = {"take_s_30m": 3.0, "peak_bpo": 40, "kept_bpo": 16, "auto_ms_20m": 50}


def status(field: str) -> int:
    with open("/proc/self/status") as f:
        m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) * 1024 if m else -1


def measure(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Run ``fn`` once: seconds, peak extra RSS, anonymous and file RSS it left."""
    gc.collect()
    rss, anon, files = status("VmRSS"), status("RssAnon"), status("RssFile")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    peak = status("VmHWM") - rss
    kept_anon, kept_file = status("RssAnon") - anon, status("RssFile") - files
    allocator.malloc_trim()  # what glibc kept free of the temporaries (%memsnap trim)
    return result, {
        "s": seconds,
        "peak": peak,
        "kept_anon": kept_anon,
        "kept_trimmed": status("RssAnon") - anon,
        "kept_file": kept_file,
    }


def touch(gib: float) -> float:
    """Seconds to write ``gib`` GiB of fresh memory once, then free it."""
    import numpy as np

    t0 = time.perf_counter()
    np.ones(int(gib * 2**30) // 8)
    return time.perf_counter() - t0


def worker(size_m: float, peers: bool, backed: float) -> dict[str, Any]:
    from heap_builder import build_heap
    from IPython.core.interactiveshell import InteractiveShell

    import jupyter_memsnap

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "jupyter_memsnap")
    jupyter_memsnap.take(roots=[("small", "variable", build_heap(2000))]).variables  # noqa: B018 - imports
    t0 = time.perf_counter()
    ip.user_ns["heap"] = build_heap(round(size_m * 1e6))
    built = time.perf_counter() - t0
    gc.collect()
    allocator.malloc_trim()
    out: dict[str, Any] = {"size_m": size_m, "build_s": built, "backed_gib": backed}
    if backed:
        out["backed_s"] = touch(backed)

    snap, out["take"] = measure(lambda: jupyter_memsnap.take(collect=False))
    del snap
    gc.collect()
    snap, out["take_again"] = measure(lambda: jupyter_memsnap.take(collect=False))
    n = out["objects"] = len(snap)
    out["nbytes"], out["memory_nbytes"] = snap.nbytes, snap.memory_nbytes
    _, out["vars_kept"] = measure(lambda kept=snap: kept.variables)
    _, out["vars"] = measure(lambda: ip.run_line_magic("memsnap", "vars --top 5"))
    del snap
    gc.collect()
    snap, out["take_to_disk"] = measure(lambda: jupyter_memsnap.take(collect=False, to_disk=True))
    del snap
    gc.collect()
    allocator.malloc_trim()

    def cells(k: int) -> float:
        t = time.perf_counter()
        for _ in range(k):
            ip.run_cell("x = 1")
        return (time.perf_counter() - t) / k

    off = min(cells(3) for _ in range(2))
    ip.run_line_magic("memsnap", "auto on")
    on = min(cells(3) for _ in range(2))
    ip.run_line_magic("memsnap", "auto off")
    out["auto_ms"] = (on - off) * 1000
    if peers:
        out["peers"] = peer_rows()
    out["n"] = n
    return out


def peer_rows() -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    try:
        from guppy import hpy

        _, rows["guppy3 hpy().heap()"] = measure(lambda: hpy().heap().size)
    except ImportError:
        pass
    try:
        from pympler import muppy, summary

        _, rows["pympler summarize"] = measure(lambda: summary.summarize(muppy.get_objects()))
    except ImportError:
        pass
    return rows


def run(size_m: float, peers: bool, backed: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", str(size_m), "--backed", str(backed)]
    cmd += ["--peers"] if peers else []
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        return {"size_m": size_m, "error": done.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def per_object(row: dict[str, float], n: int) -> str:
    return (
        f"{row['s']:6.2f} s  peak {row['peak'] / n:5.1f}  kept: anon {row['kept_anon'] / n:5.1f}"
        f" ({row['kept_trimmed'] / n:5.1f} after trim), file {row['kept_file'] / n:5.1f} B/obj"
    )


def report(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        if "error" in r:
            lines.append(f"{r['size_m']:g} M: failed: {r['error']}")
            continue
        n = r["n"]
        lines.append(f"## {n / 1e6:.1f} M objects (heap built in {r['build_s']:.0f} s)")
        if r.get("backed_gib"):
            lines.append(
                f"backed: {r['backed_gib']:g} GiB of fresh memory touched and freed before the"
                f" first take in {r['backed_s']:.2f} s"
            )
        lines.append(f"take (first)   {per_object(r['take'], n)}")
        lines.append(f"take (again)   {per_object(r['take_again'], n)}")
        lines.append(f"take --to-disk {per_object(r['take_to_disk'], n)}")
        lines.append(f"vars           {per_object(r['vars'], n)}")
        lines.append(f"vars, kept     {per_object(r['vars_kept'], n)}")
        lines.append(
            f"stored: {r['nbytes'] / n:.1f} B/obj in all, {r['memory_nbytes'] / n:.1f} in memory"
        )
        lines.append(f"auto mode: +{r['auto_ms']:.0f} ms per trivial cell")
        for name, row in r.get("peers", {}).items():
            lines.append(f"{name:14s} {per_object(row, n)}")
    good = [r for r in results if "error" not in r]
    if good:
        r = max(good, key=lambda r: r["n"])
        n, scale = r["n"], 300e6 / r["n"]
        t = r["take_again"]
        lines.append(
            f"## projection to 300 M objects (from {n / 1e6:.0f} M, linear; not measured): "
            f"take {t['s'] * scale:.0f} s, peak {t['peak'] * scale / 1e9:.1f} GB, kept "
            f"{t['kept_trimmed'] * scale / 1e9:.1f} GB in memory "
            f"({r['take_to_disk']['kept_anon'] * scale / 1e9:.1f} GB with --to-disk), "
            f"vars {r['vars']['s'] * scale:.0f} s and {r['vars']['peak'] * scale / 1e9:.1f} GB peak"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[3, 10, 30])
    parser.add_argument("--peers", action="store_true", help="guppy3 and pympler too")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument(
        "--backed",
        type=float,
        default=0,
        metavar="GIB",
        help="touch and free this much fresh memory before the first take",
    )
    parser.add_argument("--worker", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.peers, args.backed)))
        return
    results = [run(size, args.peers, args.backed) for size in args.sizes]
    print(report(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
