"""The Python API: take a snapshot from a script, a notebook or a test."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .capture import guard
from .capture.edges import Label, name_path
from .capture.heap import (
    NamedRoot,
    RawHeap,
    RawRoot,
    capture,
    frame_locals_reader,
    last_walk_count,
    process_roots,
)
from .capture.interpreter import untraced
from .capture.process import read_process_memory
from .capture.values import probe
from .model.cluster import ClusterDiff, ClusterSnapshot
from .model.diff import SnapshotDiff
from .model.own import own_bytes
from .model.snapshot import ProcessMemory, Root, Snapshot, Traceback, TypeTable, file_lines
from .model.store import SnapshotStore
from .views.insights import insights_table
from .views.paths import Namer

MACHINERY_TYPES: tuple[type, ...] = (
    Snapshot,
    SnapshotStore,
    SnapshotDiff,
    ClusterSnapshot,
    ClusterDiff,
    ProcessMemory,
    TypeTable,
    Root,
    RawHeap,
    RawRoot,
)
"""Instances of these, and what only they reach, never appear in a snapshot."""


def machinery_types() -> tuple[type, ...]:
    """MACHINERY_TYPES, and the explorer once its module is imported (never imported here:
    it imports ipywidgets). Without it, an explorer's cached tables (tens of MB on a large
    heap) would show up in every later snapshot."""
    explorer = sys.modules.get("jupyter_memsnap.ui.explorer")
    return MACHINERY_TYPES + ((explorer.Explorer,) if explorer is not None else ())


def script_roots() -> list[NamedRoot]:
    """Outside IPython the user's variables are the globals of ``__main__`` (dunders and
    modules left out)."""
    main = sys.modules.get("__main__")
    names = vars(main) if main is not None else {}
    return [
        (name, "variable", value, (names,))
        for name, value in list(names.items())
        if not (name.startswith("__") and name.endswith("__")) and type(value).__name__ != "module"
    ]


def _ipython() -> object | None:
    mod = sys.modules.get("IPython")
    if mod is None:
        return None
    ip: object | None = mod.get_ipython()
    return ip


def default_roots() -> tuple[list[NamedRoot], int | None]:
    """The notebook's roots and the running cell's number in IPython, else the script's."""
    ip = _ipython()
    if ip is None:
        return script_roots(), None
    from .ipython.namespace import current_cell, notebook_roots

    return list(notebook_roots(ip)), current_cell(ip)


def path_namer(roots: Sequence[NamedRoot] | None = None) -> Namer:
    """Names the steps of paths from the live roots (``default_roots()`` and the process's
    modules, figures and frames): call it while showing paths, do not keep it (it holds the
    roots' objects)."""
    live: dict[str, object] = {}
    for root in [*(default_roots()[0] if roots is None else roots), *process_roots()]:
        live.setdefault(root[0], root[2])
    reader = frame_locals_reader()

    def namer(root: Root, ids: list[int]) -> list[Label | None]:
        obj = live.get(root.name)
        if obj is None or id(obj) != ids[0]:
            return [None] * (len(ids) - 1)
        return name_path(obj, ids[1:], reader)

    return namer


def insights(
    snap: Snapshot | None = None,
    *,
    series: Sequence[Snapshot] = (),
    roots: Sequence[NamedRoot] | None = None,
    budget: float = 0.4,
    censuses: Sequence[tuple[str, int]] = (),
) -> pd.DataFrame:
    """What to change to get memory back (see ``views.insights``), on ``snap`` (default: a
    fresh snapshot). The variables still alive with the same object are read for waste in
    their values, largest first, within ``budget`` seconds; ``series`` (earlier snapshots,
    oldest first) adds what grows every time, as do ``censuses`` (cells, heap bytes)."""
    if roots is None:
        roots = default_roots()[0]
    if snap is None:
        snap = take(roots=roots)
    retained = snap.retained
    variables = []
    for name, kind, value, *_ in roots:
        row = snap.row(id(value)) if kind == "variable" else -1
        if row >= 0:
            variables.append((int(retained[row]), name, value))
    variables.sort(key=lambda v: -v[0])
    findings = probe([(name, value) for _, name, value in variables], budget)
    del variables
    return insights_table(snap, findings, series, path_namer(roots), censuses)


def take(
    label: str = "",
    *,
    collect: bool = True,
    engine: str = "auto",
    roots: Sequence[NamedRoot] | None = None,
    exclude: Sequence[object] = (),
    born: Callable[[RawHeap], np.ndarray | None] | None = None,
    born_ranges: tuple[tuple[int, int], ...] = (),
    name_sites: Callable[[Sequence[Traceback]], Sequence[str]] = file_lines,
    force: bool = False,
    to_disk: bool | None = None,
    thread_labels: Mapping[int, str] | None = None,
) -> Snapshot:
    """Snapshot every live object of this process.

    In IPython the roots are the notebook's (variables, ``Out[n]``, holders), elsewhere the
    globals of ``__main__``; ``roots`` overrides both with ``(name, kind, object)`` triples
    (optionally a fourth item: the containers whose reference is that name).
    ``collect=False`` skips the ``gc.collect()`` that runs first. When tracemalloc is
    tracing, each object's allocation site is recorded (named by ``name_sites``); ``born``
    gives each row's cell of birth (``born_ranges``: values that stand for a range of
    cells). A snapshot that would not fit in the memory left raises
    :class:`NotEnoughMemory` before it starts (``force=True`` tries anyway), as does one that
    runs out of memory on the way. ``to_disk=True`` keeps every column in a file mapping the
    OS can drop (None: the graph when large, everything when keeping it in memory would
    take a tenth of the memory left; False: all in memory). ``thread_labels`` names
    threads' frames by ident instead of ``thread NAME`` (a Dask worker: the task each runs).
    """
    cell = None
    if roots is None:
        roots, cell = default_roots()
    if collect:
        gc.collect()
    with guard.guarded("snapshot", last_walk_count(), force), untraced():
        process = read_process_memory(own_bytes)  # before the walk: its buffers do not show
        raw = capture(
            roots,
            exclude_objects=exclude,
            exclude_types=machinery_types(),
            collect=False,
            engine=engine,
            sites=True,
            thread_labels=thread_labels,
            graph_to_file=to_disk is not False,
        )
        del roots
        if to_disk is None and guard.keep_on_disk(len(raw.order)):
            to_disk = True
        return Snapshot.from_raw(
            raw,
            process,
            label=label,
            cell=cell,
            born=born(raw) if born is not None else None,
            born_ranges=born_ranges,
            name_sites=name_sites,
            to_disk=to_disk,
        )


def census(
    roots: Sequence[NamedRoot],
    *,
    exclude: Sequence[object] = (),
    collect: bool = False,
    engine: str = "auto",
    force: bool = False,
) -> RawHeap:
    """A light snapshot for per-cell tracking: ids, types and sizes, no reference graph
    (refused like ``take`` when it would not fit)."""
    with guard.guarded("census", last_walk_count(), force), untraced():
        return capture(
            roots,
            exclude_objects=exclude,
            exclude_types=machinery_types(),
            collect=collect,
            engine=engine,
            edges=False,
        )
