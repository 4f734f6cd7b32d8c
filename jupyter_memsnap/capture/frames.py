"""Running frames as roots: every thread's stack, and each frame's variables by name.

From 3.11 CPython's traverse skips the locals of frames a thread is running, so an array
held only by ``weights`` inside ``train()`` would be invisible; each bound local becomes a
root named ``thread MainThread › train() › weights``. Locals are read without ``f_locals``,
which on 3.10-3.12 builds a dict on the frame and keeps it (and the values) alive.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping
from types import FrameType

from . import layout

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

FrameLocals = Callable[[FrameType], list[tuple[str, object]]]


def ours(frame: FrameType) -> bool:
    """Whether the frame runs jupyter_memsnap's own code (machinery, never a root)."""
    return frame.f_code.co_filename.startswith(_PACKAGE_DIR)


def function_name(frame: FrameType) -> str:
    code = frame.f_code
    return str(getattr(code, "co_qualname", code.co_name))


def thread_roots(
    frame_locals: FrameLocals = layout.frame_locals,
    labels: Mapping[int, str] | None = None,
) -> list[tuple[str, str, object]]:
    """Per thread: its innermost frame not ours (``thread NAME frame``), then every local of
    every frame of its stack that is not ours, innermost first. ``labels``: what to call
    some threads instead (by ident), e.g. the Dask task each one runs."""
    names = {t.ident: f"thread {t.name}" for t in threading.enumerate() if t.ident is not None}
    names.update(labels or {})
    roots: list[tuple[str, str, object]] = []
    stacks = sys._current_frames()  # holds this very frame: dropped below, or it is a cycle
    try:
        for ident in list(stacks):
            thread = names.get(ident, f"thread {ident}")
            roots += _stack_roots(thread, stacks.pop(ident), frame_locals)
    finally:
        stacks.clear()
    return roots


def _stack_roots(
    thread: str, frame: FrameType | None, frame_locals: FrameLocals
) -> list[tuple[str, str, object]]:
    roots: list[tuple[str, str, object]] = []
    while frame is not None and ours(frame):
        frame = frame.f_back
    if frame is not None:
        roots.append((f"{thread} frame", "frame", frame))
    while frame is not None:
        if not ours(frame):
            where = f"{thread} › {function_name(frame)}()"
            roots += [(f"{where} › {n}", "local", v) for n, v in frame_locals(frame)]
        frame = frame.f_back
    return roots
