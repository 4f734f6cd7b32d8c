"""The tutorial notebooks run top to bottom in a real kernel; their last cells assert."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from kernel_utils import write_python3_kernelspec
from nbclient import NotebookClient

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(600)]
NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_its_checks_pass(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(write_python3_kernelspec(tmp_path / "jupyter")))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    last = nb.cells[-1]
    text = "".join(o.get("text", "") for o in last.outputs)
    assert "passed" in text or "fixed" in text, last.outputs
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
