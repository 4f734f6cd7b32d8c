"""The compiled merges behind diffs and cells of birth against their numpy reference, and
bad input."""

from __future__ import annotations

import contextlib
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_memsnap.model import merges

needs_c = pytest.mark.skipif(not merges.HAVE_COMPILED, reason="compiled _merges not built")


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 2**64 - 1), unique=True),
    st.lists(st.integers(0, 2**64 - 1), unique=True),
)
def test_merge_of_sorted_ids_matches_a_lookup(a: list[int], b: list[int]) -> None:
    sa, sb = sorted(a), sorted(b)
    merged = merges.match_sorted(np.array(sa, np.uint64), np.array(sb, np.uint64))
    where = {x: i for i, x in enumerate(sa)}
    assert merged.tolist() == [where.get(x, -1) for x in sb]


def _snapshot_columns(ids: list[int], types: list[int], seed: int) -> tuple[np.ndarray, ...]:
    """ids and types per row (rows in a shuffled order), as a snapshot stores them."""
    rows = np.random.default_rng(seed).permutation(len(ids))
    row_ids = np.empty(len(ids), np.uint64)
    row_ids[rows] = ids
    row_types = np.empty(len(ids), np.int32)
    row_types[rows] = types
    order = np.argsort(row_ids, kind="stable").astype(np.uint32)
    return row_ids[order], order, row_types


pool = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 2)), unique_by=lambda t: t[0])


@needs_c
@settings(max_examples=150, deadline=None)
@given(pool, pool, st.integers(0, 2**32 - 1))
def test_compiled_survivors_agree_with_numpy(
    a: list[tuple[int, int]], b: list[tuple[int, int]], seed: int
) -> None:
    cols_a = _snapshot_columns([x for x, _ in a], [t for _, t in a], seed)
    cols_b = _snapshot_columns([x for x, _ in b], [t for _, t in b], seed + 1)
    c = merges.survivors(*cols_a, *cols_b, compiled=True)
    p = merges.survivors(*cols_a, *cols_b, compiled=False)
    for got, want in zip(c, p, strict=True):
        np.testing.assert_array_equal(got, want)
    alive = {x for x, t in a} & {x for x, t in b}
    same_type = {x for x in alive if dict(a)[x] == dict(b)[x]}
    ids_a = np.empty(len(a), np.uint64)
    ids_a[cols_a[1]] = cols_a[0]
    assert {int(ids_a[r]) for r in c[0]} == same_type
    assert int(c[2].sum()) == int(c[3].sum()) == len(same_type)


@needs_c
def test_survivors_refuses_inconsistent_columns() -> None:
    ids = np.array([1, 2, 3], np.uint64)
    order = np.array([0, 1, 2], np.uint32)
    types = np.zeros(3, np.int32)
    with pytest.raises(ValueError, match="differ in length"):
        merges.survivors(ids, order[:2], types, ids, order, types)
    with pytest.raises(ValueError, match="out of range"):
        merges.survivors(ids, np.array([0, 1, 7], np.uint32), types, ids, order, types)
    with pytest.raises(ValueError, match="whole number"):
        merges._merges.match(b"12345", ids)


@needs_c
@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.booleans(), st.integers(0, 2**40)), max_size=60))
def test_compiled_tally_agrees_with_numpy(rows: list[tuple[int, bool, int]]) -> None:
    codes = np.array([c for c, _, _ in rows], np.int32)
    flags = np.array([f for _, f, _ in rows], bool)
    sizes = np.array([s for _, _, s in rows], np.int64)
    c = merges.tally(codes, flags, sizes, 8, compiled=True)
    p = merges.tally(codes, flags, sizes, 8, compiled=False)
    for got, want in zip(c, p, strict=True):
        np.testing.assert_array_equal(got, want)
    for code in range(8):
        mine = [(f, s) for c_, f, s in rows if c_ == code]
        assert c[1][code] == sum(f for f, _ in mine)
        assert c[3][code] == sum(s for f, s in mine if f)


@needs_c
def test_tally_refuses_codes_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"codes\[1\] out of range"):
        merges.tally(np.array([0, 5], np.int32), np.zeros(2, bool), np.zeros(2, np.int64), 3)
    with pytest.raises(ValueError, match="differ in length"):
        merges.tally(np.array([0], np.int32), np.zeros(2, bool), np.zeros(2, np.int64), 3)


@needs_c
@settings(max_examples=150, deadline=None)
@given(pool, pool, st.integers(-5, 5))
def test_compiled_inherit_agrees_with_numpy_and_a_dict(
    a: list[tuple[int, int]], b: list[tuple[int, int]], default: int
) -> None:
    a, b = sorted(a), sorted(b)
    ids_a, types_a = np.array([x for x, _ in a], np.uint64), np.array([t for _, t in a], np.int32)
    ids_b, types_b = np.array([x for x, _ in b], np.uint64), np.array([t for _, t in b], np.int32)
    value_a = np.arange(len(a), dtype=np.int32) * 10 + 100
    args = (ids_a, types_a, value_a, ids_b, types_b, default)
    c = merges.inherit(*args, compiled=True)
    np.testing.assert_array_equal(c, merges.inherit(*args, compiled=False))
    known = {(x, t): 100 + 10 * i for i, (x, t) in enumerate(a)}
    assert c.tolist() == [known.get((x, t), default) for x, t in b]


@needs_c
def test_inherit_refuses_columns_of_different_lengths() -> None:
    ids = np.array([1, 2], np.uint64)
    with pytest.raises(ValueError, match="differ in length"):
        merges.inherit(ids, np.zeros(1, np.int32), np.zeros(2, np.int32), ids, np.zeros(2), 0)


ids_any = st.lists(st.integers(0, 40), max_size=30)


def _strictly_ascending(ids: list[int]) -> bool:
    return all(x < y for x, y in itertools.pairwise(ids))


@needs_c
@settings(max_examples=300, deadline=None)
@given(ids_any, ids_any, st.integers(0, 2**32 - 1))
def test_every_merge_refuses_ids_that_are_not_strictly_ascending(
    a: list[int], b: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    ida, idb = np.array(a, np.uint64), np.array(b, np.uint64)
    order_a = rng.permutation(len(a)).astype(np.uint32)
    order_b = rng.permutation(len(b)).astype(np.uint32)
    types_a, types_b = np.zeros(len(a), np.int32), np.zeros(len(b), np.int32)
    calls = [
        lambda: merges._merges.match(ida, idb),
        lambda: merges._merges.survivors(ida, order_a, types_a, idb, order_b, types_b),
        lambda: merges._merges.inherit(ida, types_a, types_a, idb, types_b, -1),
    ]
    valid = _strictly_ascending(a) and _strictly_ascending(b)
    for call in calls:
        if valid:
            call()
        else:
            with pytest.raises(ValueError, match="strictly ascending"):
                call()


@needs_c
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80), st.binary(max_size=80), st.integers(0, 7), st.integers(0, 7))
def test_merges_refuse_ragged_or_misaligned_buffers_and_never_crash(
    a: bytes, b: bytes, skip_a: int, skip_b: int
) -> None:
    va, vb = (
        memoryview(bytearray(b"\0" * 8 + a))[skip_a:],
        memoryview(bytearray(b"\0" * 8 + b))[skip_b:],
    )
    for call in (
        lambda: merges._merges.match(va, vb),
        lambda: merges._merges.survivors(va, va, va, vb, vb, vb),
        lambda: merges._merges.inherit(va, va, va, vb, vb, 0),
        lambda: merges._merges.tally(va, vb, va, 4),
    ):
        with contextlib.suppress(ValueError):
            call()
