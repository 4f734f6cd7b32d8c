"""The ``%memsnap`` magic: thin glue that parses arguments, calls the model, shows views."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import shlex
import sys
import tracemalloc
from typing import Any

import pandas as pd
import psutil
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.display import display

from ..api import insights, path_namer, take
from ..arguments import positive_int as _positive_int
from ..capture.guard import NotEnoughMemory
from ..capture.process import peak_rss, reset_peak
from ..capture.values import MIN_BYTES
from ..model.allocator import malloc_trim
from ..model.cluster import ClusterDiff, ClusterSnapshot
from ..model.diff import SnapshotDiff
from ..model.files import SnapshotFileError
from ..model.snapshot import Snapshot
from ..model.store import SnapshotError, SnapshotStore
from ..views import memory
from ..views.columns import side_name
from ..views.diffs import growth_only, ranking
from ..views.format import human_bytes
from ..views.history import history_table
from ..views.html import Table
from ..views.paths import rows_of_type, similar_type_names, why_frame
from ..views.select import DIFF_GROUPS, SNAPSHOT_GROUPS, PatternError, filtered, grouped
from ..views.tables import NotRecorded
from .cells import CellTracker
from .namespace import current_cell, release_hidden_holders


def build_parser() -> MagicArgumentParser:
    """The argument grammar of ``%memsnap``; errors raise UsageError, never SystemExit."""
    parser = MagicArgumentParser(
        prog="memsnap",
        description="Heap snapshots of this kernel: every live object, counted once.",
        add_help=False,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    take_p = sub.add_parser("take", help="snapshot every live object now", add_help=False)
    take_p.add_argument("-l", "--label", default="", help="a name to refer to it by")
    take_p.add_argument("--no-gc", action="store_true", help="skip gc.collect() first")
    take_p.add_argument("-o", "--output", action="store_true", help="return the Snapshot")
    take_p.add_argument(
        "--force", action="store_true", help="even if it may not fit in the memory left"
    )
    take_p.add_argument(
        "--to-disk",
        action="store_true",
        help="keep it in a file mapping the OS can drop, not in the kernel's memory",
    )
    take_p.add_argument(
        "--dask",
        nargs="?",
        const="",
        default=None,
        metavar="CLIENT",
        help="snapshot every Dask worker instead (default: the current client)",
    )
    sub.add_parser("list", help="one row per snapshot, with the change since the previous")
    show_p = sub.add_parser("show", help="one snapshot as a table", add_help=False)
    show_p.add_argument(
        "snapshot", nargs="?", default="-1", help="number, label or -1 for the latest"
    )
    show_p.add_argument(
        "--by", choices=(*SNAPSHOT_GROUPS, "memory"), default="type", help="group rows by"
    )
    show_p.add_argument("--top", type=_positive_int, default=20, help="rows to show")
    show_p.add_argument("--filter", default=None, help="case-insensitive regex on names")
    show_p.add_argument(
        "--worker", default=None, help="of a cluster snapshot: bring this worker's in full"
    )
    show_p.add_argument("-o", "--output", action="store_true", help="return the DataFrame")
    diff_p = sub.add_parser("diff", help="what changed between two snapshots", add_help=False)
    diff_p.add_argument("a", help="the older snapshot: number, label or negative index")
    diff_p.add_argument("b", nargs="?", default="-1", help="the newer one (default: latest)")
    diff_p.add_argument("--by", choices=DIFF_GROUPS, default="type", help="group rows by")
    diff_p.add_argument("--top", type=_positive_int, default=20, help="rows to show")
    diff_p.add_argument("--filter", default=None, help="case-insensitive regex on names")
    diff_p.add_argument("--growth", action="store_true", help="only rows that grew")
    diff_p.add_argument("-o", "--output", action="store_true", help="return the SnapshotDiff")
    browse_p = sub.add_parser(
        "browse",
        help="explore snapshots in a widget (filter, sort, diff, drill down)",
        add_help=False,
    )
    browse_p.add_argument("a", nargs="?", default=None, help="snapshot to show (default: latest)")
    browse_p.add_argument("b", nargs="?", default=None, help="with B: B compared to A")
    browse_p.add_argument("--by", default="type", help="group rows by (type, variable, object…)")
    browse_p.add_argument("--top", type=_positive_int, default=20, help="rows per page")
    vars_p = sub.add_parser("vars", help="which variable holds the memory", add_help=False)
    vars_p.add_argument("snapshot", nargs="?", default=None, help="default: a fresh snapshot")
    vars_p.add_argument("--top", type=_positive_int, default=20, help="rows to show")
    insights_p = sub.add_parser(
        "insights", help="what to change to get memory back, with the code", add_help=False
    )
    insights_p.add_argument(
        "snapshot", nargs="?", default=None, help="default: a fresh snapshot (not stored)"
    )
    insights_p.add_argument("--top", type=_positive_int, default=20, help="rows to show")
    insights_p.add_argument("-o", "--output", action="store_true", help="return the DataFrame")
    why_p = sub.add_parser("why", help="what keeps an object alive", add_help=False)
    why_p.add_argument("expr", nargs="*", help="an expression in the user namespace")
    why_p.add_argument("--type", dest="type_name", default=None, help="a type's name instead")
    why_p.add_argument("--top", type=_positive_int, default=3, help="instances (with --type)")
    why_p.add_argument("--paths", type=_positive_int, default=3, help="paths per object")
    why_p.add_argument("-s", "--snapshot", default=None, help="a stored snapshot, not a fresh one")
    sub.add_parser("release", help="drop IPython's hidden references (changes state)")
    sub.add_parser("trim", help="gc.collect() and return free allocator memory to the OS")
    plot_p = sub.add_parser("plot", help="charts: timeline, growth between two, top types")
    plot_p.add_argument(
        "what", nargs="?", default="timeline", choices=("timeline", "diff", "types")
    )
    plot_p.add_argument("snapshots", nargs="*", help="diff: A [B]; types: [N]")
    plot_p.add_argument("--top", type=_positive_int, default=15, help="types to draw")
    save_p = sub.add_parser("save", help="write a snapshot to a file", add_help=False)
    save_p.add_argument("snapshot", help="number, label or -1")
    save_p.add_argument("path", help="file to write (replaced atomically)")
    load_p = sub.add_parser("load", help="read a snapshot file into the list", add_help=False)
    load_p.add_argument("path", help="a file written by %%memsnap save")
    auto_p = sub.add_parser("auto", help="a census after cells (cells of birth), cost bounded")
    auto_p.add_argument("state", choices=("on", "off"))
    auto_p.add_argument("--save", metavar="DIR", default=None, help="keep the latest on disk")
    auto_p.add_argument(
        "--every-cell",
        action="store_true",
        help="a census after every cell whatever it costs (each cell's births apart)",
    )
    trace_p = sub.add_parser("trace", help="record allocation sites with tracemalloc")
    trace_p.add_argument("state", choices=("on", "off"))
    trace_p.add_argument("--frames", type=_positive_int, default=10, help="frames per trace")
    sub.add_parser("clear", help="forget every snapshot")
    return parser


def build_cell_parser() -> MagicArgumentParser:
    """``%%memsnap [-l LABEL] [-q] [--top K]``: measure one cell."""
    parser = MagicArgumentParser(prog="%memsnap", add_help=False)
    parser.add_argument("-l", "--label", default="", help="label of the two snapshots")
    parser.add_argument("-q", "--quiet", action="store_true", help="one line, no table")
    parser.add_argument("--top", type=_positive_int, default=10, help="rows of the diff")
    return parser


PARSER = build_parser()
CELL_PARSER = build_cell_parser()


def _trim_hint(snap: Snapshot) -> None:
    """Say so when the allocators keep much memory free: `del` alone will not lower RSS."""
    kept = memory.free_kept(snap.process)
    if kept > memory.FREE_KEPT_LARGE * snap.process.rss:
        print(
            f"The allocators keep {human_bytes(kept)} free ({kept / snap.process.rss:.0%} of "
            "RSS): %memsnap trim returns what it can to the OS."
        )


def _unquoted(token: str) -> str:
    """A token that is one quoted string, without its quotes (a label, a type name)."""
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    return token


@magics_class
class MemsnapMagics(Magics):
    """Owns the session's snapshots; one instance per shell."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.store = SnapshotStore()
        self.tracker = CellTracker(shell)
        self.tracker.register()
        self.started_tracing = False

    def close(self) -> None:
        """Drop every snapshot, stop what this instance started, unregister its hook."""
        self.tracker.stop()
        self.tracker.unregister()
        if self.started_tracing and tracemalloc.is_tracing():
            tracemalloc.stop()
        self.store.clear()

    def _take(
        self,
        label: str = "",
        collect: bool = True,
        force: bool = False,
        to_disk: bool | None = None,
    ) -> Snapshot:
        return take(
            label=label,
            collect=collect,
            exclude=(self.tracker,),
            born=self.tracker.born,
            born_ranges=self.tracker.born_ranges(current_cell(self.shell)),
            name_sites=self.tracker.cells.site_labels,
            force=force,
            to_disk=to_disk,
        )

    @no_var_expand
    @line_cell_magic
    def memsnap(self, line: str = "", cell: str | None = None) -> Any:
        """Heap snapshots of this kernel as pandas DataFrames.

        %memsnap take [-l LABEL] [--no-gc] [-o] [--force] [--to-disk]   snapshot every object
        %memsnap take --dask [CLIENT] [-l LABEL] [-o]   every Dask worker's, kept on it
        %memsnap list                              one row per snapshot, with changes
        %memsnap show [N] [--by type|variable|module|holder] [--top K] [--filter PATTERN] [-o]
        %memsnap show N --worker ADDRESS           one worker's of a cluster snapshot, in full
        %memsnap diff A [B] [--by type|variable|module] [--growth] [--top K] [--filter P] [-o]
        %memsnap browse [A [B]] [--by G] [--top K] explorer widget (B compared to A)
        %memsnap vars [N] [--top K]                which variable holds the memory
        %memsnap why EXPR | --type NAME [--top K]  what keeps it alive, and the fix
        %memsnap insights [N] [--top K] [-o]       what to change to get memory back
        %memsnap release                           drop IPython's hidden references
        %memsnap plot [timeline | diff A [B] | types [N]] [--top K]   charts
        %memsnap save N PATH | load PATH           snapshot files (python -m jupyter_memsnap)
        %memsnap auto on [--save DIR] [--every-cell]|off   a census after cells
        %memsnap trace on [--frames N]|off         allocation sites (tracemalloc)
        %memsnap clear                             forget every snapshot
        %%memsnap [-l LABEL] [-q] [--top K]        what one cell left behind, and its peak
        """
        try:
            argv = shlex.split(line)
            if argv[:1] == ["why"]:  # keep the quotes of an expression: d['key']
                argv = [_unquoted(t) for t in shlex.split(line, posix=False)]
        except ValueError as e:
            raise UsageError(f"%memsnap: cannot parse {line!r}: {e}") from None
        if cell is None and not argv:
            print(PARSER.format_help())
            return None
        args = (PARSER if cell is None else CELL_PARSER).parse_args(argv)
        command = "%memsnap " + args.command if cell is None else "%%memsnap"
        try:
            if cell is not None:
                return self._measure_cell(args, cell)
            return getattr(self, f"_cmd_{args.command}")(args)
        except MemoryError as e:  # refused, or ran out on the way: the kernel lives on
            gc.collect()
            reason = str(e) if isinstance(e, NotEnoughMemory) else "ran out of memory"
            raise UsageError(f"{command}: {reason}") from None

    # ---------------------------------------------------------------- subcommands
    def _cmd_take(self, args: argparse.Namespace) -> Snapshot | ClusterSnapshot | None:
        if args.dask is not None:
            return self._take_cluster(args)
        snap = self._take(
            label=args.label,
            collect=not args.no_gc,
            force=args.force,
            to_disk=args.to_disk or None,
        )
        number = self.store.add(snap)
        row = history_table(self.store).loc[lambda d: d["snapshot"] == str(number)]
        display(Table(row, f"Snapshot {number} taken"))
        return snap if args.output else None

    def _client(self, expr: str) -> Any:
        if not expr:
            return None
        try:
            return self.shell.ev(expr)  # type: ignore[union-attr]
        except Exception as e:
            raise UsageError(f"--dask: cannot evaluate {expr!r}: {e!r}") from None

    def _take_cluster(self, args: argparse.Namespace) -> ClusterSnapshot | None:
        from .. import dask as cluster_api

        if args.to_disk or args.no_gc or args.force:
            raise UsageError("--dask takes only --label and -o")
        try:
            snap = cluster_api.take(self._client(args.dask), label=args.label)
        except cluster_api.ClusterError as e:
            raise UsageError(f"%memsnap take --dask: {e}") from None
        number = self.store.add(snap)
        display(Table(snap.workers, f"Snapshot {number}: {snap!r}"))
        return snap if args.output else None

    def _cmd_plot(self, args: argparse.Namespace) -> None:
        from ..views import plots

        refs = args.snapshots
        if args.what == "timeline":
            if refs:
                raise UsageError("%memsnap plot timeline takes no snapshot numbers")
            if len(self.store) + len(self.tracker.rows) == 0:
                raise UsageError("nothing to plot yet: %memsnap take (or %memsnap auto on)")
            history = history_table(self.store, self.tracker.rows)
            history["label"] = [
                f"#{n} {lab}".strip() if n else c
                for n, lab, c in zip(
                    history["snapshot"], history["label"], history["cell"], strict=True
                )
            ]
            sizes = None
            if not self.tracker.rows:
                sizes = plots.type_sizes_table(snap for _, snap in self.store)
            display(plots.timeline_figure(history, sizes, top=min(args.top, 8)))
        elif args.what == "diff":
            if len(refs) not in (1, 2):
                raise UsageError("%memsnap plot diff A [B]: one or two snapshots")
            (na, a), (nb, b) = (
                self._snapshot(refs[0]),
                self._snapshot(refs[1] if len(refs) > 1 else "-1"),
            )
            title = f"Largest growth, snapshot {na} → {nb}"
            display(plots.growth_figure(b.diff(a).types, top=args.top, title=title))
        else:
            if len(refs) > 1:
                raise UsageError("%memsnap plot types [N]: at most one snapshot")
            number, snap = self._snapshot(refs[0] if refs else "-1")
            title = f"Largest types in snapshot {number}"
            display(plots.types_figure(snap.types, top=args.top, title=title))

    def _cmd_save(self, args: argparse.Namespace) -> None:
        number, snap = self._snapshot(args.snapshot)
        try:
            snap.save(args.path)
        except SnapshotFileError as e:
            raise UsageError(str(e)) from None
        print(f"Saved snapshot {number} to {args.path} ({os.path.getsize(args.path):,} bytes).")

    def _cmd_load(self, args: argparse.Namespace) -> None:
        try:
            snap = Snapshot.load(args.path)
        except SnapshotFileError as e:
            raise UsageError(str(e)) from None
        number = self.store.add(snap)
        print(f"Loaded {args.path} as snapshot {number}: {snap!r}")

    def _cmd_auto(self, args: argparse.Namespace) -> None:
        if args.state == "off":
            if args.save or args.every_cell:
                raise UsageError("--save and --every-cell go with 'auto on'")
            self.tracker.stop()
            print("Per-cell census off.")
            return
        if args.save:
            try:
                os.makedirs(args.save, exist_ok=True)
            except OSError as e:
                raise UsageError(f"cannot use {args.save!r} for --save: {e.strerror}") from None
        self.tracker.save_dir = args.save
        self.tracker.every_cell = args.every_cell
        row = self.tracker.start(current_cell(self.shell) or 0)
        where = f"; the latest is kept in {args.save}" if args.save else ""
        when = (
            "after every cell"
            if args.every_cell
            else f"after a cell when it costs at most {self.tracker.budget()}"
        )
        print(
            f"Per-cell census on: {when} ({row.objects:,} objects now, census took "
            f"{row.seconds:.2f} s){where}. Objects alive now count as 'before tracking'."
        )

    def _cmd_trace(self, args: argparse.Namespace) -> None:
        if args.state == "off":
            if tracemalloc.is_tracing():
                tracemalloc.stop()
            self.started_tracing = False
            print("Allocation tracing off (sites recorded so far are kept in the snapshots).")
            return
        if tracemalloc.is_tracing():
            print(f"tracemalloc is already tracing ({tracemalloc.get_traceback_limit()} frames).")
            return
        tracemalloc.start(args.frames)
        self.started_tracing = True
        print(
            f"Allocation tracing on ({args.frames} frames): snapshots now name where objects "
            "were allocated (show/diff --by site). Tracing slows allocation and uses memory "
            "per live allocation; turn it off with %memsnap trace off."
        )

    def _measure_cell(self, args: argparse.Namespace, cell: str) -> None:
        label = args.label or f"In[{current_cell(self.shell)}]"
        before = self._take(f"{label} before")
        n_before = self.store.add(before)
        peak = self._run_for_peak(cell)
        after = self._take(f"{label} after")
        n_after = self.store.add(after)
        diff = after.diff(before)
        title = (
            f"{label} left behind {human_bytes(after.total_size - before.total_size, signed=True)}"
            f" in {len(after) - len(before):+,} objects; peak "
            f"{human_bytes(max(peak, 0), signed=True)} above the start while it ran "
            f"(snapshots {n_before} and {n_after})"
        )
        if args.quiet:
            print(title)
        else:
            display(Table(diff.types.head(args.top), title))

    def _run_for_peak(self, cell: str) -> int:
        """Run the cell; how far memory rose above where it started while it ran. On Linux
        the RSS high-water mark, free; elsewhere tracemalloc's peak (it slows the cell)."""
        start = int(psutil.Process().memory_info().rss)
        if reset_peak():
            censuses = len(self.tracker.rows)
            try:
                self.shell.run_cell(cell, store_history=False)  # type: ignore[union-attr]
            finally:
                fresh = self.tracker.rows[censuses:]  # auto mode: read before its census
                high = fresh[-1].peak if fresh and fresh[-1].peak else peak_rss()
            return (high or start) - start
        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start(1)
        traced_before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        try:
            self.shell.run_cell(cell, store_history=False)  # type: ignore[union-attr]
        finally:
            peak = tracemalloc.get_traced_memory()[1] - traced_before
            if started:
                tracemalloc.stop()
        return peak

    def _cmd_list(self, args: argparse.Namespace) -> None:
        if not len(self.store) and not self.tracker.rows:
            print("No snapshots yet: take one with %memsnap take (or %memsnap auto on)")
            return
        table = history_table(self.store, self.tracker.rows, self.store.clusters())
        censuses = sum(r.objects is not None for r in self.tracker.rows)
        title = f"{len(self.store)} snapshots, {censuses} cell censuses"
        spent, ran, cells = self.tracker.overhead()
        if cells:
            share = f", {spent / ran:.1%} of the cells' time" if ran else ""
            title += f"; auto mode cost {spent * 1000 / cells:.0f} ms per cell{share}"
        display(Table(table, title))

    def _snapshot(self, ref: str) -> tuple[int, Snapshot]:
        number = self._number(ref)
        try:
            return number, self.store.get(number)
        except SnapshotError as e:
            raise UsageError(str(e)) from None

    def _grouped(self, source: Snapshot | SnapshotDiff, args: argparse.Namespace) -> pd.DataFrame:
        try:
            return filtered(grouped(source, args.by), args.filter, args.by)
        except PatternError as e:
            raise UsageError(f"--filter {e}") from None
        except NotRecorded as e:
            raise UsageError(str(e)) from None

    def _show_cluster(self, args: argparse.Namespace) -> pd.DataFrame | None:
        from .. import dask as cluster_api

        number = self._number(args.snapshot)
        cluster = self.store.get_cluster(number)
        if args.worker is None:
            top = args.top
            display(Table(cluster.workers, f"Snapshot {number}: {cluster!r}"))
            display(Table(cluster.tasks.head(top), "Task results: our retained vs Dask's sizeof"))
            display(Table(cluster.variables.head(top), "Module globals on the workers"))
            return cluster.workers if args.output else None
        try:
            snap = cluster_api.fetch(cluster, args.worker)
        except cluster_api.ClusterError as e:
            raise UsageError(f"%memsnap show --worker: {e}") from None
        label = f"{cluster.label or f'#{number}'} worker {args.worker}"
        fetched = self.store.add(dataclasses.replace(snap, label=label))
        print(f"Worker {args.worker} of snapshot {number} is snapshot {fetched} here.")
        args.snapshot, args.worker = str(fetched), None
        return self._cmd_show(args)

    def _number(self, ref: str) -> int:
        try:
            return self.store.number_of(ref)
        except SnapshotError as e:
            raise UsageError(str(e)) from None

    def _cmd_show(self, args: argparse.Namespace) -> pd.DataFrame | None:
        if self.store.is_cluster(self._number(args.snapshot)):
            return self._show_cluster(args)
        if args.worker is not None:
            raise UsageError("--worker goes with a cluster snapshot (%memsnap take --dask)")
        number, snap = self._snapshot(args.snapshot)
        label = f" {snap.label!r}" if snap.label else ""
        heading = (
            f"Snapshot {number}{label}: {len(snap):,} objects, "
            f"{human_bytes(snap.total_size)} in objects, RSS {human_bytes(snap.process.rss)}"
        )
        if args.by == "memory":
            df = snap.memory
            display(Table(df, f"{heading}; where RSS is (level-1 rows add up to it)"))
        else:
            df = self._grouped(snap, args)
            shown = df.head(args.top).reset_index(drop=True)
            display(Table(shown, f"{heading}; top {len(shown)} of {len(df):,} by {args.by}"))
        _trim_hint(snap)
        return df if args.output else None

    def _diff_clusters(self, args: argparse.Namespace) -> ClusterDiff | None:
        na, nb = self._number(args.a), self._number(args.b)
        diff = self.store.get_cluster(nb).diff(self.store.get_cluster(na))
        sides = (side_name(na, diff.before.label), side_name(nb, diff.after.label))
        display(Table(diff.workers, f"Snapshot {na} → {nb}, by worker", sides=sides))
        tasks = diff.tasks.head(args.top)
        display(Table(tasks, f"By task key, top {len(tasks)}", sides=sides))
        return diff if args.output else None

    def _cmd_diff(self, args: argparse.Namespace) -> SnapshotDiff | ClusterDiff | None:
        clusters = [self.store.is_cluster(self._number(r)) for r in (args.a, args.b)]
        if all(clusters):
            return self._diff_clusters(args)
        if any(clusters):
            raise UsageError("%memsnap diff: compare two cluster snapshots, or two of this kernel")
        (na, a), (nb, b) = self._snapshot(args.a), self._snapshot(args.b)
        diff = b.diff(a)
        df = self._grouped(diff, args)
        if args.growth:
            df = growth_only(df)
        shown = df.head(args.top).reset_index(drop=True)
        title = (
            f"Snapshot {na} → {nb}: objects {len(b) - len(a):+,} "
            f"({len(diff.new_rows):,} new, {len(diff.freed_rows):,} freed), "
            f"heap {human_bytes(b.total_size - a.total_size, signed=True)}, "
            f"RSS {human_bytes(b.process.rss - a.process.rss, signed=True)}; "
            f"top {len(shown)} of {len(df):,} by {args.by}, {ranking(args.growth)}"
        )
        display(Table(shown, title, sides=(side_name(na, a.label), side_name(nb, b.label))))
        return diff if args.output else None

    def _cmd_browse(self, args: argparse.Namespace) -> None:
        if not len(self.store):
            print("No snapshots yet: take one with %memsnap take")
            return
        from ..ui.explorer import Explorer

        if args.b is None:
            snapshot = None if args.a is None else self._snapshot(args.a)[0]
            baseline = None
        else:
            baseline, snapshot = self._snapshot(args.a)[0], self._snapshot(args.b)[0]
        try:
            explorer = Explorer(self.store, snapshot, baseline, group=args.by, page_size=args.top)
        except ValueError as e:
            raise UsageError(f"%memsnap browse: {e}") from None
        display(explorer)

    def _cmd_vars(self, args: argparse.Namespace) -> None:
        if args.snapshot is None:
            snap, where = self._take(), "a fresh snapshot (not stored)"
        else:
            number, snap = self._snapshot(args.snapshot)
            where = f"snapshot {number}"
        df = snap.variables
        title = (
            f"Variables in {where}, by what `del name` would free (retained); "
            f"{human_bytes(int(df['retained'].sum()))} in {len(df)} variables"
        )
        display(Table(df.head(args.top), title))

    def _cmd_insights(self, args: argparse.Namespace) -> pd.DataFrame | None:
        stored = [snap for _, snap in self.store]
        if args.snapshot is None:
            snap, where, series = self._take(), "a fresh snapshot (not stored)", stored
        else:
            number, snap = self._snapshot(args.snapshot)
            where = f"snapshot {number}"
            series = [s for n, s in self.store if n < number]
        censuses = [
            (r.cells, r.heap)
            for r in self.tracker.rows
            if r.heap is not None and r.taken_at <= snap.taken_at
        ]
        df = insights(snap, series=series, censuses=censuses)
        if df.empty:
            print(f"No insights in {where}: nothing found worth {human_bytes(MIN_BYTES)}.")
        else:
            title = (
                f"Insights in {where}: {human_bytes(int(df['bytes'].sum()))} to get back "
                f"in {len(df)} changes (bytes: what the fix saves)"
            )
            display(Table(df.head(args.top), title))
        return df if args.output else None

    def _cmd_why(self, args: argparse.Namespace) -> None:
        expr = " ".join(args.expr).strip()
        if bool(expr) == bool(args.type_name):
            raise UsageError("%memsnap why: give an expression or --type NAME (not both)")
        target_id, what = None, args.type_name
        if expr:
            try:
                value = self.shell.ev(expr)  # type: ignore[union-attr]
            except Exception as e:
                raise UsageError(f"%memsnap why: cannot evaluate {expr!r}: {e!r}") from None
            target_id, what = id(value), f"{expr} ({type(value).__qualname__})"
            # only this name and getrefcount's argument: a temporary (asked before a
            # snapshot, whose own allocations may reuse its address once it is freed)
            temporary = sys.getrefcount(value) <= 2
            del value  # our own reference must not show up as a path
            if temporary and args.snapshot is None:
                print(f"Nothing keeps {what} alive: it was a temporary, freed after evaluation.")
                return
        snap = self._take() if args.snapshot is None else self._snapshot(args.snapshot)[1]
        if target_id is not None:
            row = snap.row(target_id)
            if row < 0:
                print(f"Nothing keeps {what} alive: it was a temporary, freed after evaluation.")
                return
            rows = [row]
        else:
            rows = rows_of_type(snap, args.type_name, args.top)
            if not rows:
                close = similar_type_names(snap, args.type_name)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise UsageError(f"%memsnap why: no objects of type {args.type_name!r}{hint}")
        df = why_frame(snap, rows, max_paths=args.paths, namer=path_namer())
        display(Table(df, f"Why is {what} alive? Shortest paths from named roots"))
        _trim_hint(snap)

    def _cmd_release(self, args: argparse.Namespace) -> None:
        before = take()
        cleared = release_hidden_holders(self.shell)
        after = take()
        freed = before.total_size - after.total_size
        print(
            f"Released {', '.join(cleared)}: {human_bytes(freed)} of objects freed "
            f"({len(before) - len(after):,} objects); RSS "
            f"{human_bytes(after.process.rss - before.process.rss, signed=True)}."
        )

    def _cmd_trim(self, args: argparse.Namespace) -> None:
        before = psutil.Process().memory_info().rss
        collected = gc.collect()
        trimmed = malloc_trim()
        after = psutil.Process().memory_info().rss
        how = "gc.collect() and malloc_trim(0)" if trimmed else "gc.collect() (no glibc here)"
        print(
            f"{how}: RSS {human_bytes(before)} → {human_bytes(after)} "
            f"({human_bytes(after - before, signed=True)}; {collected:,} unreachable objects)."
        )

    def _cmd_clear(self, args: argparse.Namespace) -> None:
        tokens = [c.token for _, c in self.store.clusters()]
        n = self.store.clear()
        print(f"Forgot {n} snapshot{'s' if n != 1 else ''}.")
        if tokens:
            from .. import dask as cluster_api

            try:
                freed = cluster_api.release(tokens)
            except cluster_api.ClusterError as e:  # the cluster is gone, and what it kept
                print(f"Could not reach the workers to free their snapshots: {e}")
                return
            print(
                f"Freed {human_bytes(sum(freed.values()))} of snapshots kept on "
                f"{len(freed)} workers."
            )


MemsnapMagics.memsnap.__doc__ = (MemsnapMagics.memsnap.__doc__ or "") + "\n" + PARSER.format_help()
