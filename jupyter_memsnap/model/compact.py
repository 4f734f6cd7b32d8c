"""Compact columns: what a kept snapshot stores per object, in as few bytes as the values
allow (issue 13: at most 16 B/object in the kernel's RSS). Each column decodes to the plain
numpy array on demand; the decoded array is a temporary, never kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

_LOW_BITS = 32
_BIG = np.uint32(0xFFFFFFFF)
_CHUNK = 1 << 20
"""Rows per step where a column is read a piece at a time (no temporary its size)."""


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


def _ascending(values: np.ndarray, chunk: int = _CHUNK) -> bool:
    """Whether ``values`` never decrease, compared a chunk at a time (no temporary the
    size of the array)."""
    return all(
        bool((values[i + 1 : i + chunk + 1] >= values[i : min(i + chunk, values.size - 1)]).all())
        for i in range(0, values.size - 1, chunk)
    )


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
        if not _ascending(ids):  # a corrupted file's
            halves = ids >> np.uint64(_LOW_BITS)
            starts = [0, *(np.flatnonzero(np.diff(halves)) + 1).tolist(), ids.size]
            high = halves[starts[:-1]].tolist()
        else:  # one binary search per run: no temporary per id
            high, starts = [], [0]
            while starts[-1] < ids.size:
                high.append(int(ids[starts[-1]]) >> _LOW_BITS)
                end = (high[-1] + 1) << _LOW_BITS
                starts.append(
                    int(np.searchsorted(ids, np.uint64(end))) if end < 1 << 64 else ids.size
                )
        arrays = (np.array(high, np.uint64), np.array(starts, np.int64), ids.astype(np.uint32))
        for a in arrays:
            a.setflags(write=False)
        return cls(*arrays)

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

    def searchsorted(self, value: int, side: Literal["left", "right"] = "left") -> int:
        """Where ``value`` goes among the sorted ids, as ``np.searchsorted`` (two binary
        searches)."""
        half, rest = value >> _LOW_BITS, value & 0xFFFFFFFF
        run = int(np.searchsorted(self.high, np.uint64(half)))
        lo = int(self.starts[run])
        if run == len(self.high) or int(self.high[run]) != half:
            return lo
        hi = int(self.starts[run + 1])
        return lo + int(np.searchsorted(self.low[lo:hi], np.uint32(rest), side=side))

    def find(self, obj_id: int) -> int:
        """Position of ``obj_id`` among the sorted ids, or -1."""
        k = self.searchsorted(obj_id)
        return k if k < len(self.low) and self.at(k) == obj_id else -1


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

    def plus(self, rows: np.ndarray, extra: np.ndarray) -> Sizes:
        """These sizes with ``extra`` added at ``rows`` (distinct rows)."""
        rows = np.asarray(rows, dtype=np.int64)
        total = self.take(rows) + extra
        fits = total < int(_BIG)
        small = self.small.copy()
        small[rows] = np.minimum(total, int(_BIG))
        keep = ~np.isin(self.big_rows, rows)
        big_rows = np.concatenate([self.big_rows[keep], rows[~fits]])
        by_row = np.argsort(big_rows, kind="stable")
        big_values = np.concatenate([self.big_values[keep], total[~fits]])[by_row]
        for a in (small, big_rows, big_values):
            a.setflags(write=False)
        return Sizes(small, big_rows[by_row], big_values)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The sizes of these rows (int64), without decoding the column."""
        rows = np.asarray(rows, dtype=np.int64)
        sizes = self.small[rows].astype(np.int64)
        marked = np.flatnonzero(sizes == int(_BIG))
        if marked.size and len(self.big_rows):
            k = np.minimum(np.searchsorted(self.big_rows, rows[marked]), len(self.big_rows) - 1)
            found = self.big_rows[k] == rows[marked]
            sizes[marked[found]] = self.big_values[k[found]]
        result: np.ndarray = sizes
        return result

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

    def sum_by(self, labels: np.ndarray, count: int) -> np.ndarray:
        """Per label ``0..count-1``, the sum of the sizes of the rows carrying it (a negative
        label: none), a chunk at a time rather than decoding the column."""
        out = np.zeros(count, dtype=np.int64)
        for lo in range(0, len(self.small), _CHUNK):
            label = labels[lo : lo + _CHUNK]
            keep = label >= 0
            weights = self.small[lo : lo + _CHUNK][keep]  # a chunk's sum is exact in a float64
            out += np.bincount(label[keep], weights, minlength=count)[:count].astype(np.int64)
        if len(self.big_rows):
            label = labels[self.big_rows]
            keep = label >= 0
            np.add.at(out, label[keep], self.big_values[keep] - int(_BIG))
        return out

    def total(self) -> int:
        """The sum, without decoding."""
        small = int(self.small.sum(dtype=np.uint64))
        big: list[int] = self.big_values.tolist()
        return small - int(_BIG) * len(self.big_rows) + sum(big)
