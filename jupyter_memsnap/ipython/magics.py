"""The ``%memsnap`` magic: thin glue that parses arguments, calls the model, shows views."""

from __future__ import annotations

import argparse
import re
import shlex
from typing import Any

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.display import display

from ..api import take
from ..model.snapshot import Snapshot
from ..model.store import SnapshotError, SnapshotStore
from ..views.format import for_display, human_bytes
from ..views.history import history_table

BY_CHOICES = ("type", "variable", "module")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    return value


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
    sub.add_parser("list", help="one row per snapshot, with the change since the previous")
    show_p = sub.add_parser("show", help="one snapshot as a table", add_help=False)
    show_p.add_argument(
        "snapshot", nargs="?", default="-1", help="number, label or -1 for the latest"
    )
    show_p.add_argument("--by", choices=BY_CHOICES, default="type", help="group rows by")
    show_p.add_argument("--top", type=_positive_int, default=20, help="rows to show")
    show_p.add_argument("--filter", default=None, help="case-insensitive regex on names")
    show_p.add_argument("-o", "--output", action="store_true", help="return the DataFrame")
    sub.add_parser("clear", help="forget every snapshot")
    return parser


PARSER = build_parser()


def _filter(df: pd.DataFrame, pattern: str | None, columns: list[str]) -> pd.DataFrame:
    if not pattern:
        return df
    try:
        rx = re.compile(pattern, re.IGNORECASE)
    except re.error as e:
        raise UsageError(f"--filter {pattern!r} is not a valid pattern: {e}") from None
    hit = pd.Series(False, index=df.index)
    for col in columns:
        hit |= df[col].astype(str).map(lambda s: rx.search(s) is not None)
    return df[hit]


@magics_class
class MemsnapMagics(Magics):
    """Owns the session's snapshots; one instance per shell."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.store = SnapshotStore()

    def close(self) -> None:
        """Drop every snapshot and unregister every hook this instance registered."""
        self.store.clear()

    @no_var_expand
    @line_magic
    def memsnap(self, line: str = "") -> Any:
        """Heap snapshots of this kernel as pandas DataFrames.

        %memsnap take [-l LABEL] [--no-gc] [-o]   snapshot every live object
        %memsnap list                              one row per snapshot, with changes
        %memsnap show [N] [--by type|variable|module] [--top K] [--filter PATTERN] [-o]
        %memsnap clear                             forget every snapshot
        """
        try:
            argv = shlex.split(line)
        except ValueError as e:
            raise UsageError(f"%memsnap: cannot parse {line!r}: {e}") from None
        if not argv:
            print(PARSER.format_help())
            return None
        args = PARSER.parse_args(argv)
        return getattr(self, f"_cmd_{args.command}")(args)

    # ---------------------------------------------------------------- subcommands
    def _cmd_take(self, args: argparse.Namespace) -> Snapshot | None:
        snap = take(label=args.label, collect=not args.no_gc)
        number = self.store.add(snap)
        row = history_table(self.store).loc[lambda d: d["snapshot"] == number]
        display(for_display(row.reset_index(drop=True)))
        return snap if args.output else None

    def _cmd_list(self, args: argparse.Namespace) -> None:
        if not len(self.store):
            print("No snapshots yet: take one with %memsnap take")
            return
        display(for_display(history_table(self.store)))

    def _snapshot(self, ref: str) -> tuple[int, Snapshot]:
        try:
            number = self.store.number_of(ref)
        except SnapshotError as e:
            raise UsageError(str(e)) from None
        return number, self.store.get(number)

    def _cmd_show(self, args: argparse.Namespace) -> pd.DataFrame | None:
        number, snap = self._snapshot(args.snapshot)
        if args.by == "type":
            df = _filter(snap.types, args.filter, ["type", "module"])
        elif args.by == "module":
            df = _filter(snap.modules, args.filter, ["module"])
        else:
            df = _filter(snap.variables, args.filter, ["name", "type"])
        shown = df.head(args.top).reset_index(drop=True)
        label = f" {snap.label!r}" if snap.label else ""
        print(
            f"Snapshot {number}{label}: {len(snap):,} objects, "
            f"{human_bytes(snap.total_size)} in objects, RSS {human_bytes(snap.process.rss)}; "
            f"top {len(shown)} of {len(df):,} by {args.by}"
        )
        display(for_display(shown))
        return df if args.output else None

    def _cmd_clear(self, args: argparse.Namespace) -> None:
        n = self.store.clear()
        print(f"Forgot {n} snapshot{'s' if n != 1 else ''}.")


MemsnapMagics.memsnap.__doc__ = (MemsnapMagics.memsnap.__doc__ or "") + "\n" + PARSER.format_help()
