"""The numbered list of snapshots a session keeps, and how users refer to them."""

from __future__ import annotations

from collections.abc import Iterator

from .cluster import ClusterSnapshot
from .snapshot import Snapshot

Stored = Snapshot | ClusterSnapshot


class SnapshotError(LookupError):
    """A snapshot reference that names no stored snapshot."""


class SnapshotStore:
    """Snapshots numbered from 1 in the order taken; numbers are never reused. Cluster
    snapshots share the numbering; iterating gives this process's snapshots only.

    A reference is a number (``3``), a negative index (``-1`` is the latest) or a label.
    """

    def __init__(self) -> None:
        self._items: dict[int, Stored] = {}
        self._next = 1

    def add(self, snap: Stored) -> int:
        number = self._next
        self._items[number] = snap
        self._next += 1
        return number

    def clear(self) -> int:
        """Forget every snapshot; returns how many there were."""
        n = len(self._items)
        self._items.clear()
        return n

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[tuple[int, Snapshot]]:
        return iter([(n, s) for n, s in self._items.items() if isinstance(s, Snapshot)])

    def clusters(self) -> list[tuple[int, ClusterSnapshot]]:
        return [(n, s) for n, s in self._items.items() if isinstance(s, ClusterSnapshot)]

    def number_of(self, ref: str | int) -> int:
        """Resolve a reference to a snapshot number, or raise SnapshotError."""
        if not self._items:
            raise SnapshotError("no snapshots yet: take one with %memsnap take")
        text = str(ref).strip()
        try:
            value = int(text)
        except ValueError:
            matches = [n for n, s in self._items.items() if s.label == text]
            if not matches:
                raise SnapshotError(f"no snapshot labelled {text!r}") from None
            return matches[-1]
        numbers = list(self._items)
        if value < 0:
            if -value > len(numbers):
                raise SnapshotError(f"snapshot {value} does not exist: there are {len(numbers)}")
            return numbers[value]
        if value not in self._items:
            raise SnapshotError(f"snapshot {value} does not exist: stored are {_ranges(numbers)}")
        return value

    def get(self, ref: str | int) -> Snapshot:
        """This process's snapshot; SnapshotError for a cluster snapshot."""
        number = self.number_of(ref)
        snap = self._items[number]
        if not isinstance(snap, Snapshot):
            raise SnapshotError(
                f"snapshot {number} is a cluster snapshot of {len(snap.worker_table)} workers: "
                f"%memsnap show {number} --worker ADDRESS brings one worker's"
            )
        return snap

    def get_cluster(self, ref: str | int) -> ClusterSnapshot:
        number = self.number_of(ref)
        snap = self._items[number]
        if not isinstance(snap, ClusterSnapshot):
            raise SnapshotError(f"snapshot {number} is not a cluster snapshot")
        return snap

    def is_cluster(self, ref: str | int) -> bool:
        return isinstance(self._items[self.number_of(ref)], ClusterSnapshot)


def _ranges(numbers: list[int]) -> str:
    return (
        ", ".join(str(n) for n in numbers) if len(numbers) <= 6 else (f"{numbers[0]}…{numbers[-1]}")
    )
