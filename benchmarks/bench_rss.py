"""How much of a realistic kernel's RSS the memory table names, and what the snapshot costs.

    python benchmarks/bench_rss.py            (~30 s)

A child process holds what the issue "Where is the rest of my RSS?" describes: a pandas
frame, a polars frame, a Pillow image, a drawn matplotlib figure and a fitted random forest.
It prints the memory table, each holder's retained size next to its library's own figure,
and the time of a snapshot with and without the process-level rows.
"""

from __future__ import annotations

import subprocess
import sys

CHILD = r"""
import gc, sys, time
import psutil
import numpy as np, pandas as pd, polars as pl
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.ensemble import RandomForestClassifier
import jupyter_memsnap
from jupyter_memsnap.capture import process

rng = np.random.default_rng(0)
pandas_frame = pd.DataFrame({"a": rng.random(2_000_000), "b": np.arange(2_000_000),
                             "s": [f"s{i % 1000}" for i in range(2_000_000)]})
polars_frame = pl.DataFrame({"x": rng.random(3_000_000), "y": np.arange(3_000_000)})
image = PIL.Image.new("RGB", (3000, 3000), (1, 2, 3))
figure = Figure(figsize=(12, 9), dpi=100)
FigureCanvasAgg(figure)
figure.add_subplot().plot(np.cumsum(rng.normal(size=5_000)))
figure.canvas.draw()
x, y = rng.random((20_000, 20)), rng.integers(0, 2, 20_000)
forest = RandomForestClassifier(n_estimators=50, random_state=0).fit(x, y)
truths = {
    "pandas_frame": int(pandas_frame.memory_usage(deep=True).sum()),
    "polars_frame": int(polars_frame.estimated_size()),
    "image": 3000 * 3000 * 4,
    "figure": memoryview(figure.canvas.buffer_rgba()).nbytes,
    "forest": sum(t.tree_.children_left.base.nbytes + t.tree_.value.nbytes
                  for t in forest.estimators_),
}
roots = [(n, "variable", globals()[n], (globals(),)) for n in truths]
jupyter_memsnap.take(roots=roots)
gc.collect()
times = []
for _ in range(5):
    t = time.perf_counter()
    snap = jupyter_memsnap.take(roots=roots, collect=False)
    times.append(time.perf_counter() - t)
def median_s(fn, n=9):
    spent = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        spent.append(time.perf_counter() - t)
    return sorted(spent)[n // 2]
rows_s = median_s(process.read_process_memory)
before_s = median_s(lambda: psutil.Process().memory_full_info())  # what take() read before
import pandas
pandas.set_option("display.width", 160)
table = snap.memory
table["MB"] = (table["bytes"] / 1e6).round(1)
print(table[["measure", "MB", "share", "level"]].to_string(index=False))
v = snap.variables.set_index("name")
print()
for name, truth in truths.items():
    print(f"{name:13s} retained {v.loc[name, 'retained'] / 1e6:8.1f} MB   library's own figure "
          f"{truth / 1e6:8.1f} MB   ratio {v.loc[name, 'retained'] / truth:6.1%}")
rss = snap.process.rss
unattributed = int(table.set_index("measure").loc["unattributed", "bytes"])
print(f"\nRSS {rss / 1e6:.1f} MB; named {1 - unattributed / rss:.1%}, unattributed "
      f"{unattributed / rss:.1%}")
take_s = sorted(times)[2]
print(f"take() median {take_s:.3f} s; reading the process-level rows {rows_s * 1e3:.1f} ms "
      f"(RSS and USS alone, as before: {before_s * 1e3:.1f} ms): "
      f"+{(rows_s - before_s) / (take_s - rows_s + before_s):.1%} for the new rows")
"""


def main() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stderr[-4000:])
    print(done.stdout)


if __name__ == "__main__":
    main()
