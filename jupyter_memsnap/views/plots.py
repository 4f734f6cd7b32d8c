"""Matplotlib figures of the views: memory over time, the largest growth, the largest types.

Every builder returns a :class:`matplotlib.figure.Figure` made directly (never through
``pyplot``), so nothing accumulates in pyplot's global figure list when a notebook draws the
same chart again and again, and no display is needed: figures render with Agg
(``fig.savefig(buffer, format="png")``). The figures are :class:`MemsnapFigure`, a
``Figure`` that also shows itself as a PNG in IPython without ``%matplotlib``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.figure import Figure
from matplotlib.text import Text

from .format import human_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..model.snapshot import Snapshot

GROWTH_COLOR = "#d62728"
"""Bars of types that grew (red)."""
SHRINK_COLOR = "#2ca02c"
"""Bars of types that shrank (green)."""
SIZE_COLOR = "#1f77b4"
"""Shallow size bars of :func:`types_figure`."""
RETAINED_COLOR = "#ff7f0e"
"""Retained size bars of :func:`types_figure`."""
AXIS_GREY = "0.5"
"""Axes lines: at least 3:1 against white and against a dark page."""
HALO_WIDTH = 3.0
HEAP_COLOR = "#222222"
RSS_COLOR = "#9467bd"
OTHER_COLOR = "#c7c7c7"

TIMELINE_TITLE = "Kernel memory over cells"
MAX_TICK_LABELS = 30
"""The timeline labels at most this many points on its x axis (thinned evenly)."""
MAX_LABEL_CHARS = 40

_TYPE_COLORS = (
    "#4c72b0",
    "#dd8452",
    "#55a868",
    "#c44e52",
    "#8172b3",
    "#937860",
    "#da8bc3",
    "#8c8c8c",
    "#ccb974",
    "#64b5cd",
    "#1b9e77",
    "#e7298a",
)


class MemsnapFigure(Figure):
    """A plain ``Figure`` that IPython also displays as a PNG when pyplot's inline
    integration is not active (figures made without ``pyplot`` have no formatter then).

    It draws itself readable on a light and a dark notebook alike, however it is rendered
    (``savefig``, the inline backend): a transparent background, grey axes, and text with
    a light halo, so dark letters stand out on a dark page too."""

    def draw(self, renderer: Any) -> None:
        self.patch.set_facecolor("none")
        for ax in self.axes:
            ax.set_facecolor("none")
            for spine in ax.spines.values():
                spine.set_edgecolor(AXIS_GREY)
            ax.tick_params(which="both", color=AXIS_GREY)
        halo: list[patheffects.AbstractPathEffect] = [
            patheffects.withStroke(linewidth=HALO_WIDTH, foreground="white", alpha=0.9)
        ]
        for text in self.findobj(Text):
            if isinstance(text, Text) and text.get_text():
                text.set_path_effects(halo)
        super().draw(renderer)

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


# ---------------------------------------------------------------- helpers
def _figure(width: float, height: float) -> MemsnapFigure:
    return MemsnapFigure(figsize=(width, height), layout="constrained", dpi=100)


def _text(value: object, limit: int = MAX_LABEL_CHARS) -> str:
    """Text safe for matplotlib (``$`` would start mathtext), at most ``limit`` characters.
    A long dotted name keeps its first part and as many of its last parts as fit
    (``pandas…managers.BlockManager``); other long text keeps its end."""
    text = str(value)
    if len(text) > limit:
        parts = text.split(".")
        kept = parts[-1]
        for part in reversed(parts[1:-1]):
            if len(parts[0]) + len(part) + len(kept) + 2 > limit:
                break
            kept = f"{part}.{kept}"
        short = f"{parts[0]}…{kept}" if len(parts) > 2 else ""
        text = short if short and len(short) <= limit else "…" + text[-(limit - 1) :]
    return text.replace("$", r"\$")


def _type_label(module: object, name: object) -> str:
    """``type`` for builtins, ``module.type`` otherwise (like ``TypeTable.label``)."""
    mod = module if isinstance(module, str) else ""
    return str(name) if mod in ("", "builtins") else f"{mod}.{name}"


def _unit(largest: float, smallest: str = "B") -> tuple[str, float]:
    """The decimal unit an axis whose largest absolute value is ``largest`` reads best in;
    never below ``smallest``. GB only past 5 GB, so ``3,500 MB`` stays in MB."""
    units = (("B", 1.0), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9))
    names = [u for u, _ in units]
    best = units[names.index(smallest)]
    for name, scale in units[names.index(smallest) :]:
        threshold = 5e9 if name == "GB" else scale
        if largest >= threshold:
            best = (name, scale)
    return best


def _number_formatter() -> Any:
    """Tick text: thousands separators, no scientific notation nor offset."""
    from matplotlib.ticker import FuncFormatter

    def fmt(value: float, _pos: object) -> str:
        text = f"{value:,.6g}"
        return "0" if text == "-0" else text

    return FuncFormatter(fmt)


def _no_data(title: str, message: str = "no data") -> MemsnapFigure:
    fig = _figure(6, 2.5)
    ax = fig.add_subplot()
    ax.set_axis_off()
    if title:
        ax.set_title(_text(title, 120))
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        fontsize=14,
        color="0.4",
        transform=ax.transAxes,
    )
    return fig


def _numeric(values: Any) -> np.ndarray:
    """Floats with NaN for anything missing (``pd.NA``, ``None``)."""
    return np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=np.float64)


# ---------------------------------------------------------------- timeline
def _tick_positions(n: int, max_labels: int = MAX_TICK_LABELS) -> np.ndarray:
    """At most ``max_labels`` evenly spaced points, always the first and the last."""
    if n <= max_labels:
        return np.arange(n)
    step = math.ceil((n - 1) / (max_labels - 1))
    ticks = np.arange(0, n, step)
    if ticks[-1] != n - 1:
        if n - 1 - ticks[-1] < step / 2:
            ticks = ticks[:-1]  # keep the last point's label from overlapping its neighbour
        ticks = np.append(ticks, n - 1)
    return ticks


def _stack_columns(
    type_sizes: pd.DataFrame, n: int, top: int
) -> tuple[list[str], list[np.ndarray]]:
    """The ``top`` largest columns (by their maximum) and, if any is left, ``other``."""
    if len(type_sizes) != n:
        raise ValueError(f"type_sizes has {len(type_sizes)} rows, history has {n}")
    data = type_sizes.apply(pd.to_numeric, errors="coerce").fillna(0).clip(lower=0)
    if data.shape[1] == 0:
        return [], []
    peaks = data.max(axis=0)
    order = sorted(range(data.shape[1]), key=lambda i: (-float(peaks.iloc[i]), i))
    keep, rest = order[: max(top, 0)], order[max(top, 0) :]
    names = [str(data.columns[i]) for i in keep]
    series = [data.iloc[:, i].to_numpy(dtype=np.float64) for i in keep]
    if rest:
        names.append("other")
        series.append(data.iloc[:, rest].sum(axis=1).to_numpy(dtype=np.float64))
    return names, series


def type_sizes_table(snapshots: Iterable[Snapshot]) -> pd.DataFrame:
    """The ``type_sizes`` input of :func:`timeline_figure`: one row per snapshot, one column
    per type (``type`` for builtins, ``module.type`` otherwise), bytes; 0 where a snapshot
    has no object of that type."""
    rows = []
    for snap in snapshots:
        t = snap.types
        labels = [_type_label(m, q) for m, q in zip(t["module"], t["type"], strict=True)]
        sizes = t["size"].astype(np.int64).tolist()
        row: dict[str, int] = {}
        for label, size in zip(labels, sizes, strict=True):
            row[label] = row.get(label, 0) + size
        rows.append(row)
    return pd.DataFrame(rows).fillna(0).astype(np.int64)


def timeline_figure(
    history: pd.DataFrame, type_sizes: pd.DataFrame | None = None, top: int = 6
) -> Figure:
    """Memory over time: the heap (bytes in objects), the process RSS and (auto mode) each
    cell's RSS peak as lines, one point per row of ``history`` (columns ``label``, ``heap``,
    ``rss``, ``peak``; ``label`` gives the x tick
    text, thinned to at most 30 labels). With ``type_sizes`` (same rows, one column per type
    name, bytes) the ``top`` largest types by their maximum are stacked under the heap line
    and the rest summed as ``other``. MB on the y axis, GB past 5 GB."""
    n = len(history)
    if n == 0:
        return _no_data(TIMELINE_TITLE)
    x = np.arange(n, dtype=np.float64)
    lines = [
        (name, values, color, style)
        for col, name, color, style in (
            ("peak", "RSS peak while the cell ran", RSS_COLOR, ":"),
            ("rss", "RSS (process)", RSS_COLOR, "--"),
            ("heap", "heap (objects)", HEAP_COLOR, "-"),
        )
        if col in history.columns
        for values in [_numeric(history[col])]
        if col != "peak" or not np.isnan(values).all()  # peaks: auto mode on Linux only
    ]
    names: list[str] = []
    series: list[np.ndarray] = []
    if type_sizes is not None:
        names, series = _stack_columns(type_sizes, n, top)
    peaks = [np.nanmax(v, initial=0.0) for _, v, _, _ in lines if not np.isnan(v).all()]
    if series:
        peaks.append(float(np.sum(series, axis=0).max()))
    if not peaks:
        return _no_data(TIMELINE_TITLE, "no data (no heap or rss values)")
    unit, scale = _unit(max(peaks), smallest="MB")

    fig = _figure(11, 5.5)
    ax = fig.add_subplot()
    handles: list[Any] = []
    labels: list[str] = []
    marker = "o" if n <= 60 else ""
    for name, values, color, style in lines:
        (line,) = ax.plot(x, values / scale, ls=style, color=color, lw=2, label=name)
        line.set(marker=marker, markersize=3, clip_on=False)
        handles.append(line)
        labels.append(name)
    if series:
        colors = [_TYPE_COLORS[i % len(_TYPE_COLORS)] for i in range(len(series))]
        if len(names) > max(top, 0):
            colors[-1] = OTHER_COLOR  # the "other" series
        stacked = [s / scale for s in series]
        x_stack = x
        if n == 1:  # one point: a block around it rather than an invisible zero-width area
            x_stack = np.array([-0.25, 0.25])
            stacked = [np.repeat(s, 2) for s in stacked]
        polys = ax.stackplot(x_stack, *stacked, colors=colors, alpha=0.85, lw=0, zorder=1)
        # the legend lists the types top to bottom, as they are stacked
        handles += list(reversed(polys))
        labels += [_text(name) for name in reversed(names)]

    ax.set_title(TIMELINE_TITLE)
    ax.set_ylabel(f"Memory ({unit})")
    ax.set_xlabel("Snapshot")
    ax.yaxis.set_major_formatter(_number_formatter())
    ax.set_ylim(bottom=0)
    if n == 1:
        ax.set_xlim(-0.5, 0.5)
    else:
        ax.set_xlim(0, n - 1)
    ax.grid(axis="y", alpha=0.3)
    ax.grid(axis="x", alpha=0.15)
    ticks = _tick_positions(n)
    raw = history["label"].tolist() if "label" in history.columns else [""] * n
    text = [_text(raw[i], 24) if isinstance(raw[i], str) and raw[i] else f"#{i + 1}" for i in ticks]
    ax.set_xticks(ticks.astype(np.float64), text)
    if len(ticks) > 12 or max(len(t) for t in text) * len(ticks) > 90:
        ax.tick_params(axis="x", labelrotation=45)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
    ax.legend(
        handles,
        labels,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0,
        frameon=False,
        fontsize=9,
    )
    return fig


# ---------------------------------------------------------------- bar charts
def _bar_figure(n_rows: int, per_row: float = 0.38) -> tuple[MemsnapFigure, Axes]:
    fig = _figure(9, max(2.6, per_row * n_rows + 1.4))
    return fig, fig.add_subplot()


def _bar_labels(ax: Axes, labels: Sequence[str]) -> None:
    ax.set_yticks(np.arange(len(labels), dtype=np.float64), [_text(t) for t in labels])
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first row on top
    ax.xaxis.set_major_formatter(_number_formatter())
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def growth_figure(types_diff: pd.DataFrame, top: int = 15, title: str = "") -> Figure:
    """Horizontal bars of the ``top`` types whose size changed most (by absolute
    ``size_diff``; unchanged types are left out): growth in red, shrinkage in green, largest
    growth on top, largest shrinkage at the bottom, each bar labelled with the change (and
    the change in object count when ``count_diff`` is present)."""
    heading = title or "Largest changes by type"
    if len(types_diff) == 0 or "size_diff" not in types_diff.columns:
        return _no_data(heading)
    df = types_diff.assign(_d=_numeric(types_diff["size_diff"]))
    df = df[df["_d"].notna() & (df["_d"] != 0)]
    if len(df) == 0:
        return _no_data(heading, "no data (no size changed)")
    df = df.assign(_abs=df["_d"].abs())
    df = df.sort_values("_abs", ascending=False, kind="stable").head(max(top, 0))
    df = df.sort_values("_d", ascending=False, kind="stable")
    if len(df) == 0:
        return _no_data(heading)
    diffs = df["_d"].to_numpy(dtype=np.float64)
    unit, scale = _unit(float(np.abs(diffs).max()))
    names = _row_labels(df)
    values = diffs / scale

    fig, ax = _bar_figure(len(df))
    colors = [GROWTH_COLOR if d > 0 else SHRINK_COLOR for d in diffs]
    bars = ax.barh(np.arange(len(df), dtype=np.float64), values, color=colors, height=0.7)
    text = [human_bytes(d, signed=True) for d in diffs]
    if "count_diff" in df.columns:
        counts = _numeric(df["count_diff"])
        text = [
            f"{t}  ({int(c):+,} obj)" if not math.isnan(c) else t
            for t, c in zip(text, counts, strict=True)
        ]
    ax.bar_label(bars, labels=text, padding=3, fontsize=8)
    _bar_labels(ax, names)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_xlim(*_label_room(values, text))
    ax.set_xlabel(f"Size change ({unit})")
    total = float(diffs.sum())
    ax.set_title(f"{_text(heading, 120)}\n(shown: {human_bytes(total, signed=True)} net)")
    return fig


def _label_room(values: np.ndarray, labels: Sequence[str]) -> tuple[float, float]:
    """x limits leaving room for the bar labels past the bars' ends, on each side as wide
    as its longest label (estimated: about 1.2 % of the axes per character at 8 points)."""
    low, high = min(0.0, float(values.min())), max(0.0, float(values.max()))
    span = (high - low) or 1.0
    per_char = 0.012

    def need(side: np.ndarray) -> float:
        chars = max((len(labels[int(i)]) for i in np.flatnonzero(side)), default=0)
        return 0.02 + per_char * chars if chars else 0.02

    left, right = need(values < 0), need(values >= 0)
    scale = min(left + right, 0.75) / (left + right)  # keep at least a quarter for the bars
    left, right = left * scale, right * scale
    total = span / (1 - left - right)
    return low - left * total, high + right * total


def _row_labels(df: pd.DataFrame) -> list[str]:
    types = df["type"].tolist() if "type" in df.columns else [""] * len(df)
    modules = df["module"].tolist() if "module" in df.columns else [""] * len(df)
    return [_type_label(m, t) for m, t in zip(modules, types, strict=True)]


def types_figure(types: pd.DataFrame, top: int = 15, title: str = "") -> Figure:
    """Horizontal bars of the ``top`` largest types of one snapshot by shallow ``size``;
    with a ``retained`` column each type gets a second bar, the bytes its objects keep
    alive."""
    heading = title or "Largest types"
    if len(types) == 0 or "size" not in types.columns:
        return _no_data(heading)
    df = types.assign(_s=_numeric(types["size"]))
    df = df[df["_s"].notna()]
    df = df.sort_values("_s", ascending=False, kind="stable").head(max(top, 0))
    if len(df) == 0:
        return _no_data(heading)
    sizes = df["_s"].to_numpy(dtype=np.float64)
    retained = _numeric(df["retained"]) if "retained" in df.columns else None
    largest = float(np.nanmax(sizes))
    if retained is not None and not np.isnan(retained).all():
        largest = max(largest, float(np.nanmax(retained)))
    else:
        retained = None
    unit, scale = _unit(largest)
    names = _row_labels(df)
    y = np.arange(len(df), dtype=np.float64)

    fig, ax = _bar_figure(len(df), per_row=0.5 if retained is not None else 0.38)
    if retained is None:
        bars = ax.barh(y, sizes / scale, height=0.7, color=SIZE_COLOR, label="size")
        ax.bar_label(bars, labels=[human_bytes(s) for s in sizes], padding=3, fontsize=8)
    else:
        h = 0.4
        bars = ax.barh(y - h / 2, sizes / scale, height=h, color=SIZE_COLOR, label="size")
        ax.bar_label(bars, labels=[human_bytes(s) for s in sizes], padding=3, fontsize=7)
        kept = np.nan_to_num(retained)
        bars_r = ax.barh(y + h / 2, kept / scale, height=h, color=RETAINED_COLOR, label="retained")
        ax.bar_label(bars_r, labels=[human_bytes(r) for r in retained], padding=3, fontsize=7)
        fig.legend(loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    _bar_labels(ax, names)
    ax.set_xlim(0, (largest / scale) * 1.3 or 1.0)
    ax.set_xlabel(f"Size ({unit})")
    ax.set_title(_text(heading, 120))
    return fig
