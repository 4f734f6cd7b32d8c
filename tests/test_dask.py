"""Snapshots of every worker of a real ``distributed.LocalCluster`` (2 worker processes):
task results on the right worker and key, a module-global leak on one worker, workers that
die, the snapshots kept on workers fetched and freed."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import dask
import numpy as np
import pytest
from conftest import run
from distributed import Client, LocalCluster, wait
from IPython.core.error import UsageError

from jupyter_memsnap import dask as cluster_api

pytestmark = [pytest.mark.timeout(300)]

LEAK = 100_000_000  # large against what a worker frees on its own between takes (~8 MB seen)


def spawnable_main() -> None:
    """An IPython shell puts its user module in ``sys.modules['__main__']``, without the
    ``__spec__`` that multiprocessing's spawn reads when Dask starts or restarts a worker."""
    main = sys.modules["__main__"]
    if not hasattr(main, "__spec__"):
        main.__spec__ = None


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    spawnable_main()
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    with Client(cluster) as c:
        yield c
    cluster.close()


def workers(client: Client) -> list[str]:
    return sorted(client.nthreads())


def test_a_persisted_array_shows_on_its_worker_and_key(client: Client) -> None:
    future = client.submit(np.ones, 6_250_000, pure=False)  # 50 MB of float64
    wait(future)
    (holder,) = client.who_has(future)[future.key]
    snap = cluster_api.take(client, label="one")
    assert set(snap.answered) == set(workers(client))
    rows = snap.tasks[snap.tasks["key"] == str(future.key)]
    assert len(rows) == 1, snap.tasks
    row = rows.iloc[0]
    assert row["worker"] == holder
    assert row["type"] == "numpy.ndarray"
    assert abs(row["retained"] - 50_000_000) <= 0.05 * 50_000_000
    assert abs(row["dask_sizeof"] - 50_000_000) <= 0.05 * 50_000_000  # Dask's own figure
    table = snap.workers.set_index("worker")
    assert (table["status"] == "ok").all()
    assert table.loc[holder, "heap"] >= 50_000_000
    assert table.loc[holder, "managed"] >= 50_000_000
    assert (table["kept"] > 0).all()
    assert set(snap.types["worker"]) == set(workers(client))
    del future
    cluster_api.release([snap.token], client)


def test_a_module_global_leak_on_one_worker(ip: Any, client: Client) -> None:
    leaky, other = workers(client)
    client.run(
        exec,
        "import sys, types\nm = types.ModuleType('leaky')\nm.cache = []\nsys.modules['leaky'] = m",
        {},
        workers=[leaky],
    )
    ip.user_ns["client"] = client
    ip.run_line_magic("memsnap", "take --dask client -l before")
    client.run(
        exec,
        "import sys\nsys.modules['leaky'].cache.extend(bytearray(10_000) for _ in range(10_000))",
        {},
        workers=[leaky],
    )
    ip.run_line_magic("memsnap", "take --dask -l after")  # the default client
    diff = ip.run_line_magic("memsnap", "diff before after -o")
    grew = diff.workers.set_index("worker")["heap_diff"]
    assert grew[leaky] >= 0.9 * LEAK
    assert abs(grew[other]) < 0.1 * LEAK
    store = ip.magics_manager.registry["MemsnapMagics"].store
    after = store.get_cluster("after")
    variables = after.variables.set_index(["worker", "name"])
    assert variables.loc[(leaky, "leaky.cache"), "retained"] >= 0.9 * LEAK

    ip.run_line_magic("memsnap", f"show after --worker {leaky}")
    fetched = len(store)
    snap = store.get(fetched)
    assert leaky in snap.label
    rows = ip.run_line_magic("memsnap", f"why --type bytearray --top 1 -s {fetched}")
    assert rows is None  # displayed
    from jupyter_memsnap.views.paths import rows_of_type, why_frame

    (row,) = rows_of_type(snap, "bytearray", 1)
    holders = set(why_frame(snap, [row])["holder"])
    assert "leaky.cache" in holders
    run(ip, "%memsnap list")
    with pytest.raises(UsageError, match="cluster snapshot"):
        ip.run_line_magic("memsnap", "vars after")
    with pytest.raises(UsageError, match="two cluster snapshots"):
        ip.run_line_magic("memsnap", f"diff after {fetched}")
    with pytest.raises(UsageError, match="no snapshot of worker"):
        ip.run_line_magic("memsnap", "show after --worker tcp://nowhere:1")
    with pytest.raises(UsageError, match="cannot evaluate"):
        ip.run_line_magic("memsnap", "take --dask no_such_client")

    kept = int(after.workers["kept"].sum())
    ip.run_line_magic("memsnap", "clear")
    freed = cluster_api.release([after.token], client)
    assert sum(freed.values()) == 0  # clear freed them already
    assert kept > 0
    client.run(exec, "import sys\ndel sys.modules['leaky']", {}, workers=[leaky])


def test_a_worker_that_cannot_answer_gets_a_row(client: Client) -> None:
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        snap = cluster_api.take(client, workers=[*workers(client), "tcp://127.0.0.1:9"])
    table = snap.workers.set_index("worker")
    assert table.loc["tcp://127.0.0.1:9", "status"].startswith("failed: OSError")
    assert (table.drop("tcp://127.0.0.1:9")["status"] == "ok").all()
    cluster_api.release([snap.token], client)


def test_a_worker_without_the_package_gets_a_clear_row(client: Client) -> None:
    lacking = workers(client)[0]
    hide = "import sys\nsys.modules['_saved'] = sys.modules.get('jupyter_memsnap')\n"
    client.run(exec, hide + "sys.modules['jupyter_memsnap'] = None", {}, workers=[lacking])
    try:
        snap = cluster_api.take(client)
    finally:
        restore = "import sys\nsys.modules['jupyter_memsnap'] = sys.modules.pop('_saved')"
        client.run(exec, restore, {}, workers=[lacking])
    table = snap.workers.set_index("worker")
    assert table.loc[lacking, "status"] == cluster_api.MISSING_PACKAGE
    assert (table.drop(lacking)["status"] == "ok").all()
    cluster_api.release([snap.token], client)


def test_a_closed_client_is_one_clear_error(client: Client) -> None:
    other = Client(client.scheduler.address, set_as_default=False)
    other.close()
    with pytest.raises(cluster_api.ClusterError, match="cannot reach"):
        cluster_api.take(other)


def test_a_worker_killed_between_snapshots_is_reported(client: Client) -> None:
    spawnable_main()  # the nanny starts a new worker
    before = cluster_api.take(client)
    victim = before.answered[0]
    os.kill(client.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while victim in workers(client) and time.monotonic() < deadline:
        time.sleep(0.2)
    after = cluster_api.take(client)
    changes = after.diff(before).workers.set_index("worker")
    assert changes.loc[victim, "status"] == "gone"
    assert victim not in after.answered
    cluster_api.release([before.token, after.token], client)


def hold_and_wait(seconds: float) -> float:
    kept = np.ones(2_500_000)  # 20 MB, only this running task's local holds it
    time.sleep(seconds)
    return float(kept[0])


def test_a_running_task_s_locals_are_named_by_its_key(client: Client) -> None:
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    future = client.submit(hold_and_wait, 20, pure=False)
    deadline = time.monotonic() + 30
    while not (running := [w for w, keys in client.processing().items() if future.key in keys]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1)  # the task is in its sleep
    snap = cluster_api.take(client)
    (worker,) = running
    full = cluster_api.fetch(snap, worker, client)
    name = f"running task {future.key} › hold_and_wait() › kept"
    (root,) = [r for r in full.roots if r.name == name]
    assert full.size_of(root.index) >= 20_000_000
    future.cancel()
    cluster_api.release([snap.token], client)
