"""Command line: ``python -m jupyter_memsnap demo | show FILE | diff FILE_A FILE_B``.

``show`` and ``diff`` read snapshot files (``Snapshot.save``). Errors print one line
``error: ...`` on stderr: exit status 2 for bad arguments, 1 for a bad file.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import IO, TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import pandas as pd

    from .model.diff import SnapshotDiff
    from .model.snapshot import Snapshot

from .arguments import positive_int as _positive_int
from .views.select import DIFF_GROUPS, SNAPSHOT_GROUPS

FORMATS = ("table", "csv", "json")
TABLE_TOP = 20


class CommandError(Exception):
    """A failure to report as one ``error:`` line with exit status ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit 2), not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m jupyter_memsnap",
        description="Heap snapshots of Python processes as tables.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="build a sample data workload and snapshot it twice")
    demo.add_argument("--rows", type=int, default=200_000, help="rows in the sample DataFrame")

    show = sub.add_parser(
        "show",
        help="one saved snapshot as a table",
        description="Show a saved snapshot grouped by type, variable, module or holder. FILE "
        "may be a directory: its most recently written snapshot file is shown.",
    )
    show.add_argument("file", metavar="FILE", help="a snapshot file, or a directory of them")
    _add_table_options(show, SNAPSHOT_GROUPS)

    diff = sub.add_parser(
        "diff",
        help="what changed between two saved snapshots",
        description="Compare two saved snapshots of one process: objects are the same when "
        "id and type match. Rows are sorted by the size of the change, growth and "
        "shrinkage alike, largest first (--growth: only what grew).",
    )
    diff.add_argument("file_a", metavar="FILE_A", help="the older snapshot file")
    diff.add_argument("file_b", metavar="FILE_B", help="the newer snapshot file")
    diff.add_argument("--growth", action="store_true", help="only rows that grew")
    _add_table_options(diff, DIFF_GROUPS)
    return parser


def _add_table_options(parser: argparse.ArgumentParser, groups: tuple[str, ...]) -> None:
    parser.add_argument(
        "--by", choices=groups, default="type", help="group rows by (default: type)"
    )
    parser.add_argument(
        "--top",
        type=_positive_int,
        default=None,
        metavar="K",
        help=f"rows to show (default: {TABLE_TOP} for a table, all for csv and json)",
    )
    parser.add_argument(
        "--filter", default=None, metavar="PATTERN", help="case-insensitive regex on names"
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.rows <= 0:
            parser.error("--rows must be a positive integer")
        from .demo import run

        run(rows=args.rows)
        return 0
    try:
        text = _show(args) if args.command == "show" else _diff(args)
        _write(sys.stdout, text)
    except CommandError as e:
        sys.stderr.write(f"error: {' '.join(str(e).split())}\n")
        return e.status
    except BrokenPipeError:
        # the reader went away (``| head``): stop quietly, without a second error at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as e:  # a bug, not the user's fault: still one line, no traceback
        if os.environ.get("MEMSNAP_DEBUG"):
            raise
        message = " ".join(f"{type(e).__name__}: {e}".split())
        sys.stderr.write(f"error: internal error ({message}); MEMSNAP_DEBUG=1 shows where\n")
        return 1
    return 0


def _load(path: str, *, allow_directory: bool = False) -> tuple[str, Snapshot]:
    from .model.files import SnapshotFileError, load_snapshot, newest_snapshot_file

    try:
        if allow_directory and os.path.isdir(path):
            path = newest_snapshot_file(path)
        return path, load_snapshot(path)
    except SnapshotFileError as e:
        raise CommandError(str(e)) from None


def _table(source: Snapshot | SnapshotDiff, args: argparse.Namespace) -> pd.DataFrame:
    from .views.select import PatternError, filtered, grouped

    try:
        frame = grouped(source, args.by)
    except ValueError as e:
        raise CommandError(f"--by {args.by}: {e}") from None
    try:
        return filtered(frame, args.filter, args.by)
    except PatternError as e:
        raise CommandError(f"--filter {e}", status=2) from None


def _show(args: argparse.Namespace) -> str:
    from .views.format import human_bytes

    path, snap = _load(args.file, allow_directory=True)
    df = _table(snap, args)
    shown, top = _top(df, args)
    label = f" {snap.label!r}" if snap.label else ""
    cell = f", after In[{snap.cell}]" if snap.cell is not None else ""
    title = (
        f"{path}:{label} {len(snap):,} objects, {human_bytes(snap.total_size)} in objects, "
        f"RSS {human_bytes(snap.process.rss)}, taken {snap.taken_at:%Y-%m-%d %H:%M:%S}{cell}; "
        f"{top} of {len(df):,} by {args.by}"
    )
    if os.path.isdir(args.file):
        from .model.postmortem import read_marker

        running = read_marker(args.file)
        if running is not None and (snap.cell is None or running.cell > snap.cell):
            title = (
                f"The last cell started was In[{running.cell}] at "
                f"{running.started:%H:%M:%S} and did not finish: {running.code}\n{title}"
            )
    return _render(shown, title, args.format)


def _diff(args: argparse.Namespace) -> str:
    from .views.diffs import growth_only, ranking
    from .views.format import human_bytes

    path_a, a = _load(args.file_a)
    path_b, b = _load(args.file_b)
    diff = b.diff(a)
    df = _table(diff, args)
    if args.growth:
        df = growth_only(df)
    shown, top = _top(df, args)
    title = (
        f"{path_a} -> {path_b}: objects {len(b) - len(a):+,} "
        f"({len(diff.new_rows):,} new, {len(diff.freed_rows):,} freed), "
        f"heap {human_bytes(b.total_size - a.total_size, signed=True)}, "
        f"RSS {human_bytes(b.process.rss - a.process.rss, signed=True)}; "
        f"{top} of {len(df):,} by {args.by}, {ranking(args.growth)}"
    )
    return _render(shown, title, args.format)


def _top(df: pd.DataFrame, args: argparse.Namespace) -> tuple[pd.DataFrame, str]:
    k = args.top if args.top is not None else (TABLE_TOP if args.format == "table" else None)
    shown = df if k is None else df.head(k)
    return shown.reset_index(drop=True), ("all" if len(shown) == len(df) else f"top {len(shown)}")


def _render(df: pd.DataFrame, title: str, fmt: str) -> str:
    if fmt == "csv":
        text: str = df.to_csv(index=False)
        return text
    if fmt == "json":
        return f"{df.to_json(orient='records')}\n"
    from .views.format import for_display

    body = for_display(df).to_string(index=False) if len(df) else "(no rows)"
    return f"{title}\n{body}\n"


def _write(stream: IO[str], text: str) -> None:
    """Write text the terminal's encoding cannot show with escapes instead of failing."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
    stream.flush()


if __name__ == "__main__":
    sys.exit(main())
