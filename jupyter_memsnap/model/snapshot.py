"""The Snapshot: every live object of one moment as immutable columns, ids and numbers only."""

from __future__ import annotations

import dataclasses
import datetime as dt
import mmap
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import compact, own, spill
from .compact import Sizes, SortedIds

if TYPE_CHECKING:
    import pandas as pd

    from ..capture.heap import RawHeap
    from .diff import SnapshotDiff
    from .retention import Retention


VIEW_CACHE_MIN = 1 << 20
"""Views up to this many bytes are kept whatever the snapshot's size."""


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.flags.writeable:
        a.setflags(write=False)
    return a


def _offsets(a: np.ndarray) -> np.ndarray:
    """A graph's offsets as uint32 (what the walk makes; a file or a caller may give int64):
    the graph's references are counted in 32 bits."""
    a = np.asarray(a)
    if a.dtype == np.uint32:
        return a
    if a.dtype.kind not in "iu":
        raise TypeError(f"offsets must be integers, not {a.dtype}")
    if a.size and int(a.min()) < 0:
        raise ValueError("offsets must not be negative")
    if a.size and int(a.max()) > np.iinfo(np.uint32).max:
        raise ValueError("offsets past 2**32: the graph has too many references")
    return a.astype(np.uint32)


Frame = tuple[str, int]
"""tracemalloc's frame: ``(filename, lineno)``."""
Traceback = tuple[Frame, ...]
"""tracemalloc's frames of one allocation, newest first."""


def name_by_frame(
    tracebacks: Sequence[Traceback],
    pick: Callable[[Traceback], Frame | None],
    name: Callable[[Frame], str],
) -> tuple[str, ...]:
    """Each traceback named by the frame ``pick`` chooses ("unknown" for None), each
    distinct frame named once (a traced heap has ~10^5 tracebacks over fewer frames)."""
    named: dict[Frame, str] = {}
    labels = []
    for frames in tracebacks:
        frame = pick(frames)
        if frame is None:
            labels.append("unknown")
            continue
        label = named.get(frame)
        if label is None:
            label = named[frame] = name(frame)
        labels.append(label)
    return tuple(labels)


def file_lines(tracebacks: Sequence[Traceback]) -> tuple[str, ...]:
    """``file:line`` of each traceback's newest frame."""
    return name_by_frame(tracebacks, lambda f: f[0] if f else None, lambda f: f"{f[0]}:{f[1]}")


@dataclass(frozen=True)
class Root:
    """A named root: what keeps objects alive, in notebook words (``df``, ``Out[3]``)."""

    name: str
    kind: str  # variable, pyplot, output, holder, history, namespace, module, frame, local…
    index: int  # row in the snapshot, -1 when the object was excluded
    via: tuple[int, ...] = ()  # rows of the containers whose reference is this name

    @property
    def hidden(self) -> bool:
        """A holder the user did not name: output cache, last traceback, …"""
        return self.kind in ("output", "holder")


@dataclass(frozen=True)
class ProcessMemory:
    """Process-level numbers read right after the walk, in bytes (None: not available on
    this platform, or not applicable)."""

    rss: int
    uss: int | None
    traced: int | None  # tracemalloc's traced bytes when tracing is on
    traced_peak: int | None
    file_backed: int | None = None  # resident file-backed mappings: code and data of libraries
    files: tuple[tuple[str, int], ...] = ()  # the largest of those, by library
    stacks: int | None = None  # resident thread stacks
    malloc_free: int | None = None  # free bytes glibc's malloc keeps in its arenas
    pymalloc_free: int | None = None  # pymalloc's arena bytes that hold no object
    tracemalloc_own: int | None = None  # tracemalloc's own tables, when tracing
    own: int | None = None  # this tool's snapshots and caches
    arrow_pool: int | None = None  # pyarrow's memory pool, all of it
    gpu: int | None = None  # CUDA memory torch has reserved (not in RSS)


@dataclass(frozen=True)
class TypeTable:
    """Names of the types seen (strings, never type objects: classes get redefined)."""

    module: tuple[str, ...]
    qualname: tuple[str, ...]
    is_class: np.ndarray  # bool: the type's instances are classes (metaclasses)

    def __len__(self) -> int:
        return len(self.qualname)

    def label(self, i: int) -> str:
        """``qualname`` for builtins, ``module.qualname`` otherwise."""
        mod = self.module[i]
        return self.qualname[i] if mod == "builtins" else f"{mod}.{self.qualname[i]}"

    def labels(self) -> list[str]:
        return [self.label(i) for i in range(len(self))]

    def indices(self, module: str, qualname: str) -> np.ndarray:
        """Type indices with this module and qualname (several after a class is redefined)."""
        return np.array(
            [
                i
                for i, (m, q) in enumerate(zip(self.module, self.qualname, strict=True))
                if m == module and q == qualname
            ],
            dtype=np.int32,
        )


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One heap snapshot. Columns are read-only numpy arrays with one row per object (rows in
    walk order: roots first); the reference graph is CSR (``offsets``, ``targets``: row
    numbers). Ids are kept sorted (``sorted_ids``, with ``order`` giving each one's row), so
    lookups are binary searches and diffs are merges.

    Kept lean (``compact``): ids and sizes in 4 bytes each, codes in the narrowest integer
    type, the graph in a file mapping the OS can drop when the snapshot is large or
    ``to_disk``. Build one with :meth:`from_columns` (plain arrays) or :meth:`from_raw`.

    ``type_index`` codes into ``type_table``. Views (``types``, ``objects``, ``variables``,
    ``memory``, ``modules``) are pandas DataFrames computed on first use; small ones are kept.
    """

    id_column: SortedIds
    order: np.ndarray
    type_index: np.ndarray
    size_column: Sizes
    offsets: np.ndarray
    targets: np.ndarray
    type_table: TypeTable
    roots: tuple[Root, ...]
    native_index: np.ndarray
    native_bytes: np.ndarray
    process: ProcessMemory
    taken_at: dt.datetime
    seconds: float
    engine: str
    label: str = ""
    cell: int | None = None
    born: np.ndarray | None = None  # per row: cell after which first seen (0: before)
    born_ranges: tuple[tuple[int, int], ...] = ()  # (born, first): born covers first..born
    site_index: np.ndarray | None = None  # per row: into site_labels, -1 unknown
    site_labels: tuple[str, ...] = ()  # "In[7] line 3", "pandas/core/frame.py:120"
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        own.track(self)

    @classmethod
    def from_columns(
        cls,
        *,
        sorted_ids: np.ndarray | SortedIds,
        order: np.ndarray,
        sizes: np.ndarray | Sizes,
        type_index: np.ndarray,
        offsets: np.ndarray,
        targets: np.ndarray,
        born: np.ndarray | None = None,
        site_index: np.ndarray | None = None,
        to_disk: bool | None = None,
        **fields: Any,
    ) -> Snapshot:
        """Build from plain columns (the walker's, a file's), stored compact. ``to_disk``:
        None keeps the graph in a file mapping when it is large, True keeps every column
        there, False keeps everything in memory."""

        def column(a: np.ndarray) -> np.ndarray:
            a = _frozen(a)
            return spill.to_file(a, min_bytes=mmap.PAGESIZE) if to_disk else a

        def graph(a: np.ndarray) -> np.ndarray:
            return _frozen(a) if to_disk is False else spill.to_file(column(a))

        ids = sorted_ids if isinstance(sorted_ids, SortedIds) else SortedIds.encode(sorted_ids)
        sizes_ = sizes if isinstance(sizes, Sizes) else Sizes.encode(sizes)
        ids = SortedIds(ids.high, ids.starts, column(ids.low))
        size_column = Sizes(column(sizes_.small), sizes_.big_rows, sizes_.big_values)
        return cls(
            id_column=ids,
            order=column(order),
            type_index=column(compact.narrow(type_index)),
            size_column=size_column,
            offsets=graph(_offsets(offsets)),
            targets=graph(targets),
            born=None if born is None else column(compact.narrow(born)),
            site_index=None if site_index is None else column(compact.narrow(site_index, -1)),
            **fields,
        )

    @classmethod
    def from_raw(
        cls,
        raw: RawHeap,
        process: ProcessMemory,
        *,
        label: str = "",
        cell: int | None = None,
        kinds: dict[str, str] | None = None,
        born: np.ndarray | None = None,
        born_ranges: tuple[tuple[int, int], ...] = (),
        name_sites: Callable[[Sequence[Traceback]], Sequence[str]] = file_lines,
        to_disk: bool | None = None,
    ) -> Snapshot:
        """Build from a capture; ``kinds`` renames root kinds given by the caller,
        ``name_sites`` names the allocation sites, all at once."""
        return cls.from_columns(
            sorted_ids=raw.id_column,
            order=raw.order,
            type_index=raw.types,
            sizes=raw.size_column,
            offsets=raw.offsets,
            targets=raw.targets,
            type_table=TypeTable(raw.type_module, raw.type_qualname, raw.type_is_class),
            roots=tuple(
                Root(r.name, (kinds or {}).get(r.kind, r.kind), r.index, r.via) for r in raw.roots
            ),
            native_index=raw.native_index,
            native_bytes=raw.native_bytes,
            process=process,
            taken_at=dt.datetime.now(),
            seconds=raw.seconds,
            engine=raw.engine,
            label=label,
            cell=cell,
            born=born,
            born_ranges=born_ranges,
            site_index=raw.sites,
            site_labels=tuple(name_sites(raw.site_table)),
            to_disk=to_disk,
        )

    def columns(self) -> dict[str, Any]:
        """Everything :meth:`from_columns` takes, as plain arrays (decoded: new arrays)."""
        fields = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if not f.name.startswith("_") and f.name not in ("id_column", "size_column")
        }
        return {**fields, "sorted_ids": self.sorted_ids, "sizes": self.sizes}

    def replace(self, **changes: Any) -> Snapshot:
        """A new snapshot with some columns or fields changed (plain arrays)."""
        return Snapshot.from_columns(**{**self.columns(), **changes})

    # ---------------------------------------------------------------- plain numbers
    def __len__(self) -> int:
        return len(self.order)

    @property
    def sorted_ids(self) -> np.ndarray:
        """Every id, ascending (uint64, decoded: a new array on every call)."""
        return self.id_column.decode()

    @property
    def sizes(self) -> np.ndarray:
        """Shallow size of each row (int64, decoded: a new array on every call)."""
        return self.size_column.decode()

    def size_of(self, row: int) -> int:
        return self.size_column.at(row)

    @property
    def ids(self) -> np.ndarray:
        """The id of each row (computed from the sorted ids)."""
        ids = np.empty(len(self.order), dtype=np.uint64)
        ids[self.order] = self.sorted_ids
        return ids

    @property
    def total_size(self) -> int:
        """Bytes attributed to objects (shallow sizes summed: every byte counted once)."""
        return self.size_column.total()

    @property
    def n_edges(self) -> int:
        return len(self.targets)

    @property
    def nbytes(self) -> int:
        """Memory this snapshot's columns occupy, in memory and in file mappings."""
        return sum(int(a.nbytes) for a in self.stored_arrays())

    @property
    def memory_nbytes(self) -> int:
        """The part of :attr:`nbytes` in the process's own memory (not in a file mapping)."""
        return sum(spill.memory_bytes(a) for a in self.stored_arrays())

    def stored_arrays(self) -> list[np.ndarray]:
        """The arrays this snapshot keeps (compact: not the decoded columns)."""
        arrays = [*self.id_column.arrays(), *self.size_column.arrays()]
        arrays += [self.order, self.type_index, self.offsets, self.targets]
        arrays += [self.native_index, self.native_bytes]
        return arrays + [a for a in (self.born, self.site_index) if a is not None]

    def row(self, obj_id: int) -> int:
        """Row of the object with this id, or -1 (ids are sorted: a binary search)."""
        k = self.id_column.find(obj_id)
        return int(self.order[k]) if k >= 0 else -1

    def id_of(self, row: int) -> int:
        """The id of the object in this row."""
        inverse = self.cached("inverse", self._inverse_order)
        return self.id_column.at(int(inverse[row]))

    def _inverse_order(self) -> np.ndarray:
        inverse = np.empty(len(self.order), dtype=np.uint32)
        inverse[self.order] = np.arange(len(self.order), dtype=np.uint32)
        return inverse

    def referents_of_row(self, row: int) -> np.ndarray:
        """Rows this row's object refers to."""
        return np.asarray(self.targets[self.offsets[row] : self.offsets[row + 1]])

    def type_label(self, row: int) -> str:
        return self.type_table.label(int(self.type_index[row]))

    def roots_of_kind(self, *kinds: str) -> list[Root]:
        return [r for r in self.roots if r.kind in kinds]

    # ---------------------------------------------------------------- retention
    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """A value derived from this (immutable) snapshot, computed on first use."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def is_cached(self, key: str) -> bool:
        return key in self._cache

    @property
    def retention(self) -> Retention:
        """Dominator tree with a node per root, computed once on first use."""
        from .retention import compute_retention

        result: Retention = self.cached("retention", lambda: compute_retention(self))
        return result

    @property
    def retained(self) -> np.ndarray:
        """Retained size of each row: the bytes freed if that object went away."""
        return self.retention.object_retained()

    def _reverse(self) -> tuple[np.ndarray, np.ndarray]:
        from .retention import reverse_graph

        reverse: tuple[np.ndarray, np.ndarray] = self.cached("reverse", lambda: reverse_graph(self))
        return reverse

    def _row_of(self, obj_id: int) -> int:
        row = self.row(obj_id)
        if row < 0:
            raise KeyError(f"no object with id {obj_id:#x} in this snapshot")
        return row

    def paths_to_root(self, obj_id: int, max_paths: int = 3) -> pd.DataFrame:
        """Shortest paths from named roots to the object (VS "Paths to Root"): one row per
        step, ``path`` numbering the paths, step 0 being the root's object."""
        from ..views.paths import paths_frame

        return paths_frame(self, self._row_of(obj_id), max_paths)

    def referrers(self, obj_id: int) -> pd.DataFrame:
        """The objects that refer to this one."""
        from ..views.paths import rows_frame

        roff, sources = self._reverse()
        row = self._row_of(obj_id)
        return rows_frame(self, np.unique(sources[roff[row] : roff[row + 1]]))

    def referents(self, obj_id: int) -> pd.DataFrame:
        """The objects this one refers to (VS "Referenced Objects")."""
        from ..views.paths import rows_frame

        return rows_frame(self, np.unique(self.referents_of_row(self._row_of(obj_id))))

    # ---------------------------------------------------------------- views (DataFrames)
    def _view(self, name: str, **kwargs: Any) -> pd.DataFrame:
        """A view, kept only when it is small next to the snapshot (a table per type is;
        one with a row per object is recomputed rather than doubling the snapshot)."""
        from ..views import tables

        key = name + repr(sorted(kwargs.items()))
        kept: pd.DataFrame | None = self._cache.get(key)
        if kept is not None:
            return kept.copy()
        frame: pd.DataFrame = getattr(tables, name)(self, **kwargs)
        if own.arrays_bytes(frame) <= max(VIEW_CACHE_MIN, self.memory_nbytes // 16):
            self._cache[key] = frame
            return frame.copy()
        return frame

    @property
    def types(self) -> pd.DataFrame:
        """One row per type: count, size, share of the total (VS Managed Types view)."""
        return self._view("types_table")

    @property
    def objects(self) -> pd.DataFrame:
        """One row per object: id, type, module, size, retained."""
        return self._view("objects_table")

    @property
    def variables(self) -> pd.DataFrame:
        """One row per visible user variable: type, shallow and reachable size."""
        return self._view("variables_table")

    @property
    def cells(self) -> pd.DataFrame:
        """Live objects by the cell after which they first appeared (needs auto mode)."""
        return self._view("cells_table")

    @property
    def sites(self) -> pd.DataFrame:
        """Live objects by allocation site (needs tracing on when they were allocated)."""
        return self._view("sites_table")

    @property
    def holders(self) -> pd.DataFrame:
        """Every hidden holder (output cache, last traceback, …): what it alone keeps alive
        and how to release it."""
        return self._view("holders_table")

    @property
    def memory(self) -> pd.DataFrame:
        """Process memory, what the objects account for, and the gap to RSS explained."""
        return self._view("memory_table")

    @property
    def modules(self) -> pd.DataFrame:
        """One row per module that defines the types: count, size, share."""
        return self._view("modules_table")

    @property
    def insights(self) -> pd.DataFrame:
        """What to change to get memory back: kind, bytes the fix saves, where, evidence,
        fix (code). Read from this snapshot and from the variables that still hold the same
        objects (never kept: their values change); for leak suspects over several
        snapshots, see ``jupyter_memsnap.api.insights``."""
        from ..api import insights

        return insights(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to a file (versioned, columnar, atomic: a crash never leaves half a file)."""
        from .files import save_snapshot

        save_snapshot(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Snapshot:
        """Read a file written by :meth:`save`; SnapshotFileError (one line) if it is bad."""
        from .files import load_snapshot

        return load_snapshot(path)

    def diff(self, before: Snapshot) -> SnapshotDiff:
        """What changed from ``before`` to this snapshot (``b.diff(a)``)."""
        from .diff import SnapshotDiff

        return SnapshotDiff(before, self)

    def __repr__(self) -> str:
        from ..views.format import human_bytes

        label = f" {self.label!r}" if self.label else ""
        return (
            f"<Snapshot{label} {len(self):,} objects, {human_bytes(self.total_size)} in objects, "
            f"RSS {human_bytes(self.process.rss)}, taken {self.taken_at:%H:%M:%S}>"
        )
