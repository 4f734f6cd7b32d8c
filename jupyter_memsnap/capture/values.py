"""Waste found in live values: what a snapshot cannot see because it keeps no contents.

Duplicate strings, DataFrame columns whose dtype is larger than their values need,
mostly-zero arrays and small views that keep a big array alive are facts about values, so
they are read from the user's variables while they are alive, never through a stored id.
Each :class:`Finding` keeps ids, numbers and text only; the views check its id and type
against a snapshot before showing it. Work is bounded: variables are probed largest first
within a time budget, and long containers and object columns are read from a sample.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .heap import type_names

MIN_BYTES = 1 << 20
"""A finding must be worth at least this much."""

SAMPLE = 100_000
"""Elements read from a long container or object column; what it says is scaled up."""

ZERO_SHARE = 0.9
ZERO_ESTIMATE = 1_000_000
FULL_COUNT_BYTES = 1 << 30
"""Arrays up to this size have their zeros counted; larger ones are judged by a sample."""
VIEW_SHARE = 0.5
"""A view is "small" when it sees at most this share of the array that owns its data."""

LOW_CARDINALITY = 0.5
"""An object column of strings with at most this share of distinct values is a category."""

POINTER = 8
INTERN = "sys.intern(v) if type(v) is str else v"


@dataclass(frozen=True)
class Finding:
    """One waste in one value: ``bytes`` is what ``fix`` would save, measured on the value.
    ``obj_id``/``type_name`` are the variable's object, checked against the snapshot;
    ``base_id`` is the array a small view keeps alive (0 otherwise)."""

    kind: str
    variable: str
    where: str
    obj_id: int
    type_name: str
    bytes: int
    evidence: str
    fix: str
    base_id: int = 0


def type_name(obj: object) -> str:
    """The object's type as a snapshot's type table labels it (``pandas.DataFrame``)."""
    module, qualname = type_names(type(obj))
    return qualname if module == "builtins" else f"{module}.{qualname}"


def probe(variables: Iterable[tuple[str, object]], budget: float = 0.4) -> list[Finding]:
    """Findings in each variable's value, in the order given (largest first), until the
    time budget is spent."""
    stop = time.perf_counter() + budget
    found: list[Finding] = []
    variables = list(variables)
    for strings in (False, True):  # arrays and numbers first: strings cost per element
        for name, value in variables:
            if time.perf_counter() > stop:
                return found
            try:
                found.extend(_findings(name, value, stop, strings))
            except Exception:  # a value whose methods raise is no insight, never an error
                continue
    return found


def _findings(name: str, value: object, stop: float, strings: bool) -> Iterator[Finding]:
    pd = sys.modules.get("pandas")
    if isinstance(value, np.ndarray):
        if (value.dtype == object) == strings:
            yield from _array(name, name, value)
    elif pd is not None and isinstance(value, pd.DataFrame):
        for column in list(value.columns):
            if time.perf_counter() > stop:
                return
            series = value[column]
            if isinstance(series, pd.Series) and _stringy(series.dtype) == strings:
                yield from _each(_column(name, f"{name}[{column!r}]", value, series))
    elif pd is not None and isinstance(value, pd.Series):
        if _stringy(value.dtype) == strings:
            yield from _column(name, name, value, value)
    elif type(value) in (list, tuple, dict) and strings:
        yield from _container(name, value)


def _each(findings: Iterator[Finding]) -> list[Finding]:
    """One column's findings; none when reading it raises (the other columns still count)."""
    try:
        return list(findings)
    except Exception:
        return []


def _stringy(dtype: Any) -> bool:
    """Python objects or pandas strings: read per element."""
    storage = getattr(dtype, "storage", None)
    return bool(dtype == np.dtype(object) or storage in ("python", "pyarrow"))


# ---------------------------------------------------------------- arrays
def _owner(arr: np.ndarray) -> np.ndarray | None:
    """The array that owns the memory a view sees (None: it owns its own, or a non-array
    object does)."""
    base: Any = arr.base
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return base if isinstance(base, np.ndarray) else None


def _array(variable: str, where: str, arr: np.ndarray) -> Iterator[Finding]:
    owner = _owner(arr)
    if owner is not None and owner.nbytes >= MIN_BYTES and arr.nbytes <= VIEW_SHARE * owner.nbytes:
        yield Finding(
            "small view keeps a big array",
            variable,
            where,
            id(arr),
            type_name(arr),
            owner.nbytes - arr.nbytes,
            f"{where} sees {arr.nbytes:,} bytes of an array of {owner.nbytes:,} "
            f"{owner.dtype} ({'×'.join(map(str, owner.shape))}) through .base",
            f"{where} = {where}.copy()",
            id(owner),
        )
    numeric = arr.dtype.kind in "biufc" and arr.ndim in (1, 2)
    if numeric and owner is None and arr.nbytes >= MIN_BYTES:
        yield from _zeros(variable, where, arr)
    if arr.dtype == object:
        yield from _strings(variable, where, arr, arr.ravel()[:SAMPLE].tolist(), arr.size, "array")


def _zeros(variable: str, where: str, arr: np.ndarray) -> Iterator[Finding]:
    """Values at random places first (a strided sample can alias with a pattern); the
    exact count only when they say mostly zeros and the array is small enough to count
    quickly, else the share of a larger random sample, said so."""
    rng = np.random.default_rng(0)
    sample = arr.flat[rng.integers(0, arr.size, min(arr.size, SAMPLE))]
    if np.count_nonzero(sample) > (1 - ZERO_SHARE + 0.05) * sample.size:
        return
    if arr.nbytes <= FULL_COUNT_BYTES:
        nonzero, how = int(np.count_nonzero(arr)), ""
    else:
        sample = arr.flat[rng.integers(0, arr.size, ZERO_ESTIMATE)]
        nonzero = int(np.count_nonzero(sample) * arr.size / sample.size)
        how = f", estimated from {sample.size:,} values at random"
    if nonzero > (1 - ZERO_SHARE) * arr.size:
        return
    index = 4 if nonzero < 2**31 else 8
    rows = arr.shape[0] if arr.ndim == 2 else 1
    sparse = nonzero * (arr.itemsize + index) + (rows + 1) * index
    saved = arr.nbytes - sparse
    if saved < MIN_BYTES:
        return
    matrix = where if arr.ndim == 2 else f"{where}[None, :]"
    yield Finding(
        "mostly zeros",
        variable,
        where,
        id(arr),
        type_name(arr),
        saved,
        f"{arr.size - nonzero:,} of {arr.size:,} values are 0 "
        f"({1 - nonzero / arr.size:.1%}{how}); CSR keeps {sparse:,} bytes",
        f"import scipy.sparse; {where} = scipy.sparse.csr_array({matrix})",
    )


# ---------------------------------------------------------------- strings
def _string_costs(values: list[object]) -> tuple[int, int, int, int]:
    """(bytes of the distinct str objects, bytes of one per distinct value, distinct values,
    strings) among ``values``."""
    strings = [v for v in values if type(v) is str]
    objects = list({id(v): v for v in strings}.values())
    sizes = list(map(sys.getsizeof, objects))
    one = dict(zip(objects, sizes, strict=True))
    return sum(sizes), sum(one.values()), len(one), len(strings)


def _strings(
    variable: str, where: str, holder: object, values: list[object], length: int, shape: str
) -> Iterator[Finding]:
    """Duplicate strings in a list, tuple, object array or the values of a dict."""
    sample = values[:SAMPLE]
    held, distinct_bytes, distinct, strings = _string_costs(sample)
    scale = length / max(len(sample), 1)
    wasted = int((held - distinct_bytes) * scale) if len(sample) < length else held - distinct_bytes
    if wasted < MIN_BYTES:
        return
    sampled = f" (read {len(sample):,} of {length:,}, scaled)" if len(sample) < length else ""
    fixes = {
        "list": f"{where} = [sys.intern(s) if type(s) is str else s for s in {where}]",
        "tuple": f"{where} = tuple(sys.intern(s) if type(s) is str else s for s in {where})",
        "array": f"{where}.flat[:] = [{INTERN} for v in {where}.flat]",
        "dict": f"{where} = {{k: {INTERN} for k, v in {where}.items()}}",
        "records": f"{where} = [{{k: {INTERN} for k, v in d.items()}} for d in {where}]",
    }
    yield Finding(
        "duplicate strings",
        variable,
        where,
        id(holder),
        type_name(holder),
        wasted,
        f"{strings:,} strings, {distinct:,} distinct values{sampled}: every copy but one is waste",
        "import sys; " + fixes[shape],
    )


def _container(variable: str, value: Any) -> Iterator[Finding]:
    if type(value) is dict:
        head = list(itertools.islice(value.values(), SAMPLE))
        yield from _strings(variable, variable, value, head, len(value), "dict")
        return
    shape = "list" if type(value) is list else "tuple"
    head = list(value[:SAMPLE])
    if head and all(type(d) is dict for d in head[:100]):  # records: the strings are in the dicts
        values = [v for d in head if type(d) is dict for v in d.values()]
        per = len(values) / len(head)
        yield from _strings(variable, variable, value, values, int(per * len(value)), "records")
        return
    yield from _strings(variable, variable, value, head, len(value), shape)


# ---------------------------------------------------------------- pandas columns
def _column(variable: str, where: str, owner: Any, series: Any) -> Iterator[Finding]:
    dtype = series.dtype
    values = series.array
    n = len(series)
    if _stringy(dtype):
        yield from _string_column(variable, where, owner, series)
    elif not isinstance(dtype, np.dtype) or not n:  # nullable and extension types: as they are
        return
    elif dtype.kind in "iu" and dtype.itemsize > 1:
        data = np.asarray(values)
        smaller = _smallest_int(int(data.min()), int(data.max()), dtype)
        if smaller is not None:
            yield _column_finding(
                variable,
                where,
                owner,
                n * (dtype.itemsize - smaller.itemsize),
                f"{n:,} {dtype} values from {data.min():,} to {data.max():,} fit {smaller}",
                _astype(variable, where, smaller.name),
            )
    elif dtype == np.float64:
        data = np.asarray(values)
        exact = np.array_equal(data.astype(np.float32).astype(np.float64), data, equal_nan=True)
        if exact:
            yield _column_finding(
                variable,
                where,
                owner,
                n * 4,
                f"all {n:,} float64 values are exactly float32 values",
                _astype(variable, where, "float32"),
            )


def _smallest_int(low: int, high: int, dtype: np.dtype[Any]) -> np.dtype[Any] | None:
    for candidate in ("int8", "uint8", "int16", "uint16", "int32", "uint32"):
        info = np.iinfo(candidate)
        if info.bits < dtype.itemsize * 8 and info.min <= low and high <= info.max:
            return np.dtype(candidate)
    return None


def _astype(variable: str, where: str, dtype: str) -> str:
    """The code that converts one column and frees the old one: a DataFrame is rebuilt
    (assigning one column keeps the old block alive as a view of the others, and with
    copy-on-write ``astype`` shares the untouched columns with the old frame)."""
    if where == variable:
        return f'{variable} = {variable}.astype("{dtype}")'
    column = where[len(variable) + 1 : -1]
    return f'{variable} = {variable}.astype({{{column}: "{dtype}"}}).copy()'


def _column_finding(
    variable: str, where: str, owner: Any, saved: int, evidence: str, fix: str
) -> Finding:
    owner_type = type_name(owner)
    return Finding("column dtype", variable, where, id(owner), owner_type, saved, evidence, fix)


def _string_column(variable: str, where: str, owner: Any, series: Any) -> Iterator[Finding]:
    """Strings kept as Python objects (object dtype, ``string[python]``) or in Arrow
    buffers (pandas 3's default ``str``): a category when few distinct values repeat,
    else Arrow strings instead of objects."""
    n = len(series)
    head = series.iloc[:SAMPLE]
    sample = head.tolist()
    held, distinct_bytes, distinct, strings = _string_costs(sample)
    if not n or strings < 0.9 * len(sample):
        return
    scale = n / len(sample)
    sampled = f"; read {len(sample):,} of {n:,} rows, scaled" if len(sample) < n else ""
    arrow = getattr(series.dtype, "storage", None) == "pyarrow"
    now = series.array.nbytes if arrow else POINTER * n + held * scale
    if distinct <= LOW_CARDINALITY * len(sample):
        code = 1 if distinct < 2**7 else 2 if distinct < 2**15 else 4
        values = head.drop_duplicates()
        kept = _arrow_bytes(values) if arrow else distinct_bytes + POINTER * distinct
        after = code * n + kept * (scale if sampled else 1)  # the sample may not see all
        kind, fix = "duplicate strings", _astype(variable, where, "category")
        evidence = f"{n:,} strings, {distinct:,} distinct values"
    elif not arrow and _importable("pyarrow"):
        after = _arrow_bytes(head) * scale
        kind, fix = "column dtype", _astype(variable, where, "string[pyarrow]")
        evidence = f"{n:,} mostly distinct strings kept as Python objects"
    else:
        return
    saved = int(now - after)
    if saved >= MIN_BYTES:
        yield Finding(
            kind,
            variable,
            where,
            id(owner),
            type_name(owner),
            saved,
            f"{evidence} ({int(now):,} bytes now{sampled})",
            fix,
        )


def _arrow_bytes(strings: Any) -> int:
    """Bytes of these strings as Arrow large strings: UTF-8 data and 8-byte offsets."""
    return sum(len(s.encode()) for s in strings if type(s) is str) + POINTER * (len(strings) + 1)


def _importable(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is not None
