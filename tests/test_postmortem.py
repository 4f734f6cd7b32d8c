"""After the kernel dies, the post-mortem directory says what filled memory and which cell
was running: a real kernel killed mid-cell, then the command line reads the directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kernel_utils import KernelSession, write_python3_kernelspec

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]


def test_a_killed_kernel_leaves_a_readable_census(tmp_path: Path) -> None:
    save_dir = tmp_path / "postmortem"
    kernel = KernelSession(write_python3_kernelspec(tmp_path / "k"), tmp_path, tmp_path / "ip")
    try:
        for code in (
            "%load_ext jupyter_memsnap",
            f"%memsnap auto on --every-cell --save {save_dir}",
            "hoard = [bytearray(1_000_000) for _ in range(40)]",  # 40 MB the census will see
            "counter = 1",
        ):
            reply = kernel.execute(code)
            assert reply.status == "ok", (code, reply.errors)
        finished = reply.execution_count
        pid = int(kernel.execute("import os; print(os.getpid())").stdout.strip())
        kernel.kc.execute("import time\nwhile True: time.sleep(0.1)")  # never finishes
        deadline = time.time() + 30
        marker = save_dir / "running.json"
        while time.time() < deadline and json.loads(marker.read_text())["cell"] != finished + 2:
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 10
        while kernel.km.is_alive() and time.time() < deadline:
            time.sleep(0.1)
        assert not kernel.km.is_alive()
    finally:
        kernel.close()
    files = sorted(p.name for p in save_dir.iterdir())
    assert files == ["latest.memsnap", "running.json"], "one census file, bounded disk use"
    out = subprocess.run(
        [sys.executable, "-m", "jupyter_memsnap", "show", str(save_dir), "--by", "cell"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert f"The last cell started was In[{finished + 2}]" in out.stdout
    assert "did not finish: import time" in out.stdout
    cell_rows = [line for line in out.stdout.splitlines() if line.strip().startswith("In[")]
    top_cell, top_size = cell_rows[0].split()[0], cell_rows[0].split()[2:4]
    assert top_cell == f"In[{finished - 1}]", out.stdout
    assert top_size[1] == "MB" and float(top_size[0]) >= 40, out.stdout
    types = subprocess.run(
        [sys.executable, "-m", "jupyter_memsnap", "show", str(save_dir), "--top", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert types.returncode == 0, types.stderr
    assert "bytearray" in types.stdout.split("\n", 3)[3], types.stdout
