"""Lean snapshots (issue 13): compact columns decode to exactly what was stored, a kept
snapshot costs at most 16 B/object of the process's anonymous memory (the kernel's own
count, RssAnon, is the truth), its cached views never more than the snapshot, and file
mappings go away with the snapshot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jupyter_memsnap
from jupyter_memsnap.model import compact, spill
from jupyter_memsnap.model.compact import Sizes, SortedIds, narrow

linux_only = pytest.mark.skipif(
    not os.path.exists("/proc/self/status"), reason="RssAnon is Linux's"
)
needs_spill = pytest.mark.skipif(
    spill.directory() is None, reason="no directory on a disk for file mappings"
)

ids_strategy = st.lists(st.integers(0, 2**64 - 1), max_size=300, unique=True).map(sorted)


@given(ids=ids_strategy, probes=st.lists(st.integers(0, 2**64 - 1), max_size=20))
@settings(max_examples=200, deadline=None)
def test_sorted_ids_decode_and_find_like_numpy(ids: list[int], probes: list[int]) -> None:
    plain = np.array(ids, dtype=np.uint64)
    column = SortedIds.encode(plain)
    np.testing.assert_array_equal(column.decode(), plain)
    for k, value in enumerate(ids):
        assert column.find(value) == k
        assert column.at(k) == value
    for value in probes:
        k = int(np.searchsorted(plain, np.uint64(value)))
        expected = k if k < len(ids) and ids[k] == value else -1
        assert column.find(value) == expected


@given(st.lists(st.integers(0, 2**62), max_size=200))
@settings(max_examples=200, deadline=None)
def test_sizes_decode_sum_and_index_like_numpy(values: list[int]) -> None:
    plain = np.array(values, dtype=np.int64)
    column = Sizes.encode(plain)
    np.testing.assert_array_equal(column.decode(), plain)
    assert column.total() == sum(values)
    assert [column.at(i) for i in range(len(values))] == values
    assert column.small.dtype == np.uint32


@given(
    st.lists(st.integers(0, 2**40), min_size=1, max_size=100),
    st.data(),
)
@settings(max_examples=200, deadline=None)
def test_sizes_plus_adds_like_numpy(values: list[int], data: st.DataObject) -> None:
    """Native buffers added to their owners' rows, across the 4 GiB boundary both ways."""
    plain = np.array(values, dtype=np.int64)
    rows = data.draw(st.lists(st.integers(0, len(values) - 1), unique=True))
    extra = data.draw(st.lists(st.integers(0, 2**33), min_size=len(rows), max_size=len(rows)))
    added = Sizes.encode(plain).plus(np.array(rows, np.int64), np.array(extra, np.int64))
    plain[rows] += np.array(extra, np.int64)
    np.testing.assert_array_equal(added.decode(), plain)
    assert added.total() == int(plain.sum())
    assert (np.diff(added.big_rows) > 0).all()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2**34), max_size=40), st.data())
def test_sizes_sum_by_label_like_numpy(values: list[int], data: st.DataObject) -> None:
    """Per-label sums without decoding the column, large sizes included (negative: none)."""
    count = data.draw(st.integers(0, 5))
    labels = data.draw(
        st.lists(st.integers(-3, count - 1), min_size=len(values), max_size=len(values))
    )
    plain, label = np.array(values, dtype=np.int64), np.array(labels, dtype=np.int32)
    expected = [int(plain[label == j].sum()) for j in range(count)]
    assert Sizes.encode(plain).sum_by(label, count).tolist() == expected
    with mock.patch.object(compact, "_CHUNK", 3):
        assert Sizes.encode(plain).sum_by(label, count).tolist() == expected


def test_a_size_of_4_gib_or_more_is_kept_exactly() -> None:
    """The walkers keep sizes in 4 bytes, a larger one aside: an array of 4 GiB + 1 KiB
    (address space only, never touched) keeps its exact size."""
    try:
        big = np.empty(2**32 + 1024, dtype=np.uint8)
    except MemoryError:
        pytest.skip("no 4 GiB of address space")
    snap = jupyter_memsnap.take(roots=[("big", "variable", big)])
    row = snap.row(id(big))
    assert snap.size_of(row) == sys.getsizeof(big) == int(snap.sizes[row]) > 2**32
    assert snap.total_size == int(snap.sizes.sum()) > 2**32


def test_negative_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Sizes.encode(np.array([3, -1]))


@pytest.mark.parametrize(
    ("values", "low", "dtype"),
    [([0, 5, 300], 0, np.uint16), ([0, 70_000], 0, np.uint32), ([2, 7], -1, np.int16)],
)
def test_narrow_picks_the_smallest_dtype_that_holds_the_values(
    values: list[int], low: int, dtype: type
) -> None:
    out = narrow(np.array(values, dtype=np.int64), low)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, values)


def test_snapshot_columns_survive_compaction() -> None:
    """What a snapshot gives back equals an independent reading: ids of live objects found
    by id, sizes equal to sys.getsizeof for plain builtins."""
    values = [float(i) + 0.5 for i in range(1000)] + ["x" * i for i in range(1000)]
    snap = jupyter_memsnap.take(roots=[("values", "variable", values)], to_disk=True)
    ids = snap.sorted_ids
    assert np.all(ids[1:] > ids[:-1])
    for obj in values[::97]:
        row = snap.row(id(obj))
        assert row >= 0 and snap.id_of(row) == id(obj)
        assert snap.size_of(row) == sys.getsizeof(obj) == int(snap.sizes[row])
    assert snap.total_size == int(snap.sizes.sum())


def _run(code: str, env: dict[str, str] | None = None) -> dict[str, float]:
    script = textwrap.dedent(
        """
        import gc, json, sys
        import jupyter_memsnap
        from jupyter_memsnap.model import allocator

        def anon():
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        return int(line.split()[1]) * 1024

        jupyter_memsnap.take(roots=[]).types  # imports what a snapshot needs, first
        data = [(i, float(i)) for i in range(700_000)]
        gc.collect()
        allocator.malloc_trim()
        """
    ) + textwrap.dedent(code)
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@linux_only
@needs_spill
def test_a_kept_snapshot_costs_at_most_16_bytes_per_object_of_anonymous_memory() -> None:
    """Measured by the kernel (RssAnon) around take(), and again after the views a user asks
    for: their caches add at most the snapshot's own size. Free space glibc keeps from the
    walk's temporaries is handed back first (as `%memsnap trim` does; a snapshot never trims
    the user's process by itself) -- at 30 M objects those temporaries are mappings of their
    own that go back when freed."""
    r = _run(
        """
        before = anon()
        snap = jupyter_memsnap.take()
        allocator.malloc_trim()  # %memsnap trim: what the walk freed, glibc may keep
        kept = anon() - before
        snap.retained, snap.types, snap.variables, snap.modules, snap.objects
        gc.collect()
        allocator.malloc_trim()
        with_views = anon() - before
        print(json.dumps(dict(n=len(snap), kept=kept, with_views=with_views,
                              own=snap.memory_nbytes)))
        """
    )
    n = r["n"]
    assert n > 2_000_000
    assert r["kept"] / n <= 16, r
    assert r["with_views"] - r["kept"] <= max(r["own"], r["kept"]), r


@linux_only
def test_taking_a_snapshot_needs_at_most_40_bytes_per_object_at_its_peak() -> None:
    """The kernel's high-water mark (VmHWM, reset through /proc/self/clear_refs) over the RSS
    before take(): the walk keeps 4-byte referents, sizes and ids in place of its object
    array, so its peak stays under issue 13's 40 B/object."""
    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("cannot reset the high-water mark here")
    r = _run(
        """
        def status(field):
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) * 1024

        jupyter_memsnap.take()
        gc.collect()
        allocator.malloc_trim()
        rss = status("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        snap = jupyter_memsnap.take()
        print(json.dumps(dict(n=len(snap), peak=status("VmHWM") - rss)))
        """
    )
    assert r["n"] > 2_000_000
    assert r["peak"] / r["n"] <= 40, r


@linux_only
@needs_spill
def test_to_disk_keeps_the_snapshot_out_of_anonymous_memory() -> None:
    r = _run(
        """
        before = anon()
        snap = jupyter_memsnap.take(to_disk=True)
        allocator.malloc_trim()
        kept = anon() - before
        total = snap.total_size
        with open("/proc/self/maps") as f:
            mapped = sum("jupyter_memsnap-" in line for line in f)
        del snap
        gc.collect()
        with open("/proc/self/maps") as f:
            left = sum("jupyter_memsnap-" in line for line in f)
        print(json.dumps(dict(n=len(data) * 3, kept=kept, total=total, mapped=mapped,
                              left=left)))
        """
    )
    assert r["kept"] / r["n"] <= 2, r
    assert r["total"] > 0
    assert r["mapped"] >= 4 and r["left"] == 0, r


def test_spill_falls_back_to_memory_where_files_cannot_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    big = np.arange(1 << 18, dtype=np.int64)
    spill.directory.cache_clear()
    try:
        monkeypatch.setenv("MEMSNAP_SPILL_DIR", "/proc/no-such-dir")
        assert spill.directory() is None
        assert spill.to_file(big) is big
        if os.path.isdir("/dev/shm"):
            spill.directory.cache_clear()
            monkeypatch.setenv("MEMSNAP_SPILL_DIR", "/dev/shm")
            assert spill.directory() is None, "tmpfs pages cannot be dropped: no gain"
    finally:
        spill.directory.cache_clear()
    monkeypatch.delenv("MEMSNAP_SPILL_DIR")
    if spill.directory() is not None:
        mapped = spill.to_file(big)
        assert spill.is_file_backed(mapped) and not mapped.flags.writeable
        np.testing.assert_array_equal(mapped, big)
        assert spill.memory_bytes(mapped) == 0


@linux_only
@needs_spill
def test_the_memory_table_names_the_snapshot_files() -> None:
    values = [(i, str(i)) for i in range(200_000)]
    first = jupyter_memsnap.take(to_disk=True)
    first.retained  # noqa: B018 - reads the mapped graph: its pages become resident
    second = jupyter_memsnap.take()
    names = dict(second.process.files)
    assert names.get("jupyter_memsnap snapshot files", 0) > 0, names
    del values, first
