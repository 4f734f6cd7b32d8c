"""Where RSS is: native memory the real libraries own, counted on the objects that own it,
and the process-level rows (mapped files, allocators' free space, stacks) that explain the
rest, each against a figure computed independently (the library's own, the OS's, RSS)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pytest
from conftest import run, subprocess_env

import jupyter_memsnap
from jupyter_memsnap.model.snapshot import Snapshot
from jupyter_memsnap.views.history import history_table

LINUX = sys.platform.startswith("linux")


def _take(ns: dict[str, Any]) -> Snapshot:
    """A snapshot with ns's names as variables, as a notebook's namespace holds them (what a
    test function holds in its own locals would share each object with the variable)."""
    return jupyter_memsnap.take(roots=[(n, "variable", o, (ns,)) for n, o in ns.items()])


def _retained(snap: Snapshot, name: str) -> int:
    return int(snap.variables.set_index("name").loc[name, "retained"])


def _native(snap: Snapshot, library: str) -> int:
    memory = snap.memory.set_index("measure")["bytes"]
    return int(memory.get(f"native: {library}", 0))


def _close(ours: int, truth: int, tolerance: float = 0.10) -> None:
    assert abs(ours - truth) <= tolerance * truth, f"ours {ours:,} vs truth {truth:,}"


def _owned_then_freed(
    ns: dict[str, Any], library: str, truth: int, tolerance: float = 0.10
) -> Snapshot:
    """The first variable retains ``truth`` (the library's own figure), and deleting every
    variable lowers the native bytes counted for ``library`` by that much."""
    snap = _take(ns)
    _close(_retained(snap, next(iter(ns))), truth, tolerance)
    ns.clear()
    gc.collect()
    _close(_native(snap, library) - _native(_take(ns), library), truth, tolerance)
    return snap


def test_a_polars_frame_is_retained_by_its_variable_and_freed_by_del() -> None:
    pl = pytest.importorskip("polars")
    rng = np.random.default_rng(0)
    ns = {"frame": pl.DataFrame({"a": np.arange(2_000_000), "b": rng.random(2_000_000)})}
    _owned_then_freed(ns, "polars", int(ns["frame"].estimated_size()))


def test_a_polars_frame_over_a_numpy_array_is_not_counted_twice() -> None:
    pl = pytest.importorskip("polars")
    ns = {"array": np.arange(2_000_000, dtype=np.float64)}
    ns["frame"] = pl.from_numpy(ns["array"], schema=["a"])
    exported = ns["frame"].to_arrow()
    assert exported.column(0).chunks[0].buffers()[1].address == ns["array"].ctypes.data
    del exported
    snap = _take(ns)
    counted = int(snap.variables["retained"].sum()) + _native(snap, "polars")
    _close(counted, ns["array"].nbytes, 0.01)


def test_a_polars_lazy_frame_retains_the_frames_its_plan_holds(tmp_path: Path) -> None:
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"a": np.arange(2_000_000), "b": np.arange(2_000_000) * 0.5})
    truth = int(frame.estimated_size())
    ns = {"lazy": frame.lazy().filter(pl.col("a") > 10).with_columns(c=pl.col("b") * 2)}
    del frame
    _owned_then_freed(ns, "polars", truth)
    frame = pl.DataFrame({"a": np.arange(2_000_000)})
    ns = {"frame": frame, "lazy": frame.lazy().join(frame.lazy(), on="a")}
    del frame
    snap = _take(ns)
    _close(_native(snap, "polars"), int(ns["frame"].estimated_size()), 0.01)

    scanned = tmp_path / "small.parquet"
    pl.DataFrame({"a": [1, 2, 3]}).write_parquet(scanned)
    ns = {"lazy": ns["lazy"].join(pl.scan_parquet(scanned), on="a")}
    gc.collect()
    assert _native(_take(ns), "polars") == 0, "a plan that scans a file is left alone"


def test_a_polars_string_column_is_counted_as_arrow_exports_it() -> None:
    pl = pytest.importorskip("polars")
    ns = {"frame": pl.DataFrame({"s": [f"row-{i}" for i in range(500_000)]})}
    exported = ns["frame"].to_arrow(compat_level=pl.CompatLevel.newest())
    truth = sum(b.size for c in exported.columns for ch in c.chunks for b in ch.buffers() if b)
    del exported
    snap = _take(ns)
    assert _retained(snap, "frame") >= truth
    assert _retained(snap, "frame") > ns["frame"].estimated_size()  # polars undercounts views


def test_a_pillow_image_owns_its_pixels() -> None:
    image_module = pytest.importorskip("PIL.Image")
    ns = {"gray": image_module.new("L", (3000, 3000), 10)}
    _owned_then_freed(ns, "Pillow", 3000 * 3000, 0.01)
    ns = {"image": image_module.new("RGB", (3000, 3000), (10, 20, 30))}
    _owned_then_freed(ns, "Pillow", 3000 * 3000 * 4, 0.01)  # RGB is stored as 4 bytes/pixel


def _drawn_figure() -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 8), dpi=100)
    FigureCanvasAgg(figure)
    figure.add_subplot().plot(np.arange(100))
    figure.canvas.draw()
    return figure


def test_a_drawn_figure_owns_its_agg_canvas() -> None:
    ns = {"figure": _drawn_figure()}
    truth = memoryview(ns["figure"].canvas.buffer_rgba()).nbytes  # the library's own figure
    assert truth == 1000 * 800 * 4
    snap = _take(ns)
    assert _retained(snap, "figure") >= truth
    ns.clear()
    gc.collect()
    _close(_native(snap, "matplotlib") - _native(_take(ns), "matplotlib"), truth)


def test_a_random_forest_is_mostly_native() -> None:
    ensemble = pytest.importorskip("sklearn.ensemble")
    rng = np.random.default_rng(0)
    x, y = rng.random((5_000, 10)), rng.integers(0, 3, 5_000)
    ns = {"forest": ensemble.RandomForestClassifier(n_estimators=30, random_state=0).fit(x, y)}
    nodes = sum(
        t.tree_.children_left.base.nbytes + t.tree_.value.nbytes for t in ns["forest"].estimators_
    )
    snap = _take(ns)
    assert _retained(snap, "forest") >= nodes
    _close(_native(snap, "scikit-learn"), nodes)
    ns.clear()
    gc.collect()
    _close(_native(snap, "scikit-learn") - _native(_take(ns), "scikit-learn"), nodes)


def test_torch_tensors_count_their_storage_once() -> None:
    torch = pytest.importorskip("torch")
    ns = {"tensor": torch.ones(1_000_000, dtype=torch.float64)}
    ns["view"] = ns["tensor"][10:]
    snap = _owned_then_freed(ns, "torch", ns["tensor"].untyped_storage().nbytes())
    assert _native(snap, "torch") == 8_000_000


def _mapped_files() -> int:
    maps = psutil.Process().memory_maps()
    return sum(int(mapping.rss) for mapping in maps if mapping.path.startswith("/"))


def test_the_rows_add_up_to_rss_and_each_is_true() -> None:
    files_before = _mapped_files() if LINUX else 0
    snap = jupyter_memsnap.take()
    files_after = _mapped_files() if LINUX else 0
    m = snap.memory.set_index("measure")
    assert int(m[m["level"] == 1]["bytes"].sum()) == m.loc["RSS", "bytes"]
    named = int(m[(m["level"] == 1) & (m.index != "unattributed")]["bytes"].sum())
    assert named <= 1.01 * m.loc["RSS", "bytes"], "the named rows never exceed RSS"
    if not LINUX:
        return
    files = int(m.loc["code and data of libraries", "bytes"])
    assert 0.99 * files_before <= files <= 1.01 * files_after, "pages of files only come in"
    assert m.loc["unattributed", "bytes"] < 0.25 * m.loc["RSS", "bytes"]


_ALLOCATORS = """
import gc, json, sys
import jupyter_memsnap
from jupyter_memsnap.model import allocator
def free():
    p = jupyter_memsnap.take(roots=[]).process
    return p.pymalloc_free, p.malloc_free, p.rss
start = free()
small = [(i, str(i)) for i in range(2_000_000)]  # pymalloc blocks
medium = [bytes(2000) + str(i).encode() for i in range(100_000)]  # malloc's arenas
survivors = small[::200], medium[::50]  # a few in every arena: nothing can be unmapped
del small, medium
gc.collect()
freed = free()
allocator.malloc_trim()
trimmed = free()
print(json.dumps({"start": start, "freed": freed, "trimmed": trimmed}))
"""


@pytest.mark.skipif(not LINUX, reason="glibc and smaps are Linux")
def test_allocator_free_space_shows_and_trim_returns_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _ALLOCATORS],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
        check=True,
    )
    r = json.loads(done.stdout.splitlines()[-1])
    (py0, c0, _), (py1, c1, rss1), (_, c2, rss2) = r["start"], r["freed"], r["trimmed"]
    assert py1 - py0 > 100_000_000, "2 M small tuples and strings freed: pymalloc keeps them"
    assert c1 - c0 > 150_000_000, "100 k 2 KB bytes freed with survivors among them"
    assert c2 < c1 and rss2 < rss1 - 100_000_000, "malloc_trim gives it back"


@pytest.mark.skipif(not LINUX, reason="smaps is Linux")
def test_thread_stacks_are_a_row() -> None:
    main_stack = sum(
        int(m.rss) for m in psutil.Process().memory_maps(grouped=False) if m.path == "[stack]"
    )
    stacks = jupyter_memsnap.take(roots=[]).process.stacks
    assert stacks is not None and stacks >= main_stack > 0


def test_this_tools_own_snapshots_are_named() -> None:
    kept = [jupyter_memsnap.take(roots=[]) for _ in range(2)]
    snap = jupyter_memsnap.take(roots=[])
    own = int(snap.memory.set_index("measure").loc["jupyter_memsnap", "bytes"])
    assert own >= sum(s.memory_nbytes for s in kept) > 0
    del kept


@pytest.mark.skipif(not LINUX, reason="VmHWM is Linux")
def test_auto_mode_records_each_cells_peak_without_its_own_census(ip: Any) -> None:
    rows = ip.magics_manager.registry["MemsnapMagics"].tracker.rows
    run(ip, "import numpy, psutil\nfrom jupyter_memsnap.model.allocator import malloc_trim")
    ip.run_line_magic("memsnap", "auto on")
    # memory the allocator keeps free and resident would not raise RSS: give it back first
    start = "start = psutil.Process().memory_info().rss\n"
    run(ip, "malloc_trim()\n" + start + "temporary = numpy.ones(10_000_000); del temporary")
    assert rows[-1].peak - ip.user_ns["start"] >= 79_000_000, "80 MB came and went"
    run(ip, start)
    assert rows[-1].peak - ip.user_ns["start"] < 10_000_000, "the census is not in the peak"
    tracker = ip.magics_manager.registry["MemsnapMagics"].tracker
    history = history_table([], tracker.rows)
    assert history["peak"].iloc[-2] == rows[-2].peak, "%memsnap list has each cell's peak"


def test_trim_reports_rss_before_and_after(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("memsnap", "trim")
    out = capsys.readouterr().out
    assert "RSS" in out and "→" in out


def test_show_by_memory(ip: Any) -> None:
    ip.run_line_magic("memsnap", "take")
    frame = ip.run_line_magic("memsnap", "show --by memory -o")
    assert isinstance(frame, pd.DataFrame) and "unattributed" in set(frame["measure"])
