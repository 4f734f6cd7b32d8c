"""A cluster snapshot (issue 15) next to one local snapshot, at ~1 M objects per process.

```bash
python benchmarks/bench_dask.py                 # 2 workers, 1 M objects each (~1 min)
python benchmarks/bench_dask.py --objects 0.3 --repeat 5
```

A real ``distributed.LocalCluster`` with 2 worker processes (1 thread each); each worker,
and then this process, builds ``heap_builder``'s synthetic notebook heap and keeps it in a
module global. Rows: ``local take`` (``jupyter_memsnap.take`` here, retained sizes
included), ``cluster take`` (every worker walks its own heap in parallel and sends its
summary tables back), ``fetch one worker`` (its full snapshot in the file format, loaded
here). Median of ``--repeat`` runs; the ratio says what the cluster costs over one walk.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


def keep_heap(n: int, where: str) -> int:
    """Build the heap in this process and keep it in a module global; its size."""
    import types

    sys.path.insert(0, where)
    from heap_builder import build_heap

    module = types.ModuleType("bench_heap")
    module.heap = build_heap(n)  # type: ignore[attr-defined]
    sys.modules["bench_heap"] = module
    return n


def median_time(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=float, default=1.0, help="millions per process")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    import jupyter_memsnap
    from jupyter_memsnap import dask as cluster_api

    n = round(args.objects * 1e6)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(keep_heap, n, HERE)
        keep_heap(n, HERE)
        snap = jupyter_memsnap.take()  # imports, untimed
        local = median_time(lambda: jupyter_memsnap.take().retained, args.repeat)
        tokens: list[str] = []

        def cluster_take() -> None:
            tokens.append(cluster_api.take(client).token)
            cluster_api.release(tokens[-1:], client)

        cluster_take()  # imports on the workers, untimed
        remote = median_time(cluster_take, args.repeat)
        cluster = cluster_api.take(client)
        worker = cluster.answered[0]
        fetch = median_time(lambda: cluster_api.fetch(cluster, worker, client), args.repeat)
        objects = ", ".join(f"{int(o):,}" for o in cluster.workers["objects"])
        kept = int(cluster.workers["kept"].iloc[0])
        print(
            f"local take        {local:6.2f} s  ({len(snap):,} objects, retained sizes)\n"
            f"cluster take      {remote:6.2f} s  (2 workers: {objects} objects; "
            f"{remote / local:.2f}× one local take)\n"
            f"fetch one worker  {fetch:6.2f} s  ({kept:,} bytes kept on it)"
        )
        cluster_api.release([cluster.token], client)


if __name__ == "__main__":
    main()
