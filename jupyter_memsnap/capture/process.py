"""Process-level memory: what the operating system, the allocators and tracemalloc report.

These numbers explain the part of RSS that no object holds: the interpreter's and libraries'
code and data (file-backed mappings), thread stacks, allocator space that is free but kept
(glibc malloc's arenas, pymalloc's arenas), tracemalloc's own tables and pyarrow's pool.
Linux gives them all (``/proc/self/smaps``, glibc ``mallinfo2``); elsewhere the fields the
platform cannot give are None, and the memory table says so.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from typing import NamedTuple

import psutil

from ..model import spill
from ..model.allocator import libc_function
from ..model.snapshot import ProcessMemory

TOP_FILES = 8
"""How many libraries' mapped files are named one by one; the rest are one row."""

_MAPPING = re.compile(
    rb"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+ *([^\n]*)\n"  # range, perms, path
    rb"(?:[A-Z][^\n]*\n)*?Rss: +(\d+) kB\n"
    rb"(?:[A-Z][^\n]*\n)*?Private_Clean: +(\d+) kB\nPrivate_Dirty: +(\d+) kB",
    re.M,
)


def read_process_memory(own: Callable[[], int] | None = None) -> ProcessMemory:
    """RSS and USS, the breakdown of what no object holds, and (``own``) the bytes this
    tool's own snapshots and caches take."""
    maps = _smaps()
    if maps is None:
        rss, uss = _rss_uss()
        maps = Mappings(rss, uss, None, (), None)
    traced = peak = tracing_own = None
    if tracemalloc.is_tracing():
        traced, peak = tracemalloc.get_traced_memory()
        tracing_own = tracemalloc.get_tracemalloc_memory()
    arrow = sys.modules.get("pyarrow")
    return ProcessMemory(
        rss=maps.rss,
        uss=maps.uss,
        traced=traced,
        traced_peak=peak,
        file_backed=maps.file_backed,
        files=maps.files,
        stacks=maps.stacks,
        malloc_free=_malloc_free(maps.arenas),
        pymalloc_free=_pymalloc_free(),
        tracemalloc_own=tracing_own,
        own=own() if own is not None else None,
        arrow_pool=int(arrow.total_allocated_bytes()) if arrow is not None else None,
        gpu=_torch_cuda(),
    )


def _rss_uss() -> tuple[int, int | None]:
    """RSS and USS from psutil, where there is no smaps."""
    proc = psutil.Process()
    try:
        full = proc.memory_full_info()
        return int(full.rss), int(getattr(full, "uss", 0)) or None
    except (psutil.AccessDenied, OSError):
        return int(proc.memory_info().rss), None


def _torch_cuda() -> int | None:
    """CUDA memory torch has reserved on every device, if torch already uses CUDA (asking
    would initialise it)."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is None or not cuda.is_initialized():
        return None
    return sum(int(cuda.memory_reserved(d)) for d in range(cuda.device_count()))


class Mappings(NamedTuple):
    rss: int
    uss: int | None
    file_backed: int | None
    files: tuple[tuple[str, int], ...]
    stacks: int | None
    arenas: int | None = None


SPILL_FILES = "jupyter_memsnap snapshot files"
"""How the file mappings of kept snapshots (model/spill.py) are named: the OS can drop them."""
_SPILLED = b"/" + spill.PREFIX.encode()

ARENA_SPAN = 64 << 20 if sys.maxsize > 2**32 else 1 << 20
"""glibc's HEAP_MAX_SIZE: a thread arena's heap is reserved at an address aligned to it."""


def _smaps() -> Mappings | None:
    """From one read of /proc/self/smaps (the kernel walks every page table to write it, so
    it is read once): RSS, USS (private pages), the resident bytes of file-backed mappings
    (total, and the largest by library), of thread stacks (the main one, and each mapping
    right above a guard page) and of glibc's arenas (``[heap]``, and each thread arena's
    heap: a mapping at an aligned address whose reserve runs to the next alignment)."""
    try:
        with open("/proc/self/smaps", "rb") as f:
            text = f.read()
    except OSError:
        return None
    maps = [
        (int(start, 16), int(end, 16), perms, path.strip(), int(rss) * 1024, int(c) + int(d))
        for start, end, perms, path, rss, c, d in _MAPPING.findall(text)
    ]
    if not maps:
        return None
    by_file: dict[str, int] = {}
    stacks = arenas = 0
    for i, (begin, _, perms, path, rss, _) in enumerate(maps):
        if path.startswith(b"/") and not path.endswith(b" (deleted)"):
            name = library_of(path.decode(errors="replace"))
            by_file[name] = by_file.get(name, 0) + rss
        elif path.endswith(b" (deleted)") and _SPILLED in path:
            by_file[SPILL_FILES] = by_file.get(SPILL_FILES, 0) + rss
        elif path == b"[heap]" or _is_thread_arena(maps, i):
            arenas += rss
        elif path == b"[stack]" or (
            not path
            and perms == b"rw-p"
            and i
            and maps[i - 1][2] == b"---p"
            and maps[i - 1][1] == begin
        ):
            stacks += rss
    largest = sorted(by_file.items(), key=lambda item: -item[1])[:TOP_FILES]
    return Mappings(
        sum(m[4] for m in maps),
        sum(m[5] for m in maps) * 1024,
        sum(by_file.values()),
        tuple(largest),
        stacks,
        arenas,
    )


def _is_thread_arena(maps: list[tuple[int, int, bytes, bytes, int, int]], i: int) -> bool:
    begin, end, perms, path = maps[i][:4]
    if path or perms != b"rw-p" or begin % ARENA_SPAN:
        return False
    if end - begin == ARENA_SPAN:
        return True
    after = maps[i + 1] if i + 1 < len(maps) else None
    return (
        after is not None
        and after[2] == b"---p"
        and after[0] == end
        and after[1] == begin + ARENA_SPAN
    )


@functools.lru_cache(maxsize=4096)
def library_of(path: str) -> str:
    """Who a mapped file belongs to: the package of an installed distribution (``numpy``
    for ``site-packages/numpy.libs/libscipy_openblas.so``), Python for the interpreter and
    its standard extension modules, else the file's name (``libc.so.6``)."""
    parts = path.replace("\\", "/").split("/")
    for marker in ("site-packages", "dist-packages"):
        if marker in parts[:-1]:
            package = parts[parts.index(marker) + 1]
            return package.removesuffix(".libs").split("-")[0] or package
    name = parts[-1]
    if "lib-dynload" in parts or name.startswith(("libpython", "python")):
        return "Python"
    return name


def reset_peak() -> bool:
    """Start a new RSS high-water mark (Linux: ``/proc/self/clear_refs``); False elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int | None:
    """The RSS high-water mark since the last reset_peak() (``VmHWM``), or None."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


_MALLINFO2 = libc_function("mallinfo2")
if _MALLINFO2 is not None:
    _MALLINFO2.restype = _MallInfo2


def _malloc_free(arenas: int | None) -> int | None:
    """Free bytes glibc's malloc keeps resident in its arenas, or None.

    ``mallinfo2`` counts free bytes (``fordblks``) whether or not their pages are resident:
    ``malloc_trim`` hands the pages back but leaves the chunks free. What is resident is at
    most the arenas' resident bytes less the bytes in use (``uordblks``)."""
    if _MALLINFO2 is None:
        return None
    info = _MALLINFO2()
    if arenas is None:
        return int(info.fordblks)
    return max(0, min(int(info.fordblks), arenas - int(info.uordblks)))


def _pymalloc_free() -> int | None:
    """Bytes of pymalloc's arenas that hold no object: free blocks, free pools, headers,
    alignment (``sys._debugmallocstats``, which writes to the C stderr: read through a
    temporary file put in its place for the call)."""
    stats = getattr(sys, "_debugmallocstats", None)
    if stats is None:
        return None
    try:
        with tempfile.TemporaryFile() as out:
            saved = os.dup(2)
            try:
                os.dup2(out.fileno(), 2)
                stats()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            out.seek(0)
            text = out.read().decode(errors="replace")
    except OSError:
        return None
    used = re.search(r"# bytes in allocated blocks\s*=\s*([\d,]+)", text)
    total = re.search(r"^Total\s*=\s*([\d,]+)", text, re.M)
    if not used or not total:
        return None
    return max(0, int(total.group(1).replace(",", "")) - int(used.group(1).replace(",", "")))
