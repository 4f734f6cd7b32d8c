"""Compact columns: what a kept snapshot stores per object, in as few bytes as the values
allow (issue 13: at most 16 B/object in the kernel's RSS). Each column decodes to the plain
numpy array on demand; the decoded array is a temporary, never kept."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_LOW_BITS = 32
_BIG = np.uint32(0xFFFFFFFF)


def narrow(values: np.ndarray, low: int = 0) -> np.ndarray:
    """``values`` in the smallest integer dtype that holds them and ``low`` (an array's
    sentinel such as -1): codes into a table of a few thousand entries take 2 bytes."""
    values = np.asarray(values)
    lo = min(int(values.min()), low) if values.size else low
    hi = int(values.max()) if values.size else 0
    dtype = np.result_type(np.min_scalar_type(lo), np.min_scalar_type(hi))
    if dtype.itemsize < 2:
        dtype = np.dtype(np.int16 if lo < 0 else np.uint16)
    return values if values.dtype == dtype else values.astype(dtype)


@dataclass(frozen=True, eq=False)
class SortedIds:
    """Strictly increasing 64-bit ids (addresses) in about 4 bytes each: the low 32 bits of
    every id, and for each distinct high half the index where its run starts. Addresses of
    one process share few high halves, so the run table stays tiny."""

    high: np.ndarray  # uint64: distinct high halves, ascending
    starts: np.ndarray  # int64, len(high) + 1: where each high half's run starts in ``low``
    low: np.ndarray  # uint32

    @classmethod
    def encode(cls, ids: np.ndarray) -> SortedIds:
        ids = np.asarray(ids, dtype=np.uint64)
        halves = ids >> np.uint64(_LOW_BITS)
        first = np.flatnonzero(np.diff(halves)) + 1 if ids.size else np.zeros(0, np.int64)
        starts = np.concatenate([[0], first, [ids.size]]).astype(np.int64)
        high = halves[starts[:-1]] if ids.size else np.zeros(0, np.uint64)
        del halves
        low = ids.astype(np.uint32)
        for a in (high, starts, low):
            a.setflags(write=False)
        return cls(high, starts[: len(high) + 1], low)

    def __len__(self) -> int:
        return len(self.low)

    def arrays(self) -> tuple[np.ndarray, ...]:
        """What is stored."""
        return self.high, self.starts, self.low

    def decode(self) -> np.ndarray:
        """The ids as one uint64 array (a new one on every call)."""
        ids = self.low.astype(np.uint64)
        for k, half in enumerate(self.high.tolist()):
            if half:
                ids[self.starts[k] : self.starts[k + 1]] |= np.uint64(half << _LOW_BITS)
        return ids

    def at(self, k: int) -> int:
        """The k-th smallest id."""
        run = int(np.searchsorted(self.starts, k, side="right")) - 1
        return (int(self.high[run]) << _LOW_BITS) | int(self.low[k])

    def find(self, obj_id: int) -> int:
        """Position of ``obj_id`` among the sorted ids, or -1 (two binary searches)."""
        half, rest = obj_id >> _LOW_BITS, obj_id & 0xFFFFFFFF
        run = int(np.searchsorted(self.high, np.uint64(half)))
        if run >= len(self.high) or int(self.high[run]) != half:
            return -1
        lo, hi = int(self.starts[run]), int(self.starts[run + 1])
        k = lo + int(np.searchsorted(self.low[lo:hi], np.uint32(rest)))
        return k if k < hi and int(self.low[k]) == rest else -1


@dataclass(frozen=True, eq=False)
class Sizes:
    """Non-negative byte counts in 4 bytes each; the rare size of 4 GiB or more is kept
    aside (``big_rows``, ``big_values``) and its 4-byte slot holds a marker."""

    small: np.ndarray  # uint32
    big_rows: np.ndarray  # int64, ascending
    big_values: np.ndarray  # int64

    @classmethod
    def encode(cls, sizes: np.ndarray) -> Sizes:
        sizes = np.asarray(sizes)
        if sizes.size and int(sizes.min()) < 0:
            raise ValueError("sizes must not be negative")
        big_rows = np.flatnonzero(sizes >= int(_BIG)).astype(np.int64)
        big_values = sizes[big_rows].astype(np.int64)
        small = np.minimum(sizes, int(_BIG)).astype(np.uint32)
        for a in (small, big_rows, big_values):
            a.setflags(write=False)
        return cls(small, big_rows, big_values)

    def __len__(self) -> int:
        return len(self.small)

    def arrays(self) -> tuple[np.ndarray, ...]:
        """What is stored."""
        return self.small, self.big_rows, self.big_values

    def decode(self) -> np.ndarray:
        """The sizes as one int64 array (a new one on every call)."""
        sizes = self.small.astype(np.int64)
        sizes[self.big_rows] = self.big_values
        return sizes

    def at(self, row: int) -> int:
        value = int(self.small[row])
        if value == int(_BIG):
            k = int(np.searchsorted(self.big_rows, row))
            if k < len(self.big_rows) and int(self.big_rows[k]) == row:
                return int(self.big_values[k])
        return value

    def total(self) -> int:
        """The sum, without decoding."""
        small = int(self.small.sum(dtype=np.uint64))
        big: list[int] = self.big_values.tolist()
        return small - int(_BIG) * len(self.big_rows) + sum(big)
