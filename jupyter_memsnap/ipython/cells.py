"""Cells: which code file is which cell, and after which cell each object first appeared.

Plain IPython names a cell's code ``<ipython-input-N-hash>``; ipykernel names it
``<tmp>/ipykernel_<pid>/<hash>.py`` from the cell text alone, so identical cells share a
name. Both come from ``ip.compile.get_code_name``, recorded in ``post_run_cell``.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psutil

from ..capture.heap import RawHeap
from ..capture.process import peak_rss, reset_peak
from ..model import own
from ..model.merges import inherit
from ..model.snapshot import Frame, Traceback, name_by_frame
from ..views.tables import cell_label

_PLAIN_CELL = re.compile(r"<ipython-input-(\d+)-[0-9a-f]+>")
BEFORE_TRACKING = 0
"""The ``born`` value of objects that existed when tracking started."""


class CellMap:
    """Code filename -> the execution counts of the cells compiled under that name."""

    def __init__(self) -> None:
        self._cells: dict[str, list[int]] = {}
        self.cell_ids: dict[int, str] = {}
        self._kernel_dir = os.path.join(tempfile.gettempdir(), f"ipykernel_{os.getpid()}") + os.sep
        self._named_like_cell: dict[str, bool] = {}  # a traced snapshot asks ~10 per site

    def record(self, ip: Any, result: Any) -> None:
        """Called from ``post_run_cell``: remember the cell's code filename and cell id."""
        count = getattr(result, "execution_count", None)
        info = getattr(result, "info", None)
        raw = getattr(info, "raw_cell", None)
        if not isinstance(count, int) or raw is None:
            return
        transformed = getattr(info, "transformed_cell", None) or ip.transform_cell(raw)
        try:
            name = ip.compile.get_code_name(raw, transformed, count)
        except Exception:
            return
        runs = self._cells.setdefault(name, [])
        if count not in runs:
            runs.append(count)
        cell_id = getattr(info, "cell_id", None)
        if cell_id:
            self.cell_ids[count] = str(cell_id)

    def cells_of(self, filename: str) -> list[int]:
        """Execution counts that ran code under this filename (latest last)."""
        runs = self._cells.get(filename)
        if runs:
            return list(runs)
        match = _PLAIN_CELL.fullmatch(filename)
        return [int(match.group(1))] if match else []

    def is_cell_file(self, filename: str) -> bool:
        if filename in self._cells:
            return True
        known = self._named_like_cell.get(filename)
        if known is None:  # IPython's cell names, or ipykernel's cell files
            known = bool(_PLAIN_CELL.fullmatch(filename)) or filename.startswith(self._kernel_dir)
            self._named_like_cell[filename] = known
        return known

    def site_label(self, frames: Traceback) -> str:
        """``In[7] line 3`` for the newest frame in a cell, else ``module.py:120``."""
        return self.site_labels((frames,))[0]

    def site_labels(self, tracebacks: Sequence[Traceback]) -> tuple[str, ...]:
        """:meth:`site_label` of each traceback, each distinct frame named once."""

        def name(frame: Frame) -> str:
            if self.is_cell_file(frame[0]):
                return self._cell_line(*frame)
            return f"{_short_path(frame[0])}:{frame[1]}"

        return name_by_frame(tracebacks, self._newest_in_cell, name)

    def _newest_in_cell(self, frames: Traceback) -> Frame | None:
        """The newest frame in a cell, else the newest frame (None: no frames)."""
        for frame in frames:
            if self.is_cell_file(frame[0]):
                return frame
        return frames[0] if frames else None

    def _cell_line(self, filename: str, lineno: int) -> str:
        runs = self.cells_of(filename)
        if not runs:
            return f"a cell run before memsnap was loaded, line {lineno}"
        also = f" (same code ran as {', '.join(f'In[{n}]' for n in runs[:-1])})"
        return f"In[{runs[-1]}] line {lineno}" + (also if len(runs) > 1 else "")


@functools.lru_cache(maxsize=4096)
def _short_path(filename: str) -> str:
    """``.../site-packages/pandas/core/frame.py`` -> ``pandas/core/frame.py``."""
    for marker in ("site-packages" + os.sep, "dist-packages" + os.sep):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


@dataclass(frozen=True)
class CensusRow:
    """One cell in auto mode: after which cell, when, how much. ``objects`` and ``heap`` are
    None when no census ran after it (its cost was over the budget): the objects born in
    such cells are attributed to the range of cells up to the next census (``first_cell``
    on that census's row)."""

    cell: int
    taken_at: dt.datetime
    objects: int | None
    heap: int | None
    rss: int
    seconds: float  # the census's time, or the time deciding to skip it
    peak: int | None = None  # the RSS high-water mark while the cell ran (Linux), else None
    first_cell: int | None = None  # the census covers the births of cells first_cell..cell
    cell_seconds: float | None = None  # how long the cell ran (None: the census at auto on)

    @property
    def cells(self) -> str:
        """``In[7]``, or ``In[7–9]`` when the census covers several cells."""
        return cell_label(self.cell, self.first_cell)


class BirthRegister:
    """After which cell each live object was first seen: the (id, type) pairs alive at the
    last census, sorted by id, and each one's cell of birth. Memory grows with the live
    objects, not with the number of cells."""

    def __init__(self) -> None:
        self.ids = np.zeros(0, dtype=np.uint64)
        self.types = np.zeros(0, dtype=np.int32)  # codes into _type_codes
        self.born = np.zeros(0, dtype=np.int32)
        self.started = False
        self._type_codes: dict[tuple[str, str], int] = {}

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.types.nbytes + self.born.nbytes)

    def _codes(self, module: tuple[str, ...], qualname: tuple[str, ...]) -> np.ndarray:
        codes = self._type_codes
        return np.array(
            [codes.setdefault(k, len(codes)) for k in zip(module, qualname, strict=True)],
            dtype=np.int32,
        )

    def _sorted_types(self, heap: RawHeap | Any) -> np.ndarray:
        per_type = self._codes(tuple(heap.type_module), tuple(heap.type_qualname))
        return (
            per_type[np.asarray(heap.types)[heap.order]]
            if len(per_type)
            else np.zeros(len(heap.order), np.int32)
        )

    def update(self, heap: RawHeap, cell: int) -> None:
        """Merge a census: objects not seen before were born in ``cell``."""
        types = self._sorted_types(heap)
        default = cell if self.started else BEFORE_TRACKING
        ids = heap.sorted_ids
        self.born = inherit(self.ids, self.types, self.born, ids, types, default)
        self.ids, self.types = ids, types
        self.started = True

    def born_of(self, heap: RawHeap, current_cell: int) -> np.ndarray:
        """Cell of birth of each row of a capture: unseen objects are born now."""
        types = self._sorted_types(heap)
        by_id = inherit(self.ids, self.types, self.born, heap.sorted_ids, types, current_cell)
        born = np.empty(len(by_id), dtype=np.int32)
        born[heap.order] = by_id
        return born


class CellTracker:
    """Owns the ``post_run_cell`` hook: maps cell code names always, and in auto mode takes
    a census after a cell (ids, types, sizes; no reference graph) when its expected cost is
    within the budget: ``BUDGET_SECONDS``, or ``BUDGET_SHARE`` of the time the cells since
    the last census ran, whichever is larger. Its cost is the last census's, scaled by the
    live blocks since, so the overhead per cell is bounded by design, not by the heap."""

    MAX_ROWS = 100_000
    BUDGET_SECONDS = 0.05
    BUDGET_SHARE = 0.05

    def __init__(self, ip: Any) -> None:
        self.ip = ip
        self.cells = CellMap()
        self.rows: list[CensusRow] = []
        self.auto = False
        self.save_dir: str | None = None
        self.every_cell = False
        self.errors = 0
        self._registered = False
        self._peak_reset = False
        self._cell_started = 0.0
        self._forget()

    def _forget(self) -> None:
        """Start over: no births known, no census yet."""
        self.births = BirthRegister()
        self.ranges: dict[int, int] = {}  # census cell -> first cell whose births it holds
        self.first_pending: int | None = None  # the first cell no census has seen yet
        self._pending_seconds = 0.0  # how long the cells since the last census ran
        self._last: tuple[float, int] | None = None  # last census: seconds, live blocks

    def register(self) -> None:
        if not self._registered:
            self.ip.events.register("pre_run_cell", self.pre_run_cell)
            self.ip.events.register("post_run_cell", self.post_run_cell)
            self._registered = True

    def unregister(self) -> None:
        if self._registered:
            self.ip.events.unregister("pre_run_cell", self.pre_run_cell)
            self.ip.events.unregister("post_run_cell", self.post_run_cell)
            self._registered = False

    def pre_run_cell(self, info: Any) -> None:
        self._cell_started = time.perf_counter()
        self._peak_reset = self.auto and reset_peak()
        if self.auto and self.save_dir:
            from ..model.postmortem import write_marker
            from .namespace import current_cell

            try:
                write_marker(self.save_dir, current_cell(self.ip) or 0, info.raw_cell or "")
            except OSError as e:
                self.errors += 1
                print(f"jupyter_memsnap: cannot write to {self.save_dir}: {e.strerror}")

    def post_run_cell(self, result: Any) -> None:
        peak = peak_rss() if self._peak_reset else None  # before the census: not its memory
        ran = time.perf_counter() - self._cell_started if self._cell_started else 0.0
        self._peak_reset = False
        self._cell_started = 0.0
        self.cells.record(self.ip, result)
        count = getattr(result, "execution_count", None)
        if not (self.auto and isinstance(count, int)):
            return
        start = time.perf_counter()
        if not self.due(ran):
            self._skip(count, peak, ran, start)
            return
        try:
            self.census(count, peak, ran)
        except Exception as e:  # a failing census must never break the user's cell
            self.errors += 1
            reason = str(e) if isinstance(e, MemoryError) else repr(e)
            print(f"jupyter_memsnap: no census after In[{count}]: {reason}")

    def due(self, ran: float) -> bool:
        """Whether a census after a cell that ran ``ran`` seconds fits the budget."""
        if self._last is None or self.every_cell:
            return True
        seconds, blocks = self._last
        expected = seconds * max(1.0, sys.getallocatedblocks() / max(blocks, 1))
        spent = ran + self._pending_seconds
        return expected <= max(self.BUDGET_SECONDS, self.BUDGET_SHARE * spent)

    def budget(self) -> str:
        """The budget in words."""
        return (
            f"{self.BUDGET_SECONDS * 1000:.0f} ms or {self.BUDGET_SHARE:.0%} of the time the "
            "cells since the last census ran; the births of skipped cells go to the next "
            "census as a range (In[7–9])"
        )

    def _skip(self, cell: int, peak: int | None, ran: float, start: float) -> None:
        rss = int(psutil.Process().memory_info().rss)
        seconds = time.perf_counter() - start
        if self.first_pending is None:
            self.first_pending = cell
        self._pending_seconds += ran
        self._append(
            CensusRow(
                cell=cell,
                taken_at=dt.datetime.now(),
                objects=None,
                heap=None,
                rss=rss,
                seconds=seconds,
                peak=peak,
                cell_seconds=ran,
            )
        )

    def census(self, cell: int, peak: int | None = None, ran: float | None = None) -> CensusRow:
        """Walk the heap without the graph, update cells of birth, record one row (with the
        cell's RSS peak, when known); births since the last census are this cell's, or
        those of the range of cells since then."""
        from ..api import census
        from .namespace import notebook_roots

        start = time.perf_counter()
        heap = census(notebook_roots(self.ip), exclude=(self,))
        first = self.first_pending
        if first is not None and self.births.started:
            self.ranges[cell] = first
        self.births.update(heap, cell)
        if self.save_dir:
            self._save(heap, cell)
        row = CensusRow(
            cell=cell,
            taken_at=dt.datetime.now(),
            objects=len(heap.order),
            heap=heap.size_column.total(),
            rss=int(psutil.Process().memory_info().rss),
            seconds=time.perf_counter() - start,
            peak=peak,
            first_cell=first,
            cell_seconds=ran,
        )
        del heap
        self._last = (row.seconds, sys.getallocatedblocks())
        self.first_pending, self._pending_seconds = None, 0.0
        self._append(row)
        return row

    def _append(self, row: CensusRow) -> None:
        self.rows.append(row)
        del self.rows[: -self.MAX_ROWS]

    def born_ranges(self, current_cell: int | None = None) -> tuple[tuple[int, int], ...]:
        """(last, first) for each born value that covers several cells; with
        ``current_cell``, also the range a snapshot taken now gives its unseen objects."""
        ranges = dict(self.ranges)
        first = self.first_pending
        if current_cell is not None and first is not None and first < current_cell:
            ranges[current_cell] = first
        return tuple(sorted(ranges.items()))

    def overhead(self) -> tuple[float, float, int]:
        """Auto mode's cost so far: seconds spent after cells (censuses and decisions), the
        cells' own seconds, and the number of cells."""
        after = [(r.seconds, r.cell_seconds) for r in self.rows if r.cell_seconds is not None]
        return sum(s for s, _ in after), sum(c for _, c in after), len(after)

    def _save(self, heap: RawHeap, cell: int) -> None:
        """Keep this census on disk (one file, replaced atomically) for a post-mortem."""
        from ..model.postmortem import LATEST
        from ..model.snapshot import ProcessMemory, Snapshot

        rss = int(psutil.Process().memory_info().rss)
        born = np.empty(len(heap.order), dtype=np.int32)
        born[heap.order] = self.births.born
        snap = Snapshot.from_raw(
            heap,
            ProcessMemory(rss=rss, uss=None, traced=None, traced_peak=None),
            label=f"census after In[{cell}]",
            cell=cell,
            born=born,
            born_ranges=self.born_ranges(),
        )
        assert self.save_dir is not None
        snap.save(os.path.join(self.save_dir, LATEST))

    def start(self, cell: int) -> CensusRow:
        """Auto mode on: the first census marks everything alive now as 'before tracking'."""
        self.auto = True
        self._forget()
        own.register(f"cell census {id(self)}", lambda: self.nbytes)
        return self.census(cell)

    def stop(self) -> None:
        self.auto = False
        self.every_cell = False
        self.save_dir = None
        self._forget()
        own.unregister(f"cell census {id(self)}")

    def born(self, heap: RawHeap) -> np.ndarray | None:
        """Cells of birth for a capture, when tracking (None otherwise)."""
        if not self.auto or not self.births.started:
            return None
        from .namespace import current_cell

        return self.births.born_of(heap, current_cell(self.ip) or 0)

    @property
    def nbytes(self) -> int:
        """Memory the tracker keeps (the birth register dominates)."""
        return self.births.nbytes + 64 * len(self.rows)
