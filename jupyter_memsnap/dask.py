"""Snapshots of every Dask worker, through Dask's own ``Client.run``.

``take(client)`` asks every worker to walk its own heap at the same moment (the compiled
walk, in the worker's process); each keeps its snapshot there, under a token, and sends
back only summary tables. ``fetch`` brings one worker's full snapshot (its file bytes) for
every single-kernel view; ``release`` frees what the workers keep.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
import uuid
from typing import Any

import numpy as np
import pandas as pd

from .model.cluster import (
    OK,
    TASK_COLUMNS,
    TYPE_COLUMNS,
    VARIABLE_COLUMNS,
    WORKER_COLUMNS,
    ClusterSnapshot,
)
from .model.snapshot import Root, Snapshot

_KEPT: dict[str, Snapshot] = {}
"""In a worker process: the snapshots it took, by cluster snapshot token."""

TOP_GLOBALS = 100
"""Module globals reported per worker, the largest retained first."""

MISSING_PACKAGE = "jupyter_memsnap is not installed on this worker: pip install it there"


class ClusterError(RuntimeError):
    """No Dask client to use, or the cluster cannot be reached."""


def default_client() -> Any:
    """The current ``distributed`` client; ClusterError when there is none."""
    try:
        import distributed
    except ImportError:
        raise ClusterError(
            "Dask's distributed is not installed: pip install 'jupyter_memsnap[dask]'"
        ) from None
    try:
        return distributed.default_client()  # type: ignore[no-untyped-call]
    except ValueError:
        raise ClusterError("no Dask client: create one (Client(...)) or pass it") from None


def take(
    client: Any = None, label: str = "", *, workers: list[str] | None = None
) -> ClusterSnapshot:
    """A snapshot of every worker (or of ``workers``, addresses), each kept on its
    worker; a worker that fails, dies or lacks the package gets a row saying so."""
    client = client if client is not None else default_client()
    token = uuid.uuid4().hex
    try:
        # nthreads asks the scheduler; scheduler_info() returns a cache that the client's
        # periodic refresh can replace with one that lists no workers
        listed = list(client.nthreads()) if workers is None else list(workers)
    except Exception as e:
        raise ClusterError(f"cannot reach the scheduler: {type(e).__name__}: {e}") from None
    t0 = time.perf_counter()
    taken_at = dt.datetime.now()
    answers = _run(client, _on_worker_take, token, label, workers=listed)
    seconds = time.perf_counter() - t0
    rows, tasks, types, variables = [], [], [], []
    for address in sorted(set(listed) | set(answers)):
        answer = answers.get(address)
        if isinstance(answer, dict):
            rows.append(answer["worker"])
            tasks.append(answer["tasks"])
            types.append(answer["types"])
            variables.append(answer["variables"])
        else:
            rows.append({"worker": address, "status": _failure(answer)})
    return ClusterSnapshot(
        token=token,
        scheduler=str(client.scheduler.address),
        label=label,
        taken_at=taken_at,
        seconds=seconds,
        worker_table=pd.DataFrame(rows, columns=WORKER_COLUMNS),
        task_table=_concat(tasks, TASK_COLUMNS, "retained"),
        type_table=_concat(types, TYPE_COLUMNS, "size"),
        variable_table=_concat(variables, VARIABLE_COLUMNS, "retained"),
    )


def _run(client: Any, function: Any, *args: Any, workers: list[str] | None) -> dict[str, Any]:
    """``Client.run`` on these workers (None: all): each worker's answer, or its error."""
    try:
        answers: dict[str, Any] = client.run(function, *args, workers=workers, on_error="return")
    except Exception as e:  # the scheduler is gone, the client closed, …
        raise ClusterError(f"cannot reach the cluster: {type(e).__name__}: {e}") from None
    return answers


def _failure(answer: object) -> str:
    if answer is None:
        return "no answer (the worker left or timed out)"
    text = f"{type(answer).__name__}: {answer}"
    if "ModuleNotFoundError" in text and "jupyter_memsnap" in text:  # Dask sends it as text
        return MISSING_PACKAGE
    return f"failed: {text}"


def _concat(frames: list[pd.DataFrame], columns: list[str], by: str) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=columns)
    df = pd.concat(frames, ignore_index=True)[columns]
    return df.sort_values(by, ascending=False, ignore_index=True)


def fetch(cluster: ClusterSnapshot, worker: str, client: Any = None) -> Snapshot:
    """One worker's full snapshot, sent in the file format (every single-kernel view
    works on it: types, why, paths, the explorer)."""
    client = client if client is not None else default_client()
    if worker not in cluster.answered:
        known = ", ".join(cluster.answered) or "none"
        raise ClusterError(f"no snapshot of worker {worker!r} in this one (workers: {known})")
    answers = _run(client, _on_worker_file, cluster.token, workers=[worker])
    data = answers.get(worker)
    if not isinstance(data, bytes):
        raise ClusterError(f"worker {worker} did not send its snapshot: {_failure(data)}")
    with tempfile.TemporaryDirectory(prefix="jupyter_memsnap-") as tmp:
        path = os.path.join(tmp, "worker.memsnap")
        with open(path, "wb") as f:
            f.write(data)
        return Snapshot.load(path)


def release(tokens: list[str], client: Any = None) -> dict[str, int]:
    """Free the snapshots kept on workers under these tokens: bytes freed per worker."""
    client = client if client is not None else default_client()
    answers = _run(client, _on_worker_release, tokens, workers=None)
    return {w: n for w, n in answers.items() if isinstance(n, int)}


# ---------------------------------------------------------------- run on each worker
def _on_worker_take(token: str, label: str, dask_worker: Any) -> dict[str, Any]:
    from . import api
    from .capture.dask_roots import in_memory, task_name, worker_roots
    from .views.memory import unattributed

    roots = worker_roots(dask_worker)
    running = {
        ident: f"running {task_name(key)}" for ident, key in dask_worker.active_threads.items()
    }
    snap = api.take(label=label, roots=roots, thread_labels=running)
    del roots
    _KEPT[token] = snap
    address = str(dask_worker.address)
    retention = snap.retention
    by_root = dict(zip(retention.roots, retention.root_retained(), strict=True))
    _, items = in_memory(dask_worker)
    states = dask_worker.state.tasks
    names = {task_name(key): key for key, _ in items}
    del items
    tasks = pd.DataFrame(
        [
            {
                "worker": address,
                "key": root.name.removeprefix("task "),
                "type": snap.type_label(root.index),
                "retained": int(size),
                "dask_sizeof": _nbytes(states.get(names.get(root.name))),
            }
            for root, size in by_root.items()
            if root.kind == "task"
        ],
        columns=TASK_COLUMNS,
    )
    managed = int(dask_worker.state.nbytes)
    native = int(snap.native_bytes.sum())
    types = snap.types.assign(worker=address)[TYPE_COLUMNS]
    variables = _module_globals(snap, by_root, address)
    row = {
        "worker": address,
        "name": str(dask_worker.name),
        "status": OK,
        "objects": len(snap),
        "heap": snap.total_size,
        "native": native,
        "rss": snap.process.rss,
        "managed": managed,
        "unmanaged": snap.process.rss - managed,
        "unattributed": unattributed(snap),
        "kept": snap.nbytes,
        "seconds": round(snap.seconds, 3),
    }
    return {"worker": row, "tasks": tasks, "types": types, "variables": variables}


def _module_globals(snap: Snapshot, by_root: dict[Root, Any], address: str) -> pd.DataFrame:
    """The largest user-module globals: what each alone keeps (retained) and reaches (not
    through modules, classes or functions). Not the kernel's variables table: who shares
    with whom costs a walk per global, and a worker has many."""
    from .model.graph import reachable_sizes
    from .views.tables import shared_mask

    held = sorted(
        ((int(size), root) for root, size in by_root.items() if root.kind == "variable"),
        key=lambda item: -item[0],
    )[:TOP_GLOBALS]
    starts = np.array([root.index for _, root in held], dtype=np.int64)
    reach = reachable_sizes(snap.offsets, snap.targets, snap.size_column, starts, shared_mask(snap))
    return pd.DataFrame(
        {
            "worker": address,
            "name": [root.name for _, root in held],
            "type": [snap.type_label(root.index) for _, root in held],
            "retained": [size for size, _ in held],
            "reachable": np.asarray(reach, dtype=np.int64),
        },
        columns=VARIABLE_COLUMNS,
    )


def _nbytes(state: Any) -> int | None:
    nbytes = getattr(state, "nbytes", None)
    return int(nbytes) if isinstance(nbytes, int) else None


def _on_worker_file(token: str) -> bytes:
    snap = _KEPT.get(token)
    if snap is None:
        raise LookupError("this worker keeps no such snapshot (released, or restarted)")
    with tempfile.TemporaryDirectory(prefix="jupyter_memsnap-") as tmp:
        path = os.path.join(tmp, "worker.memsnap")
        snap.save(path)
        with open(path, "rb") as f:
            return f.read()


def _on_worker_release(tokens: list[str]) -> int:
    freed = 0
    for token in tokens:
        snap = _KEPT.pop(token, None)
        if snap is not None:
            freed += snap.nbytes
    return freed
