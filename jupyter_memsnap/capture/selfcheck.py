"""A short check of the compiled walker on a small known heap, run before its first walk.

The compiled walker reads CPython structures whose layout can change between versions. On a
version it was not tested on, a wrong size or a missed reference would silently corrupt
every answer, so before the first walk in a process it walks a few objects whose sizes
``sys.getsizeof`` knows and whose hidden references are known, and reads a frame's locals.
Any disagreement disables it (with one warning) in favour of the pure-Python walker.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

import numpy as np

from ..model.compact import Sizes, SortedIds


class _Probe:
    """A class with a docstring, slots and a known name."""

    __slots__ = ("left", "right")


def _known_heap() -> tuple[list[object], list[tuple[object, object, str]]]:
    """Objects to walk, and (referrer, referent, what) edges that must be found."""
    keyed = {f"memsnap-selfcheck-key-{i}": i for i in range(4)}
    code = _known_heap.__code__
    structured = np.zeros(2, dtype=[("x", "f8"), ("y", "i4", (2,))])
    view = structured[1:]
    dtype = structured.dtype
    fields: Any = dtype.fields
    edges: list[tuple[object, object, str]] = [
        *[(keyed, k, "a str key of a dict") for k in keyed],
        (code, code.co_consts, "a code object's co_consts"),
        (code, code.co_names, "a code object's co_names"),
        (code, code.co_filename, "a code object's co_filename"),
        (_Probe, _Probe.__qualname__, "a heap type's qualname"),
        (int, int.__mro__, "a static type's MRO"),
        (view, structured, "an array view's base"),
        (structured, dtype, "an array's dtype"),
        (dtype, gc.get_referents(fields)[0], "a structured dtype's fields"),
    ]
    sized: list[object] = [
        [1, 2, 3],
        keyed,
        "text" * 10,
        b"bytes" * 10,
        bytearray(b"ba" * 20),
        10**40,
        1.5,
        (1, "x"),
        {1, 2},
        frozenset({3}),
        structured,
        view,
        int,
        type,
    ]
    return [*sized, code, _Probe, dtype], edges


def problems(walker: Any, gc_head: int) -> list[str]:
    """What the compiled walker (module ``walker``) gets wrong here; empty when all is right."""
    found: list[str] = []
    roots, edges = _known_heap()
    raw = walker.walk([roots], [], [], (), np.ndarray, gc_head, 0, None, True, ())
    runs = np.frombuffer(raw["id_high"], np.uint64), np.frombuffer(raw["id_starts"], np.int64)
    ids = SortedIds(*runs, np.frombuffer(raw["id_low"], np.uint32)).decode()
    order = np.frombuffer(raw["order"], np.uint32)
    big = np.frombuffer(raw["big_rows"], np.int64), np.frombuffer(raw["big_sizes"], np.int64)
    sizes = Sizes(np.frombuffer(raw["sizes"], np.uint32), *big).decode()
    offsets = np.frombuffer(raw["offsets"], np.uint32)
    targets = np.frombuffer(raw["targets"], np.uint32)

    def row(obj: object) -> int:
        k = int(np.searchsorted(ids, np.uint64(id(obj))))
        return int(order[k]) if k < len(ids) and int(ids[k]) == id(obj) else -1

    for obj in roots[:-3]:
        r = row(obj)
        if r < 0 or int(sizes[r]) != sys.getsizeof(obj):
            got = "nothing" if r < 0 else int(sizes[r])
            found.append(f"size of {type(obj).__name__}: {got}, sys.getsizeof {sys.getsizeof(obj)}")
    for source, target, what in edges:
        r, t = row(source), row(target)
        if r < 0 or t < 0 or t not in targets[offsets[r] : offsets[r + 1]]:
            found.append(f"{what} is not followed")
    marker = object()
    local_names = [name for name, value in walker.frame_locals(sys._getframe()) if value is marker]
    if local_names != ["marker"]:
        found.append("a running frame's locals are not read")
    return found
