"""Process-level memory numbers: what the operating system and tracemalloc report."""

from __future__ import annotations

import tracemalloc

import psutil

from ..model.snapshot import ProcessMemory


def read_process_memory() -> ProcessMemory:
    """RSS and USS from the OS, traced bytes from tracemalloc when it is tracing."""
    proc = psutil.Process()
    try:
        full = proc.memory_full_info()
        rss, uss = int(full.rss), int(getattr(full, "uss", 0)) or None
    except (psutil.AccessDenied, OSError):
        rss, uss = int(proc.memory_info().rss), None
    traced = peak = None
    if tracemalloc.is_tracing():
        traced, peak = tracemalloc.get_traced_memory()
    return ProcessMemory(rss=rss, uss=uss, traced=traced, traced_peak=peak)
