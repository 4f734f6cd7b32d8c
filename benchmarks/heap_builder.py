"""A synthetic data-notebook heap for the snapshot benchmark.

``build_heap(n)`` returns one object (a dict of named parts) that keeps roughly ``n`` new live
Python objects alive, in the mix /work/shared/DESIGN.md "Performance targets" describes:

==============  ===========  ==============================================================
part            share of n   what it is
==============  ===========  ==============================================================
records         ~40 %        list of dicts ``{"id": int, "name": str, "score": float,
                             "city": str (from a pool of 50), "active": bool}`` — 4 new
                             objects per record (dict, int, str, float)
samples         ~20 %        instances of a small user class with 3 attributes (two floats
                             and a str) — 4 new objects per instance
strings         ~10 %        list of unique strings, 8–60 characters
floats          ~10 %        list of floats
frame           ~18 %        pandas DataFrame with int64, float64, str (pandas' ``str``
                             dtype with python storage: one Python str per row, also
                             where pyarrow is installed) and
                             categorical (20 categories) columns
pairs           ~2 %         list of (int, float) tuples sharing the records' ints
keyed           ~10 %        one dict of unique str keys (``"key-00000042"``) to floats: the
                             keys are reached only through the dict, whose traverse skips
                             str keys
held            (bytes)      a float64 array of ~5 bytes per object held only by a local of
                             a running worker thread (``weights`` in ``train()``)
arrays          (bytes)      numpy arrays totalling ~100 bytes per object, i.e. ~300 MB at
                             3 M objects: a 2-D float64 matrix, an int64 and a float32
                             vector, 3 views of the matrix (``.base`` edges), small arrays in
                             a list, and an object-dtype array of some records
==============  ===========  ==============================================================

Everything is deterministic (seeded), so two runs build the same heap.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

ARRAY_BYTES_PER_OBJECT = 100
"""numpy bytes per requested object: 300 MB at 3 M objects."""

CITIES = [f"city-{k:02d}" for k in range(50)]
CATEGORIES = [f"segment-{k:02d}" for k in range(20)]


class Sample:
    """A small user class with a few attributes, as notebooks define them."""

    def __init__(self, x: float, y: float, label: str) -> None:
        self.x = x
        self.y = y
        self.label = label

    def norm(self) -> float:
        return float((self.x**2 + self.y**2) ** 0.5)


def _records(n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    scores = rng.random(n).tolist()
    city_idx = rng.integers(0, len(CITIES), n).tolist()
    return [
        {
            "id": 1_000_000 + i,
            "name": f"user_{i:08d}",
            "score": scores[i],
            "city": CITIES[city_idx[i]],
            "active": (i % 3) != 0,
        }
        for i in range(n)
    ]


def _samples(n: int, rng: np.random.Generator) -> list[Sample]:
    xs = rng.normal(size=n).tolist()
    ys = rng.normal(size=n).tolist()
    return [Sample(xs[i], ys[i], f"s{i}") for i in range(n)]


def _strings(n: int, rng: np.random.Generator) -> list[str]:
    lengths = rng.integers(0, 52, n).tolist()
    return [f"text-{i:07d}-" + "x" * lengths[i] for i in range(n)]


def _floats(n: int, rng: np.random.Generator) -> list[float]:
    return rng.lognormal(size=n).tolist()


def _frame(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    codes = rng.integers(0, len(CATEGORIES), rows).astype(np.int8)
    return pd.DataFrame(
        {
            "key": np.arange(rows, dtype=np.int64),
            "value": rng.normal(size=rows),
            "label": pd.array(
                [f"row-{i}" for i in range(rows)], dtype=pd.StringDtype("python", na_value=np.nan)
            ),
            "segment": pd.Categorical.from_codes(codes, categories=CATEGORIES),
        }
    )


def _arrow_frame(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """The frame's data in pyarrow storage (pandas' ``str`` columns where pyarrow is installed):
    its bytes live in pyarrow's buffers, which no ``__sizeof__`` reports."""
    return pd.DataFrame(
        {
            "key": pd.array(np.arange(rows, dtype=np.int64), dtype="int64[pyarrow]"),
            "value": pd.array(rng.normal(size=rows), dtype="double[pyarrow]"),
            "label": pd.array([f"row-{i}" for i in range(rows)], dtype="string[pyarrow]"),
        }
    )


def _pairs(n: int, records: list[dict[str, Any]], rng: np.random.Generator) -> list[tuple]:
    weights = rng.random(n).tolist()
    m = max(1, len(records))
    return [(records[i % m]["id"], weights[i]) for i in range(n)]


def _arrays(n: int, records: list[dict[str, Any]], rng: np.random.Generator) -> dict[str, Any]:
    budget = max(1, ARRAY_BYTES_PER_OBJECT * n)
    cols = 100
    rows = max(1, int(budget * 0.60) // (8 * cols))
    matrix = rng.random((rows, cols))
    ints = np.arange(max(1, int(budget * 0.20) // 8), dtype=np.int64)
    f32 = np.ones(max(1, int(budget * 0.10) // 4), dtype=np.float32)
    small_n = max(1, int(budget * 0.10) // 4096)
    small = [np.full(512, float(k)) for k in range(small_n)]  # 4 KiB each
    objs = np.empty(min(1000, max(1, len(records))), dtype=object)
    for k in range(len(objs)):
        objs[k] = records[k] if records else None
    return {
        "matrix": matrix,
        "head": matrix[:10],  # views: reachable, data counted once on `matrix`
        "column": matrix[:, 0],
        "transposed": matrix.T,
        "ints": ints,
        "f32": f32,
        "small": small,
        "objects": objs,
    }


def _keyed(n: int, rng: np.random.Generator) -> dict[str, float]:
    values = rng.random(n).tolist()
    return {f"key-{i:08d}": values[i] for i in range(n)}


def _held(n: int, rng: np.random.Generator) -> dict[str, Any]:
    """A worker thread whose running frame alone holds an array; the handle stops it."""
    ready, stop = threading.Event(), threading.Event()

    def train() -> None:
        weights = rng.random(max(1, 5 * n // 8))
        ready.set()
        stop.wait()
        del weights

    thread = threading.Thread(target=train, name="trainer", daemon=True)
    thread.start()
    ready.wait()
    return {"thread": thread, "stop": stop}


PARTS: dict[str, float] = {
    "records": 0.40 / 4,
    "samples": 0.20 / 4,
    "strings": 0.10,
    "floats": 0.10,
    "frame": 0.18,
    "pairs": 0.02 / 2,
    "arrow_frame": 0.18,
    "keyed": 0.10 / 2,
    "held": 1.0,
}
"""Count of items per part, as a fraction of the requested objects."""


def build_part(name: str, n: int, seed: int = 0, records: list | None = None) -> Any:
    """Build one part of the heap, scaled for ``n`` objects in total."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if name == "arrays":
        return _arrays(n, records if records is not None else [], rng)
    k = max(1, int(n * PARTS[name]))
    if name == "pairs":
        return _pairs(k, records if records is not None else [], rng)
    builders: dict[str, Callable[[int, np.random.Generator], Any]] = {
        "records": _records,
        "samples": _samples,
        "strings": _strings,
        "floats": _floats,
        "frame": _frame,
        "arrow_frame": _arrow_frame,
        "keyed": _keyed,
        "held": _held,
    }
    return builders[name](k, rng)


PART_NAMES = (
    "records",
    "samples",
    "strings",
    "floats",
    "frame",
    "pairs",
    "arrays",
    "keyed",
    "held",
)
"""The parts of the heap; ``arrow_frame`` (needs pyarrow) is built only on request."""


def build_heap(n: int, seed: int = 0) -> dict[str, Any]:
    """The parts above in one dict: about ``n`` new live objects, ~100 B/object of arrays."""
    heap: dict[str, Any] = {}
    heap["records"] = build_part("records", n, seed)
    for name in PART_NAMES[1:]:
        heap[name] = build_part(name, n, seed, records=heap["records"])
    return heap


def array_bytes(heap: dict[str, Any]) -> int:
    """Bytes of numpy data the heap owns (arrays part and the DataFrame's numeric columns)."""
    total = 0
    for v in heap["arrays"].values():
        if isinstance(v, np.ndarray) and v.base is None:
            total += v.nbytes
    total += sum(a.nbytes for a in heap["arrays"]["small"])
    return total
