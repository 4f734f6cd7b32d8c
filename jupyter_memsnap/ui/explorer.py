"""The snapshot explorer: an ipywidgets composite over numbered snapshots (VS Memory Usage's
snapshot view, in the notebook).

Controls: snapshot, baseline ("Compare to": none or another snapshot, which turns the view
into a diff), grouping, sort column and direction, a case-insensitive filter, "just my
code", "collapse small", paging. Picking a row shows its largest objects and, for one of
them, its paths to root in notebook words with the fix. A second tab plots memory over the
snapshots and the largest types (or the largest changes of a diff).

The state is a DataFrame: :attr:`Explorer.view` is the page of rows on show, numeric,
before formatting, so tests drive the widgets by setting ``.value`` and read the view. The
explorer holds Snapshots (ids and numbers) and DataFrames of them, never a user object.
Where widgets cannot render, it shows as text (``text/plain``) and as a static HTML table.
"""

from __future__ import annotations

import contextlib
import html
import io
import threading
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

import ipywidgets as widgets
import pandas as pd

from ..model.diff import SnapshotDiff
from ..model.snapshot import Snapshot
from ..views import memory
from ..views.columns import side_name
from ..views.format import human_bytes
from ..views.history import history_table
from ..views.html import STYLE, html_table, text_table
from ..views.paths import contains_frame
from .data import DIFF_OBJECT_GROUPS, OBJECT_GROUPS, ExplorerData, Query, Selection
from .grid import Grid

_plots: ModuleType | None
try:  # matplotlib figures of the views; the plots tab says so when they are missing
    from ..views import plots as _plots_module

    _plots = _plots_module
except ImportError:  # pragma: no cover - depends on the installation
    _plots = None

FALLBACK_STYLE = """<style>
body:has(.memsnap-explorer:not(.memsnap-static)) .memsnap-fallback { display: none; }
.jp-OutputArea-child:has(.memsnap-fallback) + .jp-OutputArea-child:not(:has(.memsnap-explorer)) {
  display: none;
}
</style>"""
"""The static table hides once a live explorer is on the page; until then (or for good, in
a notebook reopened without the kernel) the widget output after it, which only says
"Loading widget..." or "model not found", is hidden instead."""

NONE = 0
"""The baseline picker's value for "no baseline" (snapshot numbers start at 1)."""
NO_ROW = -1
"""The row and instance pickers' value when nothing is picked."""
PAGE_SIZES = (10, 20, 50, 100)
_IMAGE_LAYOUT = {"max_width": "100%", "align_self": "flex-start"}  # native size, not stretched
NAME_COLUMNS = {
    "type": ("type", "module"),
    "module": ("module",),
    "variable": ("name",),
    "holder": ("held_by",),
    "cell": ("cell",),
    "site": ("site",),
    "object": ("type",),
    "new": ("type",),
    "freed": ("type",),
}
"""Columns that name a row in the row picker."""
GROUP_TITLES = {
    "type": "type",
    "variable": "variable",
    "module": "module",
    "holder": "hidden holder",
    "cell": "cell of birth",
    "site": "allocation site",
    "object": "object",
    "new": "new object",
    "freed": "freed object",
}


def _snapshot_label(number: int, snap: Snapshot) -> str:
    parts = [f"#{number}"]
    if snap.label:
        parts.append(snap.label)
    if snap.cell is not None:
        parts.append(f"In[{snap.cell}]")
    parts.append(f"{snap.taken_at:%H:%M:%S}")
    parts.append(human_bytes(snap.total_size))
    return " · ".join(parts)


def _short(number: int, snap: Snapshot) -> str:
    return f"snapshot {number}" + (f" '{snap.label}'" if snap.label else "")


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


INSIGHTS_TAB = 2


class Explorer:
    """An explorer over ``(number, Snapshot)`` pairs (a ``SnapshotStore`` is such an
    iterable), showing ``snapshot`` (default: the latest), compared to ``baseline`` when
    given. Display it in a notebook; drive it from code through its widgets' ``.value``
    and read :attr:`view`.

    Widgets: ``snapshot``, ``baseline``, ``group``, ``sort``, ``order``, ``filter``,
    ``mine`` ("just my code"), ``collapse`` ("collapse small"), ``page_size``,
    ``previous``, ``next``, ``row`` (drill-down), ``instance`` (paths to root), ``tabs``
    (table, plots, insights); ``widget`` is the whole composite.
    """

    def __init__(
        self,
        snapshots: Iterable[tuple[int, Snapshot]],
        snapshot: int | None = None,
        baseline: int | None = None,
        *,
        group: str = "type",
        page_size: int = 20,
        top_instances: int = 10,
        max_paths: int = 3,
    ) -> None:
        self.data = ExplorerData(snapshots)
        numbers = self.data.numbers
        if not numbers:
            raise ValueError("no snapshots to explore: take one with %memsnap take")
        if snapshot is None:
            snapshot = numbers[-1]
        for name, value in (("snapshot", snapshot), ("baseline", baseline)):
            if value is not None and value not in self.data.snapshots:
                raise ValueError(f"{name} {value} does not exist: there are {numbers}")
        if baseline == snapshot:
            baseline = None
        if page_size < 1:
            raise ValueError(f"page_size must be positive, not {page_size}")
        groups = self.data.groups(snapshot, baseline)
        if group not in groups:
            raise ValueError(f"cannot group by {group!r} here: choose from {', '.join(groups)}")
        self.top_instances = top_instances
        self.max_paths = max_paths
        self._page = 0
        self._quiet = 0
        self._plots_stale = True
        self._plot_thread: threading.Thread | None = None
        self._pngs: dict[object, bytes] = {}  # drawn figures, by what they show
        self._insights: dict[int, pd.DataFrame] = {}  # by snapshot number
        self._instance_snapshot = snapshot
        self._instances = pd.DataFrame()
        self._paths = pd.DataFrame()
        self._contains = pd.DataFrame()
        self.error = ""
        wide = {"description_width": "initial"}

        self.summary = widgets.HTML()
        self.snapshot = widgets.Dropdown(
            options=[(_snapshot_label(n, s), n) for n, s in sorted(self.data.snapshots.items())],
            value=snapshot,
            description="Snapshot",
            style=wide,
            layout={"width": "400px"},
        )
        self.baseline = widgets.Dropdown(
            description="Compare to", style=wide, layout={"width": "400px"}
        )
        self.group = widgets.Dropdown(description="Group by", style=wide, layout={"width": "240px"})
        self.sort = widgets.Dropdown(description="Sort by", style=wide, layout={"width": "260px"})
        self.order = widgets.ToggleButtons(
            options=[("▼ descending", "descending"), ("▲ ascending", "ascending")],
            value="descending",
            style={"button_width": "auto"},
        )
        self.filter = widgets.Text(
            placeholder="filter names (case-insensitive regex)",
            description="Filter",
            continuous_update=True,
            style=wide,
            layout={"width": "400px"},
        )
        self.mine = widgets.Checkbox(
            description="Just my code",
            indent=False,
            tooltip="only what your variables reach (or cells created)",
            layout={"width": "auto", "margin": "0 1em"},
        )
        self.collapse = widgets.Checkbox(
            description="Collapse small",
            indent=False,
            tooltip="hide rows under 0.5 % of the total",
            layout={"width": "auto", "margin": "0 1em"},
        )
        self.table = Grid()
        self.status = widgets.HTML()
        self.previous = widgets.Button(description="◀ previous", layout={"width": "auto"})
        self.next = widgets.Button(description="next ▶", layout={"width": "auto"})
        self.page_size = widgets.Dropdown(
            options=sorted({*PAGE_SIZES, page_size}),
            value=page_size,
            description="Rows per page",
            style=wide,
            layout={"width": "160px"},
        )
        self.row = widgets.Dropdown(
            description="Details of",
            options=[("(pick a row)", NO_ROW)],
            style=wide,
            layout={"width": "520px"},
        )
        self.instances_html = widgets.HTML()
        self.instance = widgets.Dropdown(
            description="Paths to",
            options=[("(pick an object)", NO_ROW)],
            style=wide,
            layout={"width": "520px"},
        )
        self.paths_html = widgets.HTML()
        self.contains_html = widgets.HTML(layout={"margin": "0 0 0 2em"})
        self.timeline_image = widgets.Image(format="png", layout=_IMAGE_LAYOUT)
        self.bars_image = widgets.Image(format="png", layout=_IMAGE_LAYOUT)
        self.plots_note = widgets.HTML()

        self._set_baseline_options(baseline)
        self._set_group_options(group)
        self._set_sort_options("")

        for w, cls in (
            (self.snapshot, "memsnap-snapshot"),
            (self.baseline, "memsnap-baseline"),
            (self.group, "memsnap-group"),
            (self.sort, "memsnap-sort"),
            (self.order, "memsnap-order"),
            (self.filter, "memsnap-filter"),
            (self.mine, "memsnap-mine"),
            (self.collapse, "memsnap-collapse"),
            (self.table, "memsnap-table"),
            (self.status, "memsnap-status"),
            (self.previous, "memsnap-previous"),
            (self.next, "memsnap-next"),
            (self.page_size, "memsnap-page-size"),
            (self.row, "memsnap-row"),
            (self.instances_html, "memsnap-instances"),
            (self.instance, "memsnap-instance"),
            (self.paths_html, "memsnap-paths"),
            (self.contains_html, "memsnap-contains"),
            (self.table, "memsnap-clickable"),
            (self.summary, "memsnap-summary"),
        ):
            w.add_class(cls)
        table_tab = widgets.VBox(
            [
                widgets.HBox([self.snapshot, self.baseline, self.group]),
                widgets.HBox([self.filter, self.mine, self.collapse]),
                widgets.HBox([self.sort, self.order]),
                self.table,
                widgets.HBox([self.previous, self.next, self.status, self.page_size]),
                self.row,
                self.instances_html,
                self.instance,
                widgets.HBox(
                    [self.paths_html, self.contains_html], layout={"flex_flow": "row wrap"}
                ),
            ]
        )
        plots_tab = widgets.VBox([self.plots_note, self.timeline_image, self.bars_image])
        self.insights_html = widgets.HTML()
        self.insights_html.add_class("memsnap-insights")
        self.tabs = widgets.Tab(
            children=[table_tab, plots_tab, self.insights_html],
            titles=("Table", "Plots", "Insights"),
        )
        self.widget = widgets.VBox([widgets.HTML(STYLE), self.summary, self.tabs])
        self.widget.add_class("memsnap-explorer")
        self.widget.add_class("memsnap")

        for w in (self.snapshot, self.baseline):
            w.observe(self._on_source, names="value")
        self.group.observe(self._on_group, names="value")
        for w in (self.sort, self.order, self.filter, self.mine, self.collapse, self.page_size):
            w.observe(self._on_rows, names="value")
        self.row.observe(self._on_row, names="value")
        self.instance.observe(self._on_instance, names="value")
        self.table.observe(self._on_click, names="clicked")
        self.tabs.observe(self._on_tab, names="selected_index")
        self.previous.on_click(lambda _: self.turn(-1))
        self.next.on_click(lambda _: self.turn(+1))
        self._render()

    # ------------------------------------------------------------ state
    @property
    def query(self) -> Query:
        """The control values as a Query."""
        baseline = self.baseline.value
        return Query(
            snapshot=int(self.snapshot.value),
            baseline=None if baseline in (None, NONE) else int(baseline),
            group=str(self.group.value),
            pattern=str(self.filter.value).strip(),
            mine=bool(self.mine.value),
            collapse=bool(self.collapse.value),
            sort=str(self.sort.value or ""),
            ascending=self.order.value == "ascending",
        )

    @property
    def source(self) -> Snapshot | SnapshotDiff:
        """The snapshot on show, or its diff against the baseline."""
        q = self.query
        return self.data.source(q.snapshot, q.baseline)

    @property
    def selection(self) -> Selection:
        """Every row that passes the controls, sorted (all pages); no rows, and ``error``
        says why, when the grouping's data was not recorded."""
        try:
            sel = self.data.selection(self.query)
        except (ValueError, KeyError) as e:  # e.g. cells or sites not recorded
            self.error = str(e)
            return Selection(pd.DataFrame(), 0, None)
        self.error = ""
        return sel

    @property
    def frame(self) -> pd.DataFrame:
        """Every row that passes the controls, sorted, numeric (all pages)."""
        return self.selection.frame.reset_index(drop=True)

    @property
    def rows(self) -> int:
        """How many rows pass the controls (on all pages)."""
        return len(self.selection)

    @property
    def pages(self) -> int:
        return max(1, -(-self.rows // int(self.page_size.value)))

    @property
    def page(self) -> int:
        """The page on show, from 0."""
        return self._page

    @page.setter
    def page(self, value: int) -> None:
        self._page = min(max(int(value), 0), self.pages - 1)
        self._render()

    def turn(self, step: int) -> None:
        """Go ``step`` pages forward (negative: back); stops at the first and last page."""
        self.page = self._page + step

    def _page_frame(self, sel: Selection | None = None) -> pd.DataFrame:
        size = int(self.page_size.value)
        start = self._page * size
        return (sel or self.selection).page(start, start + size)

    @property
    def view(self) -> pd.DataFrame:
        """The rows on show (one page), numeric, before formatting."""
        return self._page_frame().reset_index(drop=True)

    @property
    def instances(self) -> pd.DataFrame:
        """The largest objects behind the picked row (empty when no row is picked)."""
        return self._instances.copy()

    @property
    def paths(self) -> pd.DataFrame:
        """Paths to root of the picked object, in notebook words, with the fix."""
        return self._paths.copy()

    @property
    def contains(self) -> pd.DataFrame:
        """What the picked object refers to, by type, with retained sizes."""
        return self._contains.copy()

    # ------------------------------------------------------------ options
    @contextlib.contextmanager
    def _quietly(self) -> Iterator[None]:
        """Change widgets without their observers re-rendering."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    def _set_baseline_options(self, value: int | None) -> None:
        current = int(self.snapshot.value)
        options = [("none", NONE)] + [
            (_snapshot_label(n, s), n)
            for n, s in sorted(self.data.snapshots.items())
            if n != current
        ]
        keep = value if value is not None and value != current else NONE
        with self._quietly():
            self.baseline.options = options
            self.baseline.value = keep

    def _set_group_options(self, value: str) -> None:
        snapshot, baseline = int(self.snapshot.value), self.baseline.value
        baseline = None if baseline in (None, NONE) else int(baseline)
        groups = self.data.groups(snapshot, baseline)
        if value not in groups:
            value = "type" if "type" in groups else groups[0]
        with self._quietly():
            self.group.options = [(GROUP_TITLES.get(g, g), g) for g in groups]
            self.group.value = value

    def _set_sort_options(self, value: str) -> None:
        try:
            columns = list(self.data.base(self.query).columns)
        except (ValueError, KeyError):
            columns = []
        if value not in columns:
            value = ""
        with self._quietly():
            self.sort.options = [("(largest first)", "")] + [(str(c), str(c)) for c in columns]
            self.sort.value = value
            if not value:  # the table's own order has no direction
                self.order.value = "descending"

    # ------------------------------------------------------------ events
    def _on_source(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        if change["owner"] is self.snapshot:
            baseline = self.baseline.value
            self._set_baseline_options(None if baseline == NONE else baseline)
        self._set_group_options(str(self.group.value))
        self._set_sort_options(str(self.sort.value or ""))
        self._plots_stale = True
        self._reset_and_render()
        if self.tabs.selected_index == 1:
            self._draw_plots_in_background()
        elif self.tabs.selected_index == INSIGHTS_TAB:
            self._render_insights()

    def _on_group(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        self._set_sort_options(str(self.sort.value or ""))
        self._reset_and_render()

    def _on_rows(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self._reset_and_render()

    def _on_row(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self._render_instances()

    def _on_instance(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self._render_paths()

    def _on_click(self, change: dict[str, Any]) -> None:
        """A header click sorts by that column (again: the other way); a row click shows
        that row's details."""
        click = change["new"] or {}
        if click.get("kind") == "header":
            column = str(click.get("column", ""))
            if column not in [value for _, value in self.sort.options]:
                return
            if self.sort.value == column:
                flipped = "ascending" if self.order.value == "descending" else "descending"
                self.order.value = flipped
            else:
                self.sort.value = column
        elif click.get("kind") == "row":
            row = click.get("row")
            if isinstance(row, int) and row in [value for _, value in self.row.options]:
                self.row.value = row

    def _on_tab(self, change: dict[str, Any]) -> None:
        if change["new"] == 1 and self._plots_stale:
            self._draw_plots_in_background()
        elif change["new"] == INSIGHTS_TAB:
            self._render_insights()

    def insights(self) -> pd.DataFrame:
        """The shown snapshot's insights (with the earlier ones for leak suspects); values
        are read from the variables that still hold the same objects."""
        number = int(self.snapshot.value)
        if number not in self._insights:
            from ..api import insights

            earlier = [self.data.snapshots[n] for n in self.data.numbers if n < number]
            self._insights[number] = insights(self.data.snapshots[number], series=earlier)
        return self._insights[number]

    def _render_insights(self) -> None:
        number = int(self.snapshot.value)
        try:
            df = self.insights()
        except Exception as e:  # shown, never raised into the front end
            self.insights_html.value = f"<p class='memsnap-note'>Insights failed: {e!r}</p>"
            return
        title = f"{_short(number, self.data.snapshots[number])}: " + (
            f"{human_bytes(int(df['bytes'].sum()))} to get back in {len(df)} changes"
            if len(df)
            else "nothing worth 1 MB found"
        )
        self.insights_html.value = (
            f"<p class='memsnap-note'>{html.escape(title)} (bytes: what the fix saves)</p>"
            + html_table(df, first=None)
        )

    def _draw_plots_in_background(self) -> None:
        """Matplotlib takes about a second for two figures: draw them on a worker thread
        so that the controls answer at once (widget updates from a thread reach the front
        end through ipykernel's IOPub thread). Figures already drawn come from a cache."""
        if self._plot_thread is not None and self._plot_thread.is_alive():
            self._plots_stale = True  # the running worker draws again when it is done
            return
        self.plots_note.value = "<p class='memsnap-note'>Drawing the plots…</p>"

        def work() -> None:
            while True:
                try:
                    self.render_plots()
                except Exception as e:  # never let a plot failure go unseen or kill a thread
                    self.plots_note.value = f"<p class='memsnap-note'>Plots failed: {e!r}</p>"
                if not self._plots_stale:
                    return

        self._plot_thread = threading.Thread(target=work, name="memsnap-plots", daemon=True)
        self._plot_thread.start()

    def wait_for_plots(self, timeout: float | None = None) -> None:
        """Block until a background drawing of the plots tab has finished."""
        if self._plot_thread is not None:
            self._plot_thread.join(timeout)

    def _reset_and_render(self) -> None:
        self._page = 0
        self._render()

    # ------------------------------------------------------------ rendering
    def _describe(self, sel: Selection) -> str:
        """``rows 1–20 of 345 types (12 small hidden, 1.2 MB)``."""
        q = self.query
        what = GROUP_TITLES.get(q.group, q.group)
        if not len(sel):
            text = f"no {what} rows"
        else:
            size = int(self.page_size.value)
            first = self._page * size + 1
            last = min(first + size - 1, len(sel))
            text = f"rows {first:,}–{last:,} of {len(sel):,}"
            if len(sel) != sel.total_rows:
                text += f" (of {sel.total_rows:,} {what} rows)"
            else:
                text += f" {what} rows"
        if sel.hidden_small:
            text += f"; {sel.hidden_small:,} small hidden ({human_bytes(sel.hidden_bytes)})"
        if sel.literal:
            text += "; the filter is not a valid regex: matched as plain text"
        return text

    def summary_text(self) -> str:
        """One line: objects, heap, RSS and unattributed memory (their change in a diff)."""
        q = self.query
        snap = self.data.snapshots[q.snapshot]
        if q.baseline is None:
            where = _short(q.snapshot, snap) + (f" (In[{snap.cell}])" if snap.cell else "")
            unattributed = memory.unattributed(snap)
            return (
                f"{where}: {len(snap):,} objects · heap {human_bytes(snap.total_size)} · "
                f"RSS {human_bytes(snap.process.rss)} · "
                f"unattributed {human_bytes(unattributed)}"
            )
        base = self.data.snapshots[q.baseline]
        diff = self.data.source(q.snapshot, q.baseline)
        assert isinstance(diff, SnapshotDiff)
        unattributed = memory.unattributed(snap) - memory.unattributed(base)
        return (
            f"{_short(q.snapshot, snap)} compared to {_short(q.baseline, base)}: "
            f"objects {len(snap) - len(base):+,} ({len(diff.new_rows):,} new, "
            f"{len(diff.freed_rows):,} freed) · "
            f"heap {human_bytes(snap.total_size - base.total_size, signed=True)} · "
            f"RSS {human_bytes(snap.process.rss - base.process.rss, signed=True)} · "
            f"unattributed {human_bytes(unattributed, signed=True)}"
        )

    def _sides(self) -> tuple[str, str] | None:
        """How a diff's headers name its two snapshots (label, else number)."""
        q = self.query
        if not q.is_diff or q.baseline is None:
            return None
        snaps = self.data.snapshots
        return side_name(q.baseline, snaps[q.baseline].label), side_name(
            q.snapshot, snaps[q.snapshot].label
        )

    def _render(self) -> None:
        q = self.query
        sel = self.selection
        size = int(self.page_size.value)
        pages = max(1, -(-len(sel) // size))
        self._page = min(self._page, pages - 1)
        page = self._page_frame(sel)
        first = self._page * size + 1
        self.summary.value = f"<b>{html.escape(self.summary_text())}</b>"
        if self.error:
            self.table.value = f"<p class='memsnap-note'>{html.escape(self.error)}</p>"
        else:
            self.table.value = html_table(
                page, sort=q.sort, ascending=q.ascending, first=first, sides=self._sides()
            )
        self.status.value = f"<span class='memsnap-note'>{html.escape(self._describe(sel))}</span>"
        self.previous.disabled = self._page == 0
        self.next.disabled = self._page >= pages - 1
        names = [c for c in NAME_COLUMNS.get(q.group, ()) if c in page.columns]
        measure = sel.measure if sel.measure in page.columns else None
        options: list[tuple[str, int]] = [("(pick a row)", NO_ROW)]
        for i in range(len(page)):
            record = page.iloc[i]
            label = " · ".join(str(record[c]) for c in names if str(record[c]))
            if q.group in (*OBJECT_GROUPS, *DIFF_OBJECT_GROUPS):
                label += f" {int(record['id']):#x}"
            if measure is not None:
                signed = measure.endswith("_diff")
                label += f" ({human_bytes(record[measure], signed=signed)})"
            options.append((f"{first + i}. {label}", i))
        with self._quietly():
            self.row.options = options
            self.row.value = NO_ROW
        self._render_instances()

    def _render_instances(self) -> None:
        index = int(self.row.value)
        self._instances = pd.DataFrame()
        options: list[tuple[str, int]] = [("(pick an object)", NO_ROW)]
        pick = NO_ROW
        if index != NO_ROW:
            page = self._page_frame()
            record = page.iloc[index]
            number, rows, which = self.data.instance_rows(self.query, record, self.top_instances)
            self._instance_snapshot = number
            self._instances = self.data.instances(number, rows)
            found = self._instances
            for k, (obj_id, type_, retained) in enumerate(
                zip(found["id"].tolist(), found["type"], found["retained"].tolist(), strict=True)
            ):
                row = self.data.snapshots[number].row(int(obj_id))
                options.append((f"{int(obj_id):#x} {type_} ({human_bytes(retained)})", row))
                if k == 0:
                    pick = row
            title = (
                f"Largest {which + ' ' if which else ''}objects behind row "
                f"{self._page * int(self.page_size.value) + index + 1}"
                f" in snapshot {number} (by retained size)"
            )
            if len(self._instances):
                body = html_table(self._instances)
            else:
                body = "<p class='memsnap-note'>no objects to show for this row</p>"
            self.instances_html.value = f"<p><b>{html.escape(title)}</b></p>{body}"
        else:
            self.instances_html.value = ""
        with self._quietly():
            self.instance.options = options
            self.instance.value = pick
        self._render_paths()

    def _render_paths(self) -> None:
        row = int(self.instance.value)
        if row == NO_ROW:
            self._paths, self._contains = pd.DataFrame(), pd.DataFrame()
            self.paths_html.value = self.contains_html.value = ""
            return
        snap = self.data.snapshots[self._instance_snapshot]
        self._contains = contains_frame(snap, row)
        body = html_table(self._contains, empty="it refers to no object")
        self.contains_html.value = f"<p><b>What it refers to, by type</b></p>{body}"
        self._paths = self.data.paths(self._instance_snapshot, row, self.max_paths)
        title = "What keeps it alive: shortest paths from named roots, and the fix"
        body = html_table(
            self._paths, empty="no path from a named root (held from C or garbage in a cycle)"
        )
        self.paths_html.value = f"<p><b>{html.escape(title)}</b></p>{body}"

    def render_plots(self) -> None:
        """Draw the plots tab: memory over the snapshots and the largest types (or the
        largest changes of the diff). Runs when the tab is first shown and after a
        snapshot or baseline change while it is shown."""
        self._plots_stale = False
        if _plots is None:
            self.plots_note.value = (
                "<p class='memsnap-note'>Plots need jupyter_memsnap.views.plots (matplotlib).</p>"
            )
            return
        plots = _plots
        if "timeline" not in self._pngs:
            items = sorted(self.data.snapshots.items())
            history = history_table(items)
            sizes_of = getattr(plots, "type_sizes_table", None)
            sizes = sizes_of([s for _, s in items]) if sizes_of is not None else None
            self._pngs["timeline"] = _png(plots.timeline_figure(history, sizes))
        self.timeline_image.value = self._pngs["timeline"]
        q = self.query
        key = (q.snapshot, q.baseline)
        if key not in self._pngs:
            source = self.source
            if isinstance(source, SnapshotDiff):
                title = f"Largest changes by type, snapshot {q.baseline} → {q.snapshot}"
                figure = plots.growth_figure(source.types, title=title)
            else:
                title = f"Largest types, snapshot {q.snapshot}"
                figure = plots.types_figure(source.types, title=title)
            self._pngs[key] = _png(figure)
        self.bars_image.value = self._pngs[key]
        self.plots_note.value = ""

    # ------------------------------------------------------------ text and display
    def text(self) -> str:
        """The summary and the rows on show as plain text (for terminals and front ends
        that cannot render widgets)."""
        q = self.query
        sel = self.selection
        how = [f"by {GROUP_TITLES.get(q.group, q.group)}"]
        if q.sort:
            how.append(f"sorted by {q.sort} {'ascending' if q.ascending else 'descending'}")
        if q.pattern:
            how.append(f"filter {q.pattern!r}")
        if q.mine:
            how.append("just my code")
        if q.collapse:
            how.append("small collapsed")
        size = int(self.page_size.value)
        body = self.error or text_table(
            self._page_frame(sel), first=self._page * size + 1, sides=self._sides()
        )
        return f"{self.summary_text()}\n{', '.join(how)}; {self._describe(sel)}\n{body}"

    def static_html(self) -> str:
        """The summary and the rows on show as a static HTML table (what a saved notebook
        shows where the widget cannot be rendered)."""
        q = self.query
        sel = self.selection
        size = int(self.page_size.value)
        table = html.escape(self.error) or html_table(
            self._page_frame(sel),
            sort=q.sort,
            ascending=q.ascending,
            first=self._page * size + 1,
            sides=self._sides(),
        )
        return (
            f"{STYLE}<div class='memsnap memsnap-explorer memsnap-static'>"
            f"<p><b>{html.escape(self.summary_text())}</b></p>{table}"
            f"<p class='memsnap-note'>{html.escape(self._describe(sel))}</p></div>"
        )

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The live widget where it renders; else the text (``text/plain``) or the static
        table (``text/html``). ipywidgets' own ``text/plain`` is the VBox's repr cut at
        110 characters, which says nothing."""
        bundle: dict[str, Any] = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = self.text()
        bundle["text/html"] = self.static_html()
        return bundle

    def _ipython_display_(self) -> None:
        """Two outputs: the static table, then the widget. A front end that renders the
        widget prefers it to ``text/html``, so the table must be an output of its own to
        outlive the kernel: a notebook reopened without the widget's state shows the table,
        not "model not found". Each hides the other (CSS ``:has``) when the live widget is
        on the page."""
        from IPython import display as ipython_display

        display: Callable[..., object] = ipython_display.display
        bundle = self._repr_mimebundle_()
        table = bundle.pop("text/html")
        display(
            {"text/html": f"{FALLBACK_STYLE}<div class='memsnap-fallback'>{table}</div>"}, raw=True
        )
        display(bundle, raw=True)

    def close(self) -> None:
        """Close every widget (front ends drop the view) and forget the cached tables."""
        for w in _descendants(self.widget):
            w.close()
        self.data.clear()


def _descendants(root: Any) -> list[Any]:
    """The widget, its layout and style, and the same for its children, recursively."""
    out = [root]
    for attr in ("layout", "style"):
        part = getattr(root, attr, None)
        if isinstance(part, widgets.Widget):
            out.append(part)
    for child in getattr(root, "children", ()):
        out.extend(_descendants(child))
    return out
