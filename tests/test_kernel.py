"""%memsnap in a real ipykernel, driven through jupyter_client as a notebook front end is."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator

import pytest
from kernel_utils import Execution, KernelSession, html_table, write_python3_kernelspec

from jupyter_memsnap.views.columns import header

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]

BIG_ELEMENTS = 6_000_000  # float64: 48 MB
ROWS = 100_000


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelSession]:
    """One kernel for the module, with the extension loaded and two big variables."""
    root = tmp_path_factory.mktemp("kernel")
    jupyter_path = write_python3_kernelspec(root / "jupyter")
    workdir = root / "cwd"
    workdir.mkdir()
    session = KernelSession(jupyter_path, workdir, root / "ipython")
    try:
        for code in (
            "%load_ext jupyter_memsnap",
            f"import numpy as np\nbig = np.ones({BIG_ELEMENTS})",
            "import pandas as pd\n"
            f"df = pd.DataFrame({{'x': np.arange({ROWS}), "
            f"'name': [f'n{{i}}' for i in range({ROWS})]}})",
        ):
            r = session.execute(code)
            assert r.status == "ok", (code, r.errors)
        yield session
    finally:
        session.close()


def _ok(r: Execution) -> Execution:
    assert r.status == "ok", r.errors
    assert not r.errors
    return r


def _value(kernel: KernelSession, expr: str) -> str:
    """The text/plain of an expression evaluated in the kernel."""
    r = _ok(kernel.execute(expr))
    results = r.of_type("execute_result")
    assert len(results) == 1, r.messages
    return str(results[0]["data"]["text/plain"])


def test_the_kernel_runs_this_interpreter(kernel: KernelSession) -> None:
    assert kernel.km.kernel_spec is not None
    assert kernel.km.kernel_spec.argv[0] == sys.executable
    their = _value(kernel, "import sys; sys.executable").strip("'\"")
    assert os.path.realpath(their) == os.path.realpath(sys.executable)


def test_take_displays_one_row_as_plain_text_and_html_naming_the_cell(
    kernel: KernelSession,
) -> None:
    listing = _ok(kernel.execute("%memsnap list"))
    before = len(html_table(listing.displays[0]["text/html"])) if listing.displays else 0
    r = _ok(kernel.execute("x = 1\n_snap = %memsnap take -l loaded -o"))
    assert r.of_type("execute_result") == []
    assert len(r.displays) == 1
    bundle = r.displays[0]
    assert "text/plain" in bundle and "text/html" in bundle
    rows = html_table(bundle["text/html"])
    assert len(rows) == 1
    row = rows[0]
    assert row["snapshot"] == str(before + 1)
    assert row["label"] == "loaded"
    # the cell is the execution count of the cell that ran the magic
    assert row["cell"] == f"In[{r.execution_count}]"
    # the objects count is the snapshot's own (checked against the Snapshot itself)
    n_objects = int(row["objects"].replace(",", ""))
    assert n_objects == int(_value(kernel, "len(_snap)"))
    assert _value(kernel, "_snap.label") == "'loaded'"
    # every value of the row is readable in text/plain too (a kernel's pandas shows all columns)
    text = bundle["text/plain"]
    for column, value in row.items():
        assert header(column)[0] in text
        if value:
            assert value in text, (column, value, text)


def test_take_cell_number_follows_the_execution_count(kernel: KernelSession) -> None:
    counts = []
    for _ in range(2):
        r = _ok(kernel.execute("%memsnap take"))
        # nothing is returned without -o: no execute_result, Out does not grow
        assert r.of_type("execute_result") == []
        (row,) = html_table(r.displays[0]["text/html"])
        assert row["cell"] == f"In[{r.execution_count}]"
        counts.append(r.execution_count)
    assert counts[1] == counts[0] + 1
    # a failing cell still uses up a number, and the next take names the new one
    assert kernel.execute("1 / 0").status == "error"
    r = _ok(kernel.execute("%memsnap take"))
    (row,) = html_table(r.displays[0]["text/html"])
    assert r.execution_count == counts[1] + 2
    assert row["cell"] == f"In[{r.execution_count}]"


def test_show_by_variable_names_the_notebook_variables(kernel: KernelSession) -> None:
    _ok(kernel.execute("%memsnap take -l vars"))
    r = _ok(kernel.execute("%memsnap show vars --by variable"))
    assert len(r.displays) == 1
    bundle = r.displays[0]
    said = r.stdout + bundle["text/plain"]
    assert "Snapshot" in said and "'vars'" in said
    assert "text/plain" in bundle and "text/html" in bundle
    rows = {row["name"]: row for row in html_table(bundle["text/html"])}
    assert rows["big"]["type"] == "numpy.ndarray"
    assert rows["df"]["type"] == "pandas.DataFrame"
    assert "big" in bundle["text/plain"] and "df" in bundle["text/plain"]
    # the numbers behind the table: big's reachable bytes are its buffer and header
    check = _value(
        kernel,
        "import sys\n"
        "_v = %memsnap show vars --by variable -o\n"
        "_r = _v.set_index('name')['reachable']\n"
        "(int(_r['big']) == sys.getsizeof(big), "
        "bool(abs(int(_r['df']) - int(df.memory_usage(deep=True).sum())) "
        "<= 0.02 * df.memory_usage(deep=True).sum()))",
    )
    assert check == "(True, True)"


def test_a_bad_command_is_a_usage_error_and_the_kernel_lives_on(kernel: KernelSession) -> None:
    listing = _ok(kernel.execute("%memsnap list")).displays[0]["text/html"]
    for bad in ("%memsnap show --by nonsense", "%memsnap frob", "%memsnap show 999"):
        r = kernel.execute(bad)
        assert r.status == "error", bad
        content = r.reply["content"]
        assert content["ename"] == "UsageError", content
        assert content["evalue"].strip() and "\n" not in content["evalue"].strip()
        # IPython shows a UsageError as one line on stderr, without a traceback
        stderr = "".join(c["text"] for c in r.of_type("stream") if c["name"] == "stderr")
        assert f"UsageError: {content['evalue']}" in stderr
        assert r.displays == []
    assert kernel.km.is_alive()
    # the kernel still executes, and the stored snapshots are unchanged
    assert _value(kernel, "6 * 7") == "42"
    assert _ok(kernel.execute("%memsnap list")).displays[0]["text/html"] == listing


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and smaps are Linux")
def test_freed_memory_shows_as_allocator_space_and_trim_returns_it(kernel: KernelSession) -> None:
    _ok(
        kernel.execute(
            "small = [(i, str(i)) for i in range(2_000_000)]\n"
            "medium = [bytes(2000) + str(i).encode() for i in range(100_000)]\n"
            "survivors = small[::200], medium[::50]  # a few left in every arena\n"
            "del small, medium"
        )
    )
    _ok(kernel.execute("%memsnap take"))
    shown = _ok(kernel.execute("rows = %memsnap show --by memory -o"))
    assert "%memsnap trim" in shown.stdout, "show points to trim"
    kept = _value(
        kernel, "int(rows.set_index('measure').loc['allocators: free but kept', 'bytes'])"
    )
    assert int(kept) > 250_000_000, kept
    out = _ok(kernel.execute("%memsnap trim")).stdout
    sizes = re.search(r"RSS ([\d.]+) (MB|GB) → ([\d.]+) (MB|GB)", out)
    assert sizes, out
    scale = {"MB": 1e6, "GB": 1e9}
    before = float(sizes.group(1)) * scale[sizes.group(2)]
    after = float(sizes.group(3)) * scale[sizes.group(4)]
    assert after < before - 100e6, out
