"""Notebook scenarios in a real ipykernel: holders, release, cells of birth, sites."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel_utils import Execution, KernelSession, write_python3_kernelspec

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(240)]


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[KernelSession]:
    session = KernelSession(
        write_python3_kernelspec(tmp_path / "jupyter"), tmp_path, tmp_path / "ipython"
    )
    try:
        ok(session.execute("%load_ext jupyter_memsnap\nimport numpy as np, pandas as pd"))
        yield session
    finally:
        session.close()


def ok(r: Execution) -> Execution:
    assert r.status == "ok", r.errors
    return r


def text(r: Execution) -> str:
    return r.stdout + "\n".join(d.get("text/plain", "") for d in r.displays)


def test_out_holds_a_deleted_dataframe_until_release(kernel: KernelSession) -> None:
    ok(kernel.execute("df = pd.DataFrame({'x': np.ones(3_000_000)})"))  # 24 MB
    shown = ok(kernel.execute("df"))
    n = shown.execution_count
    ok(kernel.execute("block = df._mgr.blocks[0].values\ndel df"))
    why = text(ok(kernel.execute("%memsnap why block")))
    assert f"Out[{n}]['x'] → ndarray" in why, why  # the output's column, named
    assert "%reset -f out" in why
    ok(kernel.execute("del block"))
    holders = text(ok(kernel.execute("%memsnap take\n%memsnap show --by holder")))
    line = next(x for x in holders.splitlines() if f"Out[{n}]" in x)
    assert re.search(r"2[45]\.\d MB", line), line
    released = text(ok(kernel.execute("%memsnap release")))
    match = re.search(r"([\d.]+) MB of objects freed", released)
    assert match, released
    freed = float(match.group(1))
    assert freed >= 24, released
    again = text(ok(kernel.execute("%memsnap take\n%memsnap show --by holder")))
    assert f"Out[{n}]" not in again


def test_the_last_traceback_keeps_a_local_alive(kernel: KernelSession) -> None:
    ok(kernel.execute("def load():\n    raw = np.ones(2_000_000)\n    raise KeyError('col')"))
    failed = kernel.execute("load()")
    assert failed.status == "error"
    why = text(ok(kernel.execute("%memsnap why --type ndarray --top 1")))
    assert "frame → ndarray (16.0 MB)" in why, why
    assert "sys.last_traceback" in why or "sys.last_value" in why
    assert "%memsnap release" in why
    ok(kernel.execute("%memsnap release"))
    after = text(ok(kernel.execute("%memsnap why --type ndarray --top 1")))
    assert "16.0 MB" not in after


def test_cells_of_birth_and_identical_cells_in_ipykernel(kernel: KernelSession) -> None:
    ok(kernel.execute("grow = []"))
    ok(kernel.execute("%memsnap auto on --every-cell"))
    ok(kernel.execute("%memsnap trace on --frames 3"))
    cells = [ok(kernel.execute("grow.extend(str(i) * 2 for i in range(10_000))")).execution_count]
    cells.append(
        ok(kernel.execute("grow.extend(str(i) * 2 for i in range(10_000))")).execution_count
    )
    ok(kernel.execute("snap = %memsnap take -o"))
    by_cell = text(ok(kernel.execute("print(snap.cells.to_string(index=False))")))
    for cell in cells:
        row = next(x for x in by_cell.splitlines() if x.strip().startswith(f"In[{cell}]"))
        assert int(row.split()[1]) >= 10_000, row
    sites = text(ok(kernel.execute("print(snap.sites.head(5).to_string(index=False))")))
    # ipykernel names a cell by its text: both runs share one code name, the label says so.
    expected = f"In[{cells[1]}] line 1 (same code ran as In[{cells[0]}])"
    assert expected in sites, sites
    ok(kernel.execute("%memsnap trace off\n%memsnap auto off"))
