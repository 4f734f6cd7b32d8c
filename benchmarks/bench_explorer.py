"""Time the snapshot explorer's re-render on a ~1 M-object heap, one control change at a time.

Usage (from the repository root):
    python benchmarks/bench_explorer.py [--objects 1000000] [--rounds 5]

The heap is heap_builder.build_heap(N) (records, class instances, strings, floats, a
DataFrame, numpy arrays) held by a few variables; snapshot 1 is taken, 10 % more strings
are added, snapshot 2 is taken. An Explorer over both is driven as a user would: grouping,
filter keystrokes, sort, paging, page size, "just my code", "collapse small", the baseline
(diff), the snapshot picker, a row and an object picked (drill-down), the plots tab.

Each step sets one widget's value (observers run synchronously, so the time is the whole
re-render: computing the rows and rebuilding the HTML). The sequence runs ``--rounds``
times from the same start: round 1 is "cold" (each table computed for the first time for
this explorer, though the snapshot's own caches such as retained sizes may already be
warm), later rounds show what a change costs when the explorer's caches can answer. The
target is 200 ms per change.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from heap_builder import build_heap, build_part  # noqa: E402

import jupyter_memsnap  # noqa: E402
from jupyter_memsnap.ui import Explorer  # noqa: E402

TARGET_MS = 200.0


def _set(widget: Any, value: Any) -> Callable[[Any], None]:
    def step(_: Explorer) -> None:
        widget.value = value

    return step


def steps(ex: Explorer) -> list[tuple[str, Callable[[Explorer], None]]]:
    """The control changes, in order; the sequence ends where it started."""

    def type_in(text: str) -> list[tuple[str, Callable[[Explorer], None]]]:
        return [
            (f"filter {text[: i + 1]!r}", _set(ex.filter, text[: i + 1])) for i in range(len(text))
        ]

    def pick_first_row(e: Explorer) -> None:
        e.row.value = 0

    def pick_second_object(e: Explorer) -> None:
        options = [v for _, v in e.instance.options]
        e.instance.value = options[min(2, len(options) - 1)]

    def next_page(e: Explorer) -> None:
        e.next.click()

    return [
        ("group module", _set(ex.group, "module")),
        ("group variable", _set(ex.group, "variable")),
        ("group holder", _set(ex.group, "holder")),
        ("group type", _set(ex.group, "type")),
        ("sort count", _set(ex.sort, "count")),
        ("order ascending", _set(ex.order, "ascending")),
        ("order descending", _set(ex.order, "descending")),
        ("sort default", _set(ex.sort, "")),
        *type_in("str"),
        ("filter cleared", _set(ex.filter, "")),
        ("collapse small on", _set(ex.collapse, True)),
        ("collapse small off", _set(ex.collapse, False)),
        ("just my code on", _set(ex.mine, True)),
        ("just my code off", _set(ex.mine, False)),
        ("pick a row (drill-down)", pick_first_row),
        ("pick an object (paths)", pick_second_object),
        ("group object (1 M rows)", _set(ex.group, "object")),
        ("object: next page", next_page),
        ("object: next page again", next_page),
        ("object: 100 rows a page", _set(ex.page_size, 100)),
        ("object: sort size", _set(ex.sort, "size")),
        ("object: ascending", _set(ex.order, "ascending")),
        ("object: descending", _set(ex.order, "descending")),
        ("object: sort default", _set(ex.sort, "")),
        ("object: 20 rows a page", _set(ex.page_size, 20)),
        *[(f"object: {name}", fn) for name, fn in type_in("ndarray")],
        ("object: filter cleared", _set(ex.filter, "")),
        ("object: just my code on", _set(ex.mine, True)),
        ("object: just my code off", _set(ex.mine, False)),
        ("object: pick a row", pick_first_row),
        ("group type again", _set(ex.group, "type")),
        ("compare to snapshot 1 (diff)", _set(ex.baseline, 1)),
        ("diff: group variable", _set(ex.group, "variable")),
        ("diff: group new objects", _set(ex.group, "new")),
        ("diff: group type", _set(ex.group, "type")),
        ("diff: pick a row", pick_first_row),
        ("compare to none", _set(ex.baseline, 0)),
        ("snapshot 1", _set(ex.snapshot, 1)),
        ("snapshot 2", _set(ex.snapshot, 2)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=float, default=1_000_000, help="objects to add")
    parser.add_argument("--rounds", type=int, default=5, help="times to run the sequence")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots tab")
    args = parser.parse_args()
    n = int(args.objects)

    t0 = time.perf_counter()
    ns: dict[str, Any] = {"heap": build_heap(n)}
    print(f"heap of ~{n:,} objects built in {time.perf_counter() - t0:.1f} s")

    def roots() -> list[tuple[str, str, object, tuple[object, ...]]]:
        out: list[tuple[str, str, object, tuple[object, ...]]] = []
        for name, value in ns["heap"].items():
            out.append((name, "variable", value, (ns["heap"],)))
        for name, value in ns.items():
            if name != "heap":
                out.append((name, "variable", value, (ns,)))
        return out

    gc.collect()
    t0 = time.perf_counter()
    first = jupyter_memsnap.take("before", roots=roots())
    print(f"snapshot 1: {len(first):,} objects in {time.perf_counter() - t0:.2f} s")
    ns["more_strings"] = build_part("strings", n)
    gc.collect()
    t0 = time.perf_counter()
    second = jupyter_memsnap.take("after", roots=roots())
    print(f"snapshot 2: {len(second):,} objects in {time.perf_counter() - t0:.2f} s")
    for snap in (first, second):  # the snapshot's own lazy work (dominators), not the UI's
        t0 = time.perf_counter()
        snap.retention  # noqa: B018
        print(f"retained sizes of {snap.label}: {time.perf_counter() - t0:.2f} s")

    t0 = time.perf_counter()
    ex = Explorer([(1, first), (2, second)])
    print(f"Explorer built and first render: {(time.perf_counter() - t0) * 1000:.0f} ms\n")

    sequence = steps(ex)
    times: dict[str, list[float]] = {name: [] for name, _ in sequence}
    for _ in range(args.rounds):
        for name, step in sequence:
            t0 = time.perf_counter()
            step(ex)
            times[name].append((time.perf_counter() - t0) * 1000)
            assert len(ex.view) <= int(ex.page_size.value), name
    plot_times: list[float] = []
    draw_times: list[float] = []
    if not args.no_plots:
        for _ in range(2):
            t0 = time.perf_counter()
            ex.tabs.selected_index = 1  # answers at once; a worker thread draws
            plot_times.append((time.perf_counter() - t0) * 1000)
            ex.wait_for_plots()
            draw_times.append((time.perf_counter() - t0) * 1000)
            ex.tabs.selected_index = 0
            ex._plots_stale = True
            ex._pngs.clear()

    width = max(len(name) for name in times) + 2
    print(f"{'control change':<{width}} {'cold ms':>9} {'warm median ms':>15}")
    slow = []
    for name, values in times.items():
        warm = statistics.median(values[1:]) if len(values) > 1 else values[0]
        flag = (
            "  SLOW" if warm > TARGET_MS else ("  slow when cold" if values[0] > TARGET_MS else "")
        )
        print(f"{name:<{width}} {values[0]:9.1f} {warm:15.1f}{flag}")
        if warm > TARGET_MS:
            slow.append(name)
    if plot_times:
        name = "plots tab shown (controls free)"
        print(f"{name:<{width}} {plot_times[0]:9.1f} {plot_times[-1]:15.1f}")
        name = "  figures drawn (worker thread)"
        print(f"{name:<{width}} {draw_times[0]:9.1f} {draw_times[-1]:15.1f}")
    all_warm = [statistics.median(v[1:]) if len(v) > 1 else v[0] for v in times.values()]
    print(
        f"\nmedian over all changes: {statistics.median(all_warm):.1f} ms (warm), "
        f"slowest warm: {max(all_warm):.1f} ms; target {TARGET_MS:.0f} ms per change"
    )
    if slow:
        print("over target when warm:", ", ".join(slow))
    ex.close()


if __name__ == "__main__":
    main()
