"""Insights in a real IPython shell: each waste planted, found with the bytes an independent
truth gives (sys.getsizeof over the contents, the library's own figure), and its fix, run
as printed, frees that memory in the next snapshot."""

from __future__ import annotations

import gc
import sys
import weakref
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import run

from jupyter_memsnap.api import take
from jupyter_memsnap.capture.values import probe

TOLERANCE = 0.10


def insights(ip: Any, line: str = "") -> pd.DataFrame:
    df: pd.DataFrame = ip.run_line_magic("memsnap", f"insights {line} -o")
    assert list(df.columns) == ["kind", "bytes", "where", "evidence", "fix"]
    return df


def found(df: pd.DataFrame, kind: str, where: str) -> pd.Series:
    rows = df[(df["kind"] == kind) & (df["where"] == where)]
    assert len(rows) == 1, df[["kind", "where", "bytes"]]
    return rows.iloc[0]


def near(measured: int, truth: float) -> bool:
    return abs(measured - truth) <= TOLERANCE * truth


def heap() -> int:
    gc.collect()
    return take().total_size


def fix_frees(ip: Any, fix: str, saved: int) -> None:
    """Running the fix as printed lowers the heap by at least 90 % of what it promised."""
    before = heap()
    run(ip, fix)
    after = heap()
    assert before - after >= (1 - TOLERANCE) * saved, (fix, before - after, saved)


def test_a_small_view_that_keeps_a_big_array(ip: Any) -> None:
    run(ip, "import numpy as np\nbig = np.arange(4_000_000)\nhead = big[:10]\ndel big")
    base = weakref.ref(ip.user_ns["head"].base)
    truth = base().nbytes - ip.user_ns["head"].nbytes  # type: ignore[union-attr]
    row = found(insights(ip), "small view keeps a big array", "head")
    assert near(row["bytes"], truth)
    assert row["fix"] == "head = head.copy()"
    fix_frees(ip, row["fix"], row["bytes"])
    assert base() is None


def test_a_view_whose_array_is_also_a_variable_is_no_waste(ip: Any) -> None:
    run(ip, "import numpy as np\nbig = np.arange(4_000_000)\nhead = big[:10]")
    assert "small view keeps a big array" not in set(insights(ip)["kind"])


def test_duplicate_strings_in_a_list(ip: Any) -> None:
    run(ip, "names = [f'city-{i % 50}' for i in range(300_000)]")
    names = ip.user_ns["names"]
    one = {s: sys.getsizeof(s) for s in names}
    truth = sum(map(sys.getsizeof, names)) - sum(one.values())
    del names
    row = found(insights(ip), "duplicate strings", "names")
    assert near(row["bytes"], truth)
    assert "sys.intern" in row["fix"]
    fix_frees(ip, row["fix"], row["bytes"])


def test_duplicate_strings_in_records(ip: Any) -> None:
    run(ip, "rows = [{'city': f'c{i % 7}', 'n': i} for i in range(200_000)]")
    rows = ip.user_ns["rows"]
    cities = [r["city"] for r in rows]
    truth = sum(map(sys.getsizeof, cities)) - sum({c: sys.getsizeof(c) for c in cities}.values())
    del rows, cities
    row = found(insights(ip), "duplicate strings", "rows")
    assert near(row["bytes"], truth)
    fix_frees(ip, row["fix"], row["bytes"])


def test_a_low_cardinality_string_column_becomes_a_category(ip: Any) -> None:
    run(
        ip,
        "import numpy as np, pandas as pd\n"
        "df = pd.DataFrame({'city': [f'town-{i % 30}' for i in range(400_000)],"
        " 'x': np.arange(400_000) * 1e9})",
    )
    city = ip.user_ns["df"]["city"]
    truth = city.memory_usage(index=False, deep=True) - city.astype("category").memory_usage(
        index=False, deep=True
    )
    del city
    row = found(insights(ip), "duplicate strings", "df['city']")
    assert near(row["bytes"], truth)
    assert "category" in row["fix"]
    fix_frees(ip, row["fix"], row["bytes"])
    assert str(ip.user_ns["df"]["city"].dtype) == "category"


def test_distinct_strings_as_python_objects_become_arrow_strings(ip: Any) -> None:
    run(
        ip,
        "import numpy as np, pandas as pd\n"
        "ids = np.array([f'user-{i:09d}' for i in range(300_000)], dtype=object)\n"
        "df = pd.DataFrame({'uid': pd.Series(ids, dtype=object), 'x': np.arange(300_000) * 1e9})\n"
        "del ids",
    )
    uid = ip.user_ns["df"]["uid"]
    assert uid.dtype == object
    arrow = uid.astype("string[pyarrow]")
    truth = uid.memory_usage(index=False, deep=True) - arrow.memory_usage(index=False, deep=True)
    del uid, arrow
    row = found(insights(ip), "column dtype", "df['uid']")
    assert near(row["bytes"], truth)
    fix_frees(ip, row["fix"], row["bytes"])


@pytest.mark.parametrize(
    ("values", "dtype"),
    [("np.arange(1_000_000) % 100", "int8"), ("np.arange(1_000_000) / 4", "float32")],
)
def test_numeric_columns_that_fit_a_smaller_dtype(ip: Any, values: str, dtype: str) -> None:
    run(
        ip,
        "import numpy as np, pandas as pd\n"
        f"df = pd.DataFrame({{'v': {values}, 'other': np.arange(1_000_000) * 1e9 + 0.1,"
        " 'n': np.arange(1_000_000) * 10**12})",
    )
    v = ip.user_ns["df"]["v"]
    truth = v.memory_usage(index=False) - v.astype(dtype).memory_usage(index=False)
    del v
    row = found(insights(ip), "column dtype", "df['v']")
    assert near(row["bytes"], truth)
    assert dtype in row["fix"]
    fix_frees(ip, row["fix"], row["bytes"])
    assert str(ip.user_ns["df"]["v"].dtype) == dtype
    assert "df['other']" not in set(insights(ip)["where"])  # not float32-exact, not shrunk


def test_a_mostly_zero_array_becomes_sparse(ip: Any) -> None:
    import scipy.sparse

    run(ip, "import numpy as np\nz = np.zeros((1500, 1500))\nz[::40, ::40] = 1.0")
    csr = scipy.sparse.csr_array(ip.user_ns["z"])
    truth = ip.user_ns["z"].nbytes - (csr.data.nbytes + csr.indices.nbytes + csr.indptr.nbytes)
    row = found(insights(ip), "mostly zeros", "z")
    assert near(row["bytes"], truth)
    fix_frees(ip, row["fix"], row["bytes"])
    assert scipy.sparse.issparse(ip.user_ns["z"])


def test_figures_pyplot_still_holds(ip: Any) -> None:
    run(
        ip,
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "fig = plt.figure(figsize=(10, 8), dpi=100)\nfig.canvas.draw()\n"
        "import weakref\nfigure_ref = weakref.ref(fig)\ndel fig",
    )
    canvas_buffer = 1000 * 800 * 4
    row = found(insights(ip), "figures pyplot holds", "pyplot figure 1")
    assert canvas_buffer <= row["bytes"] <= 2 * canvas_buffer
    assert row["fix"] == "plt.close(1)"
    fix_frees(ip, row["fix"], row["bytes"])
    assert ip.user_ns["figure_ref"]() is None


def test_memory_only_ipython_holds(ip: Any) -> None:
    run(ip, "import numpy as np")
    run(ip, "np.ones(2_000_000)")  # the result lives on in Out[2] and _
    df = insights(ip)
    (row,) = [r for _, r in df.iterrows() if r["kind"] == "held only by IPython"]
    assert "Out[2]" in row["where"]
    assert near(row["bytes"], np.ones(2_000_000).nbytes)
    fix_frees(ip, row["fix"], row["bytes"])


def test_an_lru_cache_holding_results(ip: Any) -> None:
    run(
        ip,
        "import functools\n@functools.lru_cache(maxsize=None)\n"
        "def load(i):\n    return bytes(100_000) + bytes([i])\n"
        "for i in range(40):\n    load(i)",
    )
    truth = sum(sys.getsizeof(bytes(100_001)) for _ in range(40))
    row = found(insights(ip), "cache", "load")
    assert near(row["bytes"], truth)
    assert row["fix"] == "load.cache_clear()"
    fix_frees(ip, row["fix"], row["bytes"])


def test_leak_suspects_over_three_snapshots(ip: Any) -> None:
    run(ip, "leak = []")
    ip.run_line_magic("memsnap", "take")
    for _ in range(3):
        run(ip, "leak.extend(bytearray(1000) for _ in range(1500))")
        ip.run_line_magic("memsnap", "take")
    truth = 3 * 1500 * sys.getsizeof(bytearray(1000))
    df = insights(ip, "-1")
    row = found(df, "leak suspect", "type bytearray")
    assert near(row["bytes"], truth)
    assert row["fix"] == "%memsnap why --type bytearray"
    assert near(found(df, "leak suspect", "leak")["bytes"], truth)
    assert "leak suspect" not in set(insights(ip, "2")["kind"])  # two snapshots are no trend


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_allocator_memory_freed_but_not_returned(ip: Any) -> None:
    import psutil

    # every 50th block survives, so the heap cannot shrink from its top: glibc keeps the rest
    run(ip, "junk = [bytearray(2000) for _ in range(100_000)]\nkeep = junk[::50]\ndel junk")
    row = found(insights(ip), "allocator keeps freed memory", "the process")
    assert row["bytes"] >= 0.9 * 98_000 * sys.getsizeof(bytearray(2000))
    assert row["fix"] == "%memsnap trim"
    before = psutil.Process().memory_info().rss
    run(ip, row["fix"])
    # the OS's figure: whole free pages go back, free space within pages stays (an upper bound)
    assert before - psutil.Process().memory_info().rss >= 0.5 * row["bytes"]


def test_tracing_left_on(ip: Any) -> None:
    import tracemalloc

    ip.run_line_magic("memsnap", "trace on --frames 5")
    try:
        run(ip, "keep = [bytearray(100) for _ in range(60_000)]")
        low = tracemalloc.get_tracemalloc_memory()  # read once in between, by the snapshot
        row = found(insights(ip), "tracing left on", "tracemalloc")
        high = tracemalloc.get_tracemalloc_memory()  # its tables grow by doubling
        assert (1 - TOLERANCE) * low <= row["bytes"] <= (1 + TOLERANCE) * high
        assert row["fix"] == "%memsnap trace off"
        run(ip, row["fix"])
        assert not tracemalloc.is_tracing()
        assert "tracing left on" not in set(insights(ip)["kind"])
    finally:
        tracemalloc.stop()


def test_a_stored_snapshot_reads_values_only_while_the_same_objects_live(ip: Any) -> None:
    run(ip, "import numpy as np\nhead = np.arange(4_000_000)[:10]")
    ip.run_line_magic("memsnap", "take")
    assert "head" in set(insights(ip, "1")["where"])
    run(ip, "head = np.arange(4_000_000)[:10]")  # the same name, another object
    assert "head" not in set(insights(ip, "1")["where"])
    assert "head" in set(insights(ip)["where"])


def test_insights_keep_no_reference_and_change_nothing(ip: Any) -> None:
    run(
        ip,
        "import numpy as np\nhead = np.arange(4_000_000)[:10]\n"
        "names = [str(i % 9) * 200 for i in range(50_000)]",
    )
    refs = [weakref.ref(ip.user_ns["head"].base)]
    counts = (sys.getrefcount(ip.user_ns["names"]), sys.getrefcount(ip.user_ns["head"]))
    df = insights(ip)
    assert {"head", "names"} <= set(df["where"])
    assert counts == (sys.getrefcount(ip.user_ns["names"]), sys.getrefcount(ip.user_ns["head"]))
    run(ip, "del head")
    gc.collect()
    assert refs[0]() is None


def test_the_probe_is_bounded_by_its_budget() -> None:
    big = np.arange(4_000_000)[:10]
    assert probe([("big", big)], budget=0) == []
    assert [f.kind for f in probe([("big", big)], budget=1)] == ["small view keeps a big array"]


def test_values_that_raise_are_skipped() -> None:
    class Hostile(np.ndarray):
        @property
        def base(self) -> object:
            raise RuntimeError("no")

    assert probe([("h", np.arange(10).view(Hostile))]) == []


def test_a_clean_kernel_has_no_insights(ip: Any) -> None:
    run(ip, "x = list(range(1000))")
    lines = ip.run_line_magic("memsnap", "insights -o")
    assert not len(lines[~lines["kind"].isin(["allocator keeps freed memory"])])


def test_the_explorer_has_an_insights_tab(ip: Any) -> None:
    from jupyter_memsnap.ui.explorer import INSIGHTS_TAB, Explorer

    run(ip, "import numpy as np\nhead = np.arange(4_000_000)[:10]")
    ip.run_line_magic("memsnap", "take")
    store = ip.magics_manager.registry["MemsnapMagics"].store
    explorer = Explorer(store)
    assert explorer.insights_html.value == ""  # computed when the tab is opened
    explorer.tabs.selected_index = INSIGHTS_TAB
    shown = explorer.insights_html.value
    assert "small view keeps a big array" in shown and "head = head.copy()" in shown
    assert found(explorer.insights(), "small view keeps a big array", "head")["bytes"] > 0


def test_leak_suspect_over_auto_mode_censuses(ip: Any) -> None:
    run(ip, "leak = []")
    ip.run_line_magic("memsnap", "auto on --every-cell")
    for _ in range(3):
        run(ip, "leak.extend(bytearray(1000) for _ in range(1500))")
    truth = 3 * 1500 * sys.getsizeof(bytearray(1000))
    df = insights(ip)
    (row,) = [r for _, r in df.iterrows() if r["where"].startswith("cells ")]
    assert row["kind"] == "leak suspect"
    assert near(row["bytes"], truth)
    ip.run_line_magic("memsnap", "auto off")
