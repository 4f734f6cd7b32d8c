"""Command line: ``python -m jupyter_memsnap demo``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jupyter_memsnap",
        description="Heap snapshots of Python processes as tables.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="build a sample data workload and snapshot it twice")
    demo.add_argument("--rows", type=int, default=200_000, help="rows in the sample DataFrame")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.rows <= 0:
            parser.error("--rows must be a positive integer")
        from .demo import run

        run(rows=args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
