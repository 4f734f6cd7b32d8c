"""Matplotlib figures of the views: built from real snapshots and synthetic tables."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.text import Text

import jupyter_memsnap
from jupyter_memsnap.views.history import history_table
from jupyter_memsnap.views.plots import (
    GROWTH_COLOR,
    MAX_TICK_LABELS,
    SHRINK_COLOR,
    TIMELINE_TITLE,
    growth_figure,
    timeline_figure,
    type_sizes_table,
    types_figure,
)

MB = 1_000_000


def png(fig: Figure) -> bytes:
    """Render like a notebook would; a PNG must come out."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    data = buffer.getvalue()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 1000
    return data


def all_text(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(Text))


def legend_texts(legend: Legend | None) -> list[str]:
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def ydata(line: Line2D) -> np.ndarray:
    return np.asarray(line.get_ydata(), dtype=np.float64)


def bars_of(ax: Any) -> list[Any]:
    return [bar for container in ax.containers for bar in container]


def ytick_texts(ax: Any) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def xtick_texts(ax: Any) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels()]


def bar_label_texts(ax: Any) -> list[str]:
    return [t.get_text() for t in ax.texts]


def assert_labels_inside(fig: Figure) -> None:
    """Every bar label is drawn inside its axes (the x limits left room for it)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # type: ignore[no-untyped-call]
    renderer = canvas.get_renderer()  # type: ignore[no-untyped-call]
    for ax in fig.axes:
        axes_box = ax.get_window_extent(renderer)
        for text in ax.texts:
            box = text.get_window_extent(renderer)
            assert axes_box.x0 - 1 <= box.x0, text.get_text()
            assert box.x1 <= axes_box.x1 + 1, text.get_text()


# ---------------------------------------------------------------- synthetic inputs
def history_frame(n: int, peak: float = 500 * MB) -> pd.DataFrame:
    heap = np.linspace(50 * MB, peak, n)
    return pd.DataFrame(
        {"label": [f"In[{i + 1}]" for i in range(n)], "heap": heap, "rss": heap * 1.5}
    )


def type_sizes_frame(n: int, columns: int, peak: float = 500 * MB) -> pd.DataFrame:
    """``columns`` types sharing the heap; type j's share grows with j (so the largest
    types by their maximum are the last columns)."""
    weights = np.arange(1, columns + 1, dtype=np.float64)
    weights /= weights.sum()
    heap = np.linspace(50 * MB, peak, n)
    return pd.DataFrame({f"mod.T{j}": heap * w for j, w in enumerate(weights)})


def types_diff_frame(rows: int, seed: int = 1, counts: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    diffs = rng.choice([-1, 1], rows) * rng.permutation(np.arange(1, rows + 1)) * 37_000
    df = pd.DataFrame(
        {
            "type": [f"T{i}" for i in range(rows)],
            "module": ["builtins" if i % 2 else "pkg.sub" for i in range(rows)],
            "size_diff": diffs.astype(np.int64),
        }
    )
    if counts:
        df["count_diff"] = rng.integers(-500, 500, rows)
    return df


def types_frame(rows: int, retained: bool) -> pd.DataFrame:
    sizes = (np.arange(rows, 0, -1) * 123_457).astype(np.int64)
    df = pd.DataFrame(
        {
            "type": [f"T{i}" for i in range(rows)],
            "module": ["builtins" if i % 3 else "pkg" for i in range(rows)],
            "size": sizes,
        }
    )
    if retained:
        df["retained"] = sizes * 2 + 5
    return df


# ---------------------------------------------------------------- no pyplot, no display
def test_figures_need_no_pyplot_nor_display() -> None:
    code = (
        "import sys, io, pandas as pd\n"
        "from jupyter_memsnap.views import plots\n"
        "h = pd.DataFrame({'label': ['a', 'b'], 'heap': [1e6, 2e6], 'rss': [3e6, 4e6]})\n"
        "d = pd.DataFrame({'type': ['x'], 'module': ['m'], 'size_diff': [5], 'size': [5]})\n"
        "for fig in (plots.timeline_figure(h), plots.growth_figure(d), plots.types_figure(d)):\n"
        "    fig.savefig(io.BytesIO(), format='png')\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_figure_displays_as_png_in_ipython_without_matplotlib_integration() -> None:
    fig = growth_figure(types_diff_frame(3))
    assert fig._repr_png_().startswith(b"\x89PNG")  # type: ignore[attr-defined]


def _luminance(rgb: np.ndarray) -> np.ndarray:
    c = rgb / 255.0
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return np.asarray(c @ np.array([0.2126, 0.7152, 0.0722]))


@pytest.mark.parametrize("render", ["savefig", "inline"])
@pytest.mark.parametrize(
    "build",
    [
        lambda: timeline_figure(history_frame(6)),
        lambda: growth_figure(types_diff_frame(4), title="growth"),
        lambda: types_figure(types_frame(4, True), title="types"),
    ],
)
def test_figures_read_on_a_light_and_a_dark_page(build: Any, render: str) -> None:
    from PIL import Image

    fig = build()
    if render == "inline":  # how the inline backend renders a figure in a kernel
        from IPython.core.pylabtools import print_figure
        from matplotlib_inline.backend_inline import set_matplotlib_formats  # noqa: F401

        data = print_figure(fig, "png")
    else:
        data = png(fig)
    image = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"), dtype=np.float64)
    alpha = image[..., 3:] / 255.0
    assert alpha[0, 0, 0] == 0 and alpha.mean() < 0.5  # the page shows through
    title = fig.axes[0].title
    fig.canvas.draw()
    box = title.get_window_extent()
    scale = image.shape[1] / fig.bbox.width
    top, bottom = image.shape[0] - box.y1 * scale, image.shape[0] - box.y0 * scale
    rows = slice(max(int(top) - 2, 0), int(bottom) + 2)
    columns = slice(max(int(box.x0 * scale) - 2, 0), int(box.x1 * scale) + 2)
    for page in (np.array([255.0, 255.0, 255.0]), np.array([17.0, 17.0, 17.0])):
        seen = image[..., :3] * alpha + page * (1 - alpha)
        lum = _luminance(seen[rows, columns])
        darkest, lightest = lum.min(), lum.max()
        assert (lightest + 0.05) / (darkest + 0.05) >= 4.5, (page, darkest, lightest)


# ---------------------------------------------------------------- timeline
def test_timeline_lines_labels_and_units() -> None:
    history = history_frame(12)
    fig = timeline_figure(history)
    png(fig)
    (ax,) = fig.axes
    assert ax.get_title() == TIMELINE_TITLE
    assert "MB" in ax.get_ylabel()
    assert len(ax.lines) == 2
    assert xtick_texts(ax) == history["label"].tolist()
    # the data is plotted in MB: the heap line's last point is 500
    heap_line = next(ln for ln in ax.lines if ln.get_label() == "heap (objects)")
    assert ydata(heap_line)[-1] == pytest.approx(500)
    legend = legend_texts(ax.get_legend())
    assert legend == ["RSS (process)", "heap (objects)"]
    assert max(ax.get_ylim()) >= 750  # RSS (1.5 × heap) is inside the axes


def test_timeline_draws_each_cells_peak_when_there_is_one() -> None:
    history = history_frame(6)
    history["peak"] = history["rss"] * 1.2
    history.loc[0, "peak"] = np.nan  # a snapshot row: no peak
    ax = timeline_figure(history).axes[0]
    assert legend_texts(ax.get_legend())[0] == "RSS peak while the cell ran"
    peak_line = next(ln for ln in ax.lines if ln.get_label().startswith("RSS peak"))
    assert ydata(peak_line)[-1] == pytest.approx(500 * 1.5 * 1.2)
    history["peak"] = np.nan
    assert len(timeline_figure(history).axes[0].lines) == 2


def test_timeline_stacks_the_top_types_and_other() -> None:
    history = history_frame(20)
    sizes = type_sizes_frame(20, columns=11)
    fig = timeline_figure(history, sizes, top=4)
    png(fig)
    (ax,) = fig.axes
    assert len(ax.collections) == 4 + 1
    legend = legend_texts(ax.get_legend())
    # largest on the bottom of the stack, listed last; "other" on top, listed first
    assert legend[2:] == ["other", "mod.T7", "mod.T8", "mod.T9", "mod.T10"]
    # the stack's top edge is the heap: "other" sums the 7 small types
    other = ax.collections[-1]
    top_edge = np.asarray(other.get_paths()[0].vertices, dtype=np.float64)[:, 1].max()
    assert top_edge == pytest.approx(500, rel=1e-6)


def test_timeline_with_few_types_has_no_other() -> None:
    fig = timeline_figure(history_frame(5), type_sizes_frame(5, columns=3), top=6)
    (ax,) = fig.axes
    assert len(ax.collections) == 3
    assert "other" not in legend_texts(ax.get_legend())


def test_timeline_300_points_thins_tick_labels() -> None:
    n = 300
    history = history_frame(n)
    fig = timeline_figure(history, type_sizes_frame(n, columns=30), top=6)
    png(fig)
    (ax,) = fig.axes
    labels = xtick_texts(ax)
    ticks = ax.get_xticks()
    assert 10 <= len(labels) <= MAX_TICK_LABELS
    assert labels[0] == "In[1]"
    assert labels[-1] == "In[300]"
    assert labels == [history["label"].iloc[int(t)] for t in ticks]
    assert np.all(np.diff(ticks) > 0)
    assert all(label.get_rotation() == 45 for label in ax.get_xticklabels())
    assert len(ax.collections) == 7


def test_timeline_tick_labels_do_not_overlap() -> None:
    history = history_frame(300)
    history["label"] = [f"#{i} after loading the table" for i in range(300)]
    fig = timeline_figure(history)
    png(fig)
    ax = fig.axes[0]
    labels = ax.get_xticklabels()
    assert all(label.get_rotation() == 45 for label in labels)
    # labels rotated 45° are parallel strips: apart when the gap between their anchors,
    # across the strips, is at least one line of text
    pixels = ax.transData.transform([(t, 0) for t in ax.get_xticks()])[:, 0]
    line_height = float(labels[0].get_fontsize()) * fig.dpi / 72
    assert np.diff(pixels).min() * np.sin(np.pi / 4) >= line_height
    # and the cut labels keep their end
    assert all(len(label.get_text()) <= 24 for label in labels)


def test_timeline_switches_to_gb_past_5_gb() -> None:
    fig = timeline_figure(history_frame(4, peak=8e9))
    ax = fig.axes[0]
    assert "GB" in ax.get_ylabel()
    assert max(ydata(ln).max() for ln in ax.lines) == pytest.approx(12)
    small = timeline_figure(history_frame(4, peak=3e9)).axes[0]
    assert "MB" in small.get_ylabel()  # 4.5 GB of RSS still reads in MB


def test_timeline_tick_formatter_is_readable() -> None:
    ax = timeline_figure(history_frame(4, peak=3e9)).axes[0]
    fmt = ax.yaxis.get_major_formatter()
    assert fmt(2500.0, 0) == "2,500"
    assert fmt(0.30000000000000004, 0) == "0.3"


def test_timeline_blank_and_special_labels() -> None:
    history = history_frame(3)
    history["label"] = ["", "cost $1 and $2", "In[3]"]
    sizes = pd.DataFrame({"_thread._local": [1e6, 2e6, 3e6], "$odd": [1.0, 2.0, 3.0]})
    fig = timeline_figure(history, sizes)
    png(fig)  # no mathtext error
    ax = fig.axes[0]
    assert xtick_texts(ax)[0] == "#1"
    assert xtick_texts(ax)[1] == r"cost \$1 and \$2"
    legend = legend_texts(ax.get_legend())
    assert "_thread._local" in legend  # a leading underscore must not hide it


def test_timeline_one_point_and_missing_values() -> None:
    history = history_frame(1)
    fig = timeline_figure(history, type_sizes_frame(1, columns=3))
    png(fig)
    assert xtick_texts(fig.axes[0]) == ["In[1]"]
    history = history_frame(4)
    history.loc[2, "rss"] = np.nan
    history["rss"] = history["rss"].astype("Float64")
    history.loc[1, "rss"] = pd.NA
    png(timeline_figure(history))


def test_timeline_rejects_type_sizes_of_another_length() -> None:
    with pytest.raises(ValueError, match="rows"):
        timeline_figure(history_frame(5), type_sizes_frame(4, columns=2))


# ---------------------------------------------------------------- growth
@pytest.mark.parametrize(("rows", "top"), [(300, 15), (300, 5), (7, 15), (1, 15)])
def test_growth_bars_are_the_largest_changes(rows: int, top: int) -> None:
    df = types_diff_frame(rows)
    fig = growth_figure(df, top=top)
    png(fig)
    (ax,) = fig.axes
    bars = bars_of(ax)
    assert len(bars) == min(top, rows)
    expected = df.loc[df["size_diff"].abs().nlargest(min(top, rows)).index]
    widths = np.array([bar.get_width() for bar in bars])
    scale = abs(expected["size_diff"]).max() / np.abs(widths).max()
    assert sorted(widths * scale) == pytest.approx(sorted(expected["size_diff"]))
    # growth on top, largest first; shrinkage at the bottom, largest last
    assert list(widths) == sorted(widths, reverse=True)
    for bar, width in zip(bars, widths, strict=True):
        assert bar.get_facecolor() == to_rgba(GROWTH_COLOR if width > 0 else SHRINK_COLOR)
    assert_labels_inside(fig)


def test_growth_only_leaves_no_empty_side() -> None:
    df = types_diff_frame(10)
    df["size_diff"] = df["size_diff"].abs()
    fig = growth_figure(df)
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    assert -0.05 * high < low <= 0
    assert_labels_inside(fig)
    df["size_diff"] = -df["size_diff"]
    fig = growth_figure(df)
    low, high = fig.axes[0].get_xlim()
    assert 0 <= high < -0.05 * low
    assert_labels_inside(fig)


def test_growth_colors_labels_and_units() -> None:
    df = pd.DataFrame(
        {
            "type": ["ndarray", "str", "bytes", "DataFrame"],
            "module": ["numpy", "builtins", "builtins", "pandas"],
            "size_diff": [80 * MB, 3 * MB, -12 * MB, 2_500],
            "count_diff": [1, 1000, -12, 0],
        }
    )
    fig = growth_figure(df, title="After load")
    png(fig)
    (ax,) = fig.axes
    assert ytick_texts(ax) == ["numpy.ndarray", "str", "pandas.DataFrame", "bytes"]
    colors = [bar.get_facecolor() for bar in bars_of(ax)]
    assert colors == [to_rgba(c) for c in (GROWTH_COLOR,) * 3 + (SHRINK_COLOR,)]
    assert bar_label_texts(ax) == [
        "+80.0 MB  (+1 obj)",
        "+3.0 MB  (+1,000 obj)",
        "+2.5 KB  (+0 obj)",
        "-12.0 MB  (-12 obj)",
    ]
    assert ax.get_xlabel() == "Size change (MB)"
    assert ax.get_title().startswith("After load")
    assert_labels_inside(fig)


def test_growth_small_changes_in_kb_without_counts() -> None:
    df = types_diff_frame(4, counts=False)
    df["size_diff"] = [4_000, -2_000, 700, 30_000]
    ax = growth_figure(df).axes[0]
    assert ax.get_xlabel() == "Size change (KB)"
    assert bar_label_texts(ax) == ["+30.0 KB", "+4.0 KB", "+700 B", "-2.0 KB"]


def test_growth_leaves_out_unchanged_types() -> None:
    df = types_diff_frame(5)
    df.loc[[1, 3], "size_diff"] = 0
    assert len(bars_of(growth_figure(df).axes[0])) == 3
    df["size_diff"] = 0
    fig = growth_figure(df)
    png(fig)
    assert "no data" in all_text(fig)


def test_long_type_names_are_shortened_in_the_middle() -> None:
    df = pd.DataFrame(
        {
            "type": ["BlockManager"],
            "module": ["pandas.core.internals.managers.very.deep.package"],
            "size_diff": [MB],
        }
    )
    (label,) = ytick_texts(growth_figure(df).axes[0])
    assert label.startswith("pandas…")
    assert label.endswith(".package.BlockManager")
    assert len(label) <= 40


# ---------------------------------------------------------------- types
@pytest.mark.parametrize(("rows", "top", "unit"), [(300, 15, "MB"), (300, 3, "MB"), (4, 15, "KB")])
def test_types_bars(rows: int, top: int, unit: str) -> None:
    df = types_frame(rows, retained=False)
    fig = types_figure(df, top=top)
    png(fig)
    (ax,) = fig.axes
    bars = bars_of(ax)
    assert len(bars) == min(top, rows)
    assert ytick_texts(ax)[:3] == ["pkg.T0", "T1", "T2"][: min(top, rows)]
    assert ax.get_xlabel() == f"Size ({unit})"
    widths = [bar.get_width() for bar in bars]
    assert widths == sorted(widths, reverse=True)
    assert widths[0] == pytest.approx(rows * 123_457 / {"MB": MB, "KB": 1000}[unit])
    assert ax.get_title() == "Largest types"
    assert_labels_inside(fig)


def test_types_draws_retained_next_to_size() -> None:
    df = types_frame(40, retained=True)
    fig = types_figure(df, top=10, title="Snapshot 2")
    png(fig)
    (ax,) = fig.axes
    size_bars, retained_bars = ax.containers
    assert len(size_bars) == len(retained_bars) == 10
    for s, r in zip(size_bars, retained_bars, strict=True):
        assert r.get_width() == pytest.approx(2 * s.get_width(), rel=1e-3)
        assert s.get_y() < r.get_y()  # the pair sits together, size first
    assert legend_texts(fig.legends[0]) == ["size", "retained"]
    assert ax.get_title() == "Snapshot 2"
    assert max(ax.get_xlim()) > retained_bars[0].get_width()
    assert_labels_inside(fig)


# ---------------------------------------------------------------- empty inputs
@pytest.mark.parametrize(
    "build",
    [
        lambda: timeline_figure(history_frame(0)),
        lambda: timeline_figure(pd.DataFrame()),
        lambda: timeline_figure(history_frame(0), type_sizes_frame(0, columns=3)),
        lambda: growth_figure(types_diff_frame(0)),
        lambda: growth_figure(pd.DataFrame()),
        lambda: growth_figure(types_diff_frame(5), top=0),
        lambda: types_figure(types_frame(0, retained=True)),
        lambda: types_figure(pd.DataFrame()),
    ],
)
def test_empty_inputs_say_no_data(build: Any) -> None:
    fig = build()
    png(fig)
    assert "no data" in all_text(fig)


def test_timeline_with_empty_type_sizes_draws_lines_only() -> None:
    fig = timeline_figure(history_frame(3), pd.DataFrame(index=range(3)))
    assert len(fig.axes[0].collections) == 0
    assert len(fig.axes[0].lines) == 2


# ---------------------------------------------------------------- real snapshots
class Blob:
    def __init__(self, nbytes: int) -> None:
        self.data = np.ones(nbytes // 8)


def test_figures_of_real_snapshots() -> None:
    doomed = [b"x" * MB for _ in range(6)]
    a = jupyter_memsnap.take("before", roots=[("doomed", "variable", doomed)])
    keep: list[object] = [Blob(16 * MB)]
    del doomed
    b = jupyter_memsnap.take("array", roots=[("keep", "variable", keep)])
    keep.append(["some text %d" % i for i in range(20_000)])  # noqa: UP031
    c = jupyter_memsnap.take("strings", roots=[("keep", "variable", keep)])

    growth = growth_figure(b.diff(a).types, top=10)
    png(growth)
    ax = growth.axes[0]
    labels, bars = ytick_texts(ax), bars_of(ax)
    assert len(bars) == min(10, int((b.diff(a).types["size_diff"] != 0).sum()))
    assert labels[0] == "numpy.ndarray"
    assert bars[0].get_facecolor() == to_rgba(GROWTH_COLOR)
    assert labels[-1] == "bytes"
    assert bars[-1].get_facecolor() == to_rgba(SHRINK_COLOR)
    assert bars[0].get_width() == pytest.approx(16, abs=0.5)  # MB

    types = types_figure(c.types, top=8)
    png(types)
    ax = types.axes[0]
    assert len(ax.containers) == 2  # size and retained
    assert len(bars_of(ax)) == 16
    assert "numpy.ndarray" in ytick_texts(ax)

    snaps = [a, b, c]
    history = history_table(enumerate(snaps, start=1))
    sizes = type_sizes_table(snaps)
    assert len(sizes) == 3
    assert sizes.sum(axis=1).tolist() == [s.total_size for s in snaps]
    fig = timeline_figure(history, sizes, top=5)
    png(fig)
    ax = fig.axes[0]
    assert xtick_texts(ax) == ["before", "array", "strings"]
    assert len(ax.collections) == 6
    assert "MB" in ax.get_ylabel()
    heap = next(ln for ln in ax.lines if ln.get_label() == "heap (objects)")
    stack_top = np.sum([s.to_numpy() for _, s in sizes.items()], axis=0) / MB
    assert ydata(heap) == pytest.approx(stack_top)
