"""The C allocator's free memory: after a large computation frees its temporaries, glibc
keeps their pages (its mmap threshold adapts upward, so arrays of up to 32 MB come from the
heap and stay there when freed). Giving them back keeps the tool's peak out of the kernel's
RSS once the work is done."""

from __future__ import annotations

import ctypes
import sys
from typing import Any


def libc_function(name: str) -> Any:
    """A function of the C library (glibc on Linux), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):  # not glibc, or older than the function
        return None


_MALLOC_TRIM = libc_function("malloc_trim")


def malloc_trim() -> bool:
    """Return free memory at the top and in the middle of glibc's arenas to the OS; False
    where there is no glibc."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(ctypes.c_size_t(0))
    return True
