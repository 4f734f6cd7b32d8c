"""Insights (issue 14): their cost next to the snapshot they read, at 1 and 3 M objects.

```bash
python benchmarks/bench_insights.py                 # 1 and 3 M objects (~2 min)
python benchmarks/bench_insights.py --sizes 3 --json out.json
```

Each size runs in a fresh subprocess: ``heap_builder``'s synthetic notebook heap, its parts
bound as notebook variables (records, strings, a DataFrame, arrays…) in a real IPython
shell, plus a planted waste of each kind. Rows: ``take`` (the snapshot), ``retained``
(retained sizes, which ``vars`` and ``why`` need too), then ``insights`` on that snapshot:
its extra seconds (target ≤ 0.5 s at 3 M objects), split into the part read from the
snapshot and the part read from live values (bounded by a 0.4 s budget), and how many
insights it found. No peer finds these; the ratio is to the snapshot's own time.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

TARGET_S = 0.5
PLANTED = """
import functools, numpy as np
head = np.arange(4_000_000)[:10]
zeros = np.zeros((1000, 1000)); zeros[::50, ::50] = 1
cities = [f"city-{i % 50}" for i in range(300_000)]
@functools.lru_cache(maxsize=None)
def load(i): return bytes(100_000) + bytes([i])
for i in range(30): load(i)
"""


def timed(fn: Any) -> tuple[Any, float]:
    gc.collect()
    t = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t


def worker(size_m: float) -> dict[str, Any]:
    from heap_builder import build_heap
    from IPython.core.interactiveshell import InteractiveShell

    from jupyter_memsnap import api
    from jupyter_memsnap.capture.values import probe
    from jupyter_memsnap.views.insights import insights_table

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "jupyter_memsnap")
    ip.user_ns.update(build_heap(round(size_m * 1e6)))
    ip.run_cell(PLANTED, store_history=False)
    api.insights()  # imports and first calls, untimed
    snap, take_s = timed(lambda: api.take(collect=False))
    _, retained_s = timed(lambda: snap.retained)
    found, insights_s = timed(lambda: api.insights(snap))
    roots = api.default_roots()[0]
    variables = [(r[0], r[2]) for r in roots if r[1] == "variable"]
    findings, probe_s = timed(functools.partial(probe, variables))
    del roots, variables
    _, table_s = timed(lambda: insights_table(snap, findings, (), api.path_namer()))
    return {
        "size_m": size_m,
        "objects": len(snap),
        "take_s": take_s,
        "retained_s": retained_s,
        "insights_s": insights_s,
        "probe_s": probe_s,
        "snapshot_part_s": table_s,
        "found": len(found),
        "kinds": sorted(set(found["kind"])),
    }


def run(size_m: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", str(size_m)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        return {"size_m": size_m, "error": done.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def report(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        if "error" in r:
            lines.append(f"{r['size_m']:g} M: failed: {r['error']}")
            continue
        verdict = "PASS" if r["insights_s"] <= TARGET_S or r["objects"] < 2.5e6 else "MISS"
        lines.append(
            f"{r['objects'] / 1e6:4.1f} M objects: take {r['take_s']:.2f} s, retained "
            f"{r['retained_s']:.2f} s, insights +{r['insights_s']:.2f} s "
            f"({r['insights_s'] / r['take_s']:.2f}× take; snapshot part "
            f"{r['snapshot_part_s']:.2f} s, values {r['probe_s']:.2f} s) — {r['found']} found: "
            f"{', '.join(r['kinds'])}  [{verdict} ≤ {TARGET_S} s at 3 M]"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 3])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--worker", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker)))
        return
    results = [run(size) for size in args.sizes]
    print(report(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
