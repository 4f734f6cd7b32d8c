"""What the interpreter keeps out of Python's reach, read through ``_interpreter.c``: its
interned strings (CPython 3.12 and 3.13), and a switch that stops tracemalloc from tracing a
snapshot's own allocations (its per-thread flag on 3.12 and 3.13, its hooks set aside on 3.10
and 3.11)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

try:
    from . import _interpreter
except ImportError:  # built without CPython's internal headers
    _interpreter = None  # type: ignore[assignment]

_INTERNED_PROBE = "jupyter_memsnap_interned_probe"
"""An identifier-like constant: the compiler interns it, so the interned dict must hold it."""


def interned_roots() -> list[tuple[str, str, object]]:
    """The interpreter's interned strings as a root: a dict no object refers to, whose
    strings (names of code long gone) stay for the life of the process. Only when it is
    the dict it should be."""
    interned = _interpreter.interned_strings() if _interpreter is not None else None
    if type(interned) is not dict or interned.get(_INTERNED_PROBE) is not _INTERNED_PROBE:
        return []
    return [("interpreter interned strings", "interpreter", interned)]


@contextmanager
def untraced() -> Iterator[None]:
    """While tracemalloc traces, this thread's allocations are not traced (each would cost
    a traceback of every frame, and they are the tool's, not the user's). On 3.10 and 3.11
    no thread's are: tracemalloc's hooks are set aside (see ``_interpreter.c``)."""
    paused = False
    try:
        paused = (
            _interpreter is not None and tracemalloc.is_tracing() and _interpreter.untraced(True)
        )
        yield
    finally:
        if paused:
            _interpreter.untraced(False)
