"""Will a walk fit? Refuse one that would push the kernel out of memory, before it starts.

A walk needs memory in proportion to the live objects (its tables, the reference graph, the
retained sizes after it). The number of objects is known from the last walk, or estimated
from the allocator's live blocks (``sys.getallocatedblocks``: about one per object, and
free to read). The room is the least of what the machine has available, what the process's
cgroup still allows (``memory.max``) and what its address-space limit (``RLIMIT_AS``) still
allows. A walk that would need more than ``SAFE_SHARE`` of that room is refused with
:class:`NotEnoughMemory`, a ``MemoryError`` whose one-line message says what it needs, what
is free, and what to do.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import psutil

BYTES_PER_OBJECT = {"snapshot": 48, "census": 32}
"""Peak extra bytes per live object while walking, what the walk keeps included (measured
35-39 for a snapshot with its graph at 3-33 M objects, ~24 for a census; rounded up: a heap
with more references per object needs more)."""
SAFE_SHARE = 0.8
"""Use at most this share of the room that is left."""


class NotEnoughMemory(MemoryError):
    """A walk was refused, or ran out of memory: the message says why and what to do."""


@dataclass(frozen=True)
class Room:
    """Bytes the process can still allocate, and which limit decides it."""

    bytes: int
    limit: str


def _cgroup_room() -> int | None:
    """``memory.max - memory.current`` of this process's cgroup (v2), None without a limit."""
    try:
        with open("/proc/self/cgroup") as f:
            path = next(line.split(":", 2)[2].strip() for line in f if line.startswith("0::"))
        base = os.path.join("/sys/fs/cgroup", path.lstrip("/"))
        with open(os.path.join(base, "memory.max")) as f:
            limit = f.read().strip()
        with open(os.path.join(base, "memory.current")) as f:
            current = int(f.read())
    except (OSError, StopIteration, ValueError):
        return None
    return None if limit == "max" else max(int(limit) - current, 0)


def _address_space_room() -> int | None:
    """``RLIMIT_AS`` minus the address space in use, None without a limit (or off POSIX)."""
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(int(soft) - int(psutil.Process().memory_info().vms), 0)


def room() -> Room:
    """What this process can still allocate, and the limit that decides it."""
    candidates = [(psutil.virtual_memory().available, "available memory")]
    limits = ((_cgroup_room(), "the cgroup's memory.max"), (_address_space_room(), "RLIMIT_AS"))
    candidates += [(value, name) for value, name in limits if value is not None]
    value, name = min(candidates)
    return Room(int(value), name)


def estimated_objects(last_walk: int) -> int:
    """Live objects: the last walk's count or the allocator's live blocks, the larger."""
    return max(last_walk, sys.getallocatedblocks())


def check(kind: str, last_walk: int) -> None:
    """Raise NotEnoughMemory when a walk of ``kind`` ("snapshot", "census") would need more
    than ``SAFE_SHARE`` of the room left."""
    objects = estimated_objects(last_walk)
    need = objects * BYTES_PER_OBJECT[kind]
    left = room()
    if need > SAFE_SHARE * left.bytes:
        raise NotEnoughMemory(refusal(kind, need, objects, left))


@contextlib.contextmanager
def guarded(kind: str, last_walk: int, force: bool = False) -> Iterator[None]:
    """Around a walk of ``kind``: refuse it first unless ``force``; a ``MemoryError`` on the
    way becomes the same clear NotEnoughMemory (the walk's partial results are dropped)."""
    if not force:
        check(kind, last_walk)
    try:
        yield
    except NotEnoughMemory:
        raise
    except MemoryError:
        raise NotEnoughMemory(
            f"ran out of memory during the {kind}, which is dropped (stored snapshots are "
            "intact); free memory first (del large variables, %memsnap clear drops stored "
            "snapshots)"
        ) from None


def refusal(kind: str, need: int, objects: int, left: Room) -> str:
    return (
        f"not enough memory for a {kind}: about {_size(need)} for ~{objects:,} objects, "
        f"{_size(left.bytes)} left under {left.limit}; free memory first (del large "
        "variables, %memsnap clear drops stored snapshots, take --to-disk keeps new ones out "
        "of memory) or force it (take --force)"
    )


KEPT_BYTES_PER_OBJECT = 16
"""What a kept snapshot holds in memory per object (compact columns, graph in a file)."""

KEPT_SHARE = 0.1
"""A snapshot that would keep more than this share of the room left goes to disk."""


def keep_on_disk(objects: int) -> bool:
    """Whether a snapshot of ``objects`` should keep every column in a file mapping: keeping
    it in memory would take a tenth or more of the room left."""
    return objects * KEPT_BYTES_PER_OBJECT > KEPT_SHARE * room().bytes


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"
