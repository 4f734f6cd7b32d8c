"""File-backed arrays: the big columns a kept snapshot reads rarely (its reference graph and
the graphs derived from it) live in an unlinked temporary file mapped read-only. Their pages
are the page cache's, clean once written: the OS drops them under memory pressure instead of
the kernel being killed, and reads them back when a view needs them.

Memory is the fallback, never an error: with no disk space, no writable directory, or only
a RAM-backed one (tmpfs pages cannot be dropped), arrays stay in memory."""

from __future__ import annotations

import contextlib
import mmap
import os
import tempfile
from functools import lru_cache

import numpy as np

PREFIX = "jupyter_memsnap-"
"""Start of the spill files' names (``/proc/self/smaps`` names their mappings by it)."""

MIN_BYTES = 1 << 20
"""Arrays smaller than this stay in memory: a mapping costs a file and a page each."""

_RAM_FILESYSTEMS = frozenset({"tmpfs", "ramfs", "devtmpfs"})


def _filesystem(path: str) -> str | None:
    """The type of the filesystem ``path`` is on (Linux), None where unknown."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            mounts = [line.split()[1:3] for line in f if len(line.split()) >= 3]
    except OSError:
        return None
    best, kind = "", None
    for point, fstype in mounts:
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fstype
    return kind


@lru_cache(maxsize=1)
def directory() -> str | None:
    """Where spill files go: ``MEMSNAP_SPILL_DIR``, else the temporary directory, else
    ``~/.cache/jupyter_memsnap`` when the temporary directory is in RAM; None: nowhere."""
    if os.name != "posix":
        return None  # a mapped file cannot be removed while mapped: it would stay behind
    chosen = os.environ.get("MEMSNAP_SPILL_DIR")
    candidates = [chosen] if chosen else [tempfile.gettempdir(), _cache_directory()]
    for candidate in candidates:
        path = os.path.realpath(candidate)
        if _filesystem(path) in _RAM_FILESYSTEMS:
            continue
        with contextlib.suppress(OSError):
            os.makedirs(path, exist_ok=True)
            if os.access(path, os.W_OK):
                return path
    return None


def _cache_directory() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jupyter_memsnap")


def file_prefix() -> str | None:
    """Where spill files go and how their names start (the compiled walk makes its own
    there); None where there is nowhere to spill."""
    where = directory()
    return None if where is None else os.path.join(where, PREFIX)


def to_file(arr: np.ndarray, *, min_bytes: int = MIN_BYTES) -> np.ndarray:
    """``arr`` as a read-only array over a mapping of a temporary file (removed at once: the
    space returns when the array is freed), or ``arr`` itself when it is small, already in a
    file, or the file cannot be written."""
    where = directory()
    if where is None or arr.nbytes < max(min_bytes, 1) or is_file_backed(arr):
        return arr
    arr = np.ascontiguousarray(arr)
    try:
        fd, path = tempfile.mkstemp(prefix=PREFIX, dir=where)
    except OSError:
        return arr
    try:
        with os.fdopen(fd, "w+b") as f:
            os.unlink(path)  # POSIX (see directory()): the mapping keeps the file until freed
            arr.tofile(f)
            f.flush()
            mapping = mmap.mmap(f.fileno(), arr.nbytes, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(path)
        return arr
    return np.frombuffer(mapping, dtype=arr.dtype, count=arr.size).reshape(arr.shape)


def is_file_backed(arr: np.ndarray) -> bool:
    """Whether ``arr`` lives in a file mapping: one made by :func:`to_file`, or one the
    compiled walk made (its buffer says so: ``file_backed``)."""
    base: object = arr
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return isinstance(base, mmap.mmap) or getattr(base, "file_backed", False) is True


def memory_bytes(arr: np.ndarray | None) -> int:
    """Bytes ``arr`` takes in anonymous memory (0 when file-backed)."""
    if arr is None or is_file_backed(arr):
        return 0
    return int(arr.nbytes)
