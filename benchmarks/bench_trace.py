"""What allocation sites cost: a snapshot while tracemalloc traces, and ``%%memsnap`` on a
trivial cell with trace on, as shipped and without the ``_interpreter`` module.

    python benchmarks/bench_trace.py [--objects 1.2]      (~2 minutes; 3.10/3.11: ~10)

Each measure runs in a child process started with ``-X tracemalloc=10`` (tracing from
interpreter start, ten frames), which imports pandas, scikit-learn and matplotlib and builds
``--objects`` million objects of instances, dicts and strings. "shipped": on CPython 3.12
and 3.13 the walker looks each object's traceback up in tracemalloc's table (one tuple per
distinct site) and the snapshot's own allocations are not traced (tracemalloc's per-thread
flag); on 3.10 and 3.11 it asks for one ``_get_object_traceback`` tuple per object, with
tracemalloc's hooks set aside so that neither those tuples nor the snapshot's other
allocations are traced. "no _interpreter" blocks that module: one tuple per object, every
allocation of the snapshot traced. Printed: an untraced take (a child without tracing) for
scale, the traced take (first and second), and the trivial cell in an IPython shell holding
two kept traced snapshots.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, time
if sys.argv[2] == "no _interpreter":
    sys.modules["jupyter_memsnap.capture._interpreter"] = None  # ImportError
import numpy as np, pandas as pd, matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.ensemble import RandomForestClassifier
import tracemalloc
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
import jupyter_memsnap

config = Config()
config.HistoryManager.hist_file = ":memory:"
ip = InteractiveShell.instance(config=config)
ip.run_line_magic("load_ext", "jupyter_memsnap")
n = int(float(sys.argv[1]) * 1e6) // 6
ip.run_cell(
    "class Reading:\n"
    "    def __init__(self, i):\n        self.sensor, self.value = f's{i % 97}', float(i)\n"
    f"readings = [Reading(i) for i in range({n})]\n"
    f"records = [{{'id': i, 'name': f'row-{{i}}'}} for i in range({n})]\n",
    store_history=True,
)
def timed(fn):
    t = time.perf_counter()
    value = fn()
    return time.perf_counter() - t, value
if not tracemalloc.is_tracing():
    timed(jupyter_memsnap.take)
    print(json.dumps({"untraced take": timed(jupyter_memsnap.take)[0]}))
    sys.exit()
out = {}
out["traced take, first"], _ = timed(jupyter_memsnap.take)
out["traced take, second"], snap = timed(jupyter_memsnap.take)
out["sites"] = int(len(snap.site_labels))
out["objects"] = len(snap)
del snap
ip.run_line_magic("memsnap", "clear")
ip.run_line_magic("memsnap", "take -l a")
ip.run_line_magic("memsnap", "take -l b")
out["%%memsnap on x = 1, two kept"], _ = timed(lambda: ip.run_cell_magic("memsnap", "-q", "x = 1"))
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=float, default=1.2, help="millions of objects built")
    args = parser.parse_args()
    results = {}
    for mode in ("untraced", "shipped", "no _interpreter"):
        trace = [] if mode == "untraced" else ["-X", "tracemalloc=10"]
        done = subprocess.run(
            [sys.executable, *trace, "-c", CHILD, str(args.objects), mode],
            capture_output=True,
            text=True,
            check=True,
        )
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"Python {sys.version.split()[0]}, {results['shipped']['objects']:,} objects")
    print(f"untraced take (warm): {results['untraced']['untraced take']:.2f} s")
    print(f"{'measure':40s} {'shipped':>10s} {'no _interpreter':>16s} {'ratio':>7s}")
    for key, value in results["shipped"].items():
        if key in ("objects", "sites"):
            continue
        other = results["no _interpreter"][key]
        print(f"{key:40s} {value:9.2f}s {other:15.2f}s {other / value:6.1f}x")
    sites = [results[mode]["sites"] for mode in ("shipped", "no _interpreter")]
    print(f"distinct sites: {sites[0]:,} / {sites[1]:,}")


if __name__ == "__main__":
    main()
