"""The memory this tool holds itself: every live snapshot's columns and cached tables, and
what front ends register (the per-cell census). The memory table names it, rather than
leaving it in "unattributed"."""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from . import spill

_SNAPSHOTS: weakref.WeakSet[Any] = weakref.WeakSet()
_PROVIDERS: dict[str, Callable[[], int]] = {}


def track(snapshot: Any) -> None:
    """Count this snapshot while it lives (weakly held)."""
    _SNAPSHOTS.add(snapshot)


def register(name: str, nbytes: Callable[[], int]) -> None:
    """Count ``nbytes()`` as this tool's own memory until ``unregister(name)``."""
    _PROVIDERS[name] = nbytes


def unregister(name: str) -> None:
    _PROVIDERS.pop(name, None)


def arrays_bytes(value: Any, depth: int = 0) -> int:
    """Bytes of the numpy arrays in a cached value (arrays, DataFrames, dataclasses of them)
    held in memory (not in a file mapping)."""
    if isinstance(value, np.ndarray):
        return spill.memory_bytes(value)
    if depth > 2:
        return 0
    usage = getattr(value, "memory_usage", None)
    if callable(usage) and hasattr(value, "columns"):
        return int(usage(index=True).sum())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(
            arrays_bytes(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
        )
    if isinstance(value, tuple | list):
        return sum(arrays_bytes(v, depth + 1) for v in value[:64])
    return 0


def own_bytes() -> int:
    """Bytes of every live snapshot (columns and cached tables) and of registered caches."""
    total = 0
    for snap in list(_SNAPSHOTS):
        total += snap.memory_nbytes + sum(arrays_bytes(v) for v in list(snap._cache.values()))
    for nbytes in list(_PROVIDERS.values()):
        total += int(nbytes())
    return total
