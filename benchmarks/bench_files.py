"""Benchmark snapshot files: bytes per object on disk, save and load time, vs plain npz.

Usage (from the repository root):
    python benchmarks/bench_files.py [--sizes 1,3] [--repeat N] [--no-baselines]
                                     [--dir DIR] [--json results.json]

For each size (millions of live objects the synthetic heap of heap_builder.py adds) a fresh
subprocess builds the heap, takes one snapshot (``jupyter_memsnap.take()``) and times, on
that snapshot:

* ``save_snapshot`` / ``load_snapshot`` (the format of ``jupyter_memsnap/model/files.py``:
  packed columns in an uncompressed npz, fsync, atomic rename; load validates everything);
* baselines, to justify the container: ``np.savez`` of the raw columns (uncompressed),
  ``np.savez_compressed`` of the raw columns (zlib level 6) and the packed columns written
  with zlib level 1 (the fastest compressor available without new dependencies). The
  baselines are fsync-ed too, loaded with ``np.load(..., allow_pickle=False)``, and run
  once (the compressed ones are slow).

A last subprocess snapshots an interpreter with only pandas, matplotlib and IPython
imported (no synthetic data): a module-heavy heap with more references per object.

Files go to a temporary directory (``--dir`` to choose the disk); the page cache is warm
when loading right after saving, as it is when a notebook loads what it just saved.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

TARGETS = {"bytes_per_object": 48.0, "save_s": 1.0, "load_s": 1.0}
TIMED_FROM = 2.5  # millions of objects: the save/load budget applies at ~3 M objects


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _fsynced(path: str, write: Callable[[Any], None]) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def _np_load_all(path: str) -> None:
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        for k in z.files:
            z[k]


def measure(snap: Any, directory: str, repeat: int, baselines: bool) -> dict[str, Any]:
    import numpy as np

    from jupyter_memsnap.model.files import _encode, load_snapshot, save_snapshot

    n = len(snap)
    out: dict[str, Any] = {
        "objects": n,
        "edges": snap.n_edges,
        "edges_per_object": snap.n_edges / max(n, 1),
        "in_memory_bytes_per_object": snap.nbytes / max(n, 1),
    }
    path = os.path.join(directory, "snap.memsnap")
    saves, loads = [], []
    for _ in range(repeat):
        saves.append(_timed(lambda: save_snapshot(snap, path)))
        loads.append(_timed(lambda: load_snapshot(path)))
    out["ours"] = {
        "bytes_per_object": os.path.getsize(path) / n,
        "save_s": statistics.median(saves),
        "load_s": statistics.median(loads),
    }
    if not baselines:
        return out
    raw = {
        name: getattr(snap, name)
        for name in ("sorted_ids", "order", "type_index", "sizes", "offsets", "targets")
    }
    raw["native_index"], raw["native_bytes"] = snap.native_index, snap.native_bytes
    _, packed = _encode(snap)

    def zlib1(f: Any) -> None:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for name, arr in packed.items():
                with zf.open(name + ".npy", "w", force_zip64=True) as m:
                    np.lib.format.write_array(m, arr, allow_pickle=False)

    cases: dict[str, Callable[[Any], None]] = {
        "npz raw columns": lambda f: np.savez(f, **raw),
        "npz_compressed raw (zlib 6)": lambda f: np.savez_compressed(f, **raw),
        "packed columns, zlib 1": zlib1,
    }
    other = os.path.join(directory, "baseline.npz")
    for name, write in cases.items():
        save_s = _timed(lambda write=write: _fsynced(other, write))  # type: ignore[misc]
        load_s = _timed(lambda: _np_load_all(other))
        out[name] = {
            "bytes_per_object": os.path.getsize(other) / n,
            "save_s": save_s,
            "load_s": load_s,
        }
        os.unlink(other)
    return out


def child(size: float, repeat: int, baselines: bool, directory: str) -> dict[str, Any]:
    import jupyter_memsnap

    if size > 0:
        from heap_builder import build_heap

        heap = build_heap(int(size * 1_000_000))  # noqa: F841 - kept alive for the snapshot
    else:
        import IPython  # noqa: F401 - a module-heavy heap, no data
        import matplotlib.pyplot  # noqa: F401
        import pandas  # noqa: F401
    snap = jupyter_memsnap.take()
    work = tempfile.mkdtemp(prefix="bench_files_", dir=directory)
    try:
        result = measure(snap, work, repeat, baselines)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["size_m"] = size
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,3", help="millions of objects, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="save/load runs (median)")
    parser.add_argument("--no-baselines", action="store_true", help="time our format only")
    parser.add_argument("--dir", default=None, help="where to write (default: the temp dir)")
    parser.add_argument("--json", default=None, help="write the results here too")
    parser.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        result = child(args.child, args.repeat, not args.no_baselines, args.dir)
        print(json.dumps(result))
        return
    results = []
    sizes = [float(s) for s in args.sizes.split(",") if s] + [0.0]
    for size in sizes:
        what = f"{size:g} M-object synthetic heap" if size else "module-only heap"
        print(f"running: {what} ...", file=sys.stderr, flush=True)
        cmd = [sys.executable, __file__, "--child", str(size), "--repeat", str(args.repeat)]
        if args.no_baselines or size == 0:
            cmd.append("--no-baselines")
        if args.dir:
            cmd += ["--dir", args.dir]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            sys.exit(f"child failed:\n{proc.stderr}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    report(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def report(results: list[dict[str, Any]]) -> None:
    print(
        f"{'heap':>14} {'objects':>10} {'edges/obj':>9}  {'format':<28} "
        f"{'B/object':>8} {'save s':>7} {'load s':>7}"
    )
    verdicts = []
    for r in results:
        heap = f"{r['size_m']:g} M synthetic" if r["size_m"] else "modules only"
        for name in ("ours", *[k for k in r if isinstance(r[k], dict) and k != "ours"]):
            m = r[name]
            print(
                f"{heap:>14} {r['objects']:>10,} {r['edges_per_object']:>9.2f}  {name:<28} "
                f"{m['bytes_per_object']:>8.1f} {m['save_s']:>7.3f} {m['load_s']:>7.3f}"
            )
        ours = r["ours"]
        ok = ours["bytes_per_object"] <= TARGETS["bytes_per_object"]
        verdicts.append(
            f"{heap}: {ours['bytes_per_object']:.1f} B/object <= 48: {'PASS' if ok else 'MISS'}"
        )
        if r["objects"] >= TIMED_FROM * 1_000_000:
            for key in ("save_s", "load_s"):
                ok = ours[key] <= TARGETS[key]
                verdicts.append(
                    f"{heap}: {key[:4]} {ours[key]:.3f} s <= 1 s: {'PASS' if ok else 'MISS'}"
                )
    print("\n" + "\n".join(verdicts))


if __name__ == "__main__":
    main()
