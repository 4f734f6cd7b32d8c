"""What keeps objects alive in an IPython session, named in notebook words.

The only module that knows where IPython keeps references: the user namespace, the output
cache (``Out[n]``, ``_n``, ``_``/``__``/``___``), the last execution result, the last
exception and the traceback kept for ``%debug``.
"""

from __future__ import annotations

import re
import sys
import types
from typing import Any

_OUTPUT_NAME = re.compile(r"_(\d+)")
_HISTORY_NAMES = ("_i", "_ii", "_iii", "_ih", "In")
_OUTPUT_SHORTCUTS = ("_", "__", "___")


def visible_variables(ip: Any) -> list[tuple[str, object]]:
    """The names ``%who`` lists: the user's own variables, in definition order."""
    ns, hidden = ip.user_ns, ip.user_ns_hidden
    missing = object()
    return [
        (name, value)
        for name, value in list(ns.items())
        if not name.startswith("_") and value is not hidden.get(name, missing)
    ]


def _set(value: object) -> bool:
    """An output slot holds something (IPython fills empty ones with '')."""
    return value is not None and not (type(value) is str and value == "")


def notebook_roots(ip: Any) -> list[tuple[str, str, object]]:
    """Named roots in the order DESIGN.md gives: variables, output cache, other holders."""
    roots: list[tuple[str, str, object]] = [
        (f"module {value.__name__} (as {name})", "module", value)
        if isinstance(value, types.ModuleType)
        else (name, "variable", value)
        for name, value in visible_variables(ip)
    ]
    ns, hidden = ip.user_ns, ip.user_ns_hidden
    out = ns.get("Out", {})
    if isinstance(out, dict):
        roots += [(f"Out[{n}]", "output", v) for n, v in list(out.items())]
    for where, space in (("", ns), (" (hidden)", hidden)):
        for name, value in list(space.items()):
            if (name in _OUTPUT_SHORTCUTS or _OUTPUT_NAME.fullmatch(name)) and _set(value):
                roots.append((f"{name}{where}", "output", value))
    hook = getattr(ip, "displayhook", None)
    for attr in _OUTPUT_SHORTCUTS:
        value = getattr(hook, attr, None)
        if _set(value):
            roots.append((f"displayhook.{attr}", "output", value))
    result = getattr(ip, "last_execution_result", None)
    if result is not None:
        roots.append(("last_execution_result", "holder", result))
    for attr in ("last_exc", "last_value", "last_traceback", "last_type"):
        value = getattr(sys, attr, None)
        if value is not None:
            roots.append((f"sys.{attr}", "holder", value))
    tb = getattr(getattr(ip, "InteractiveTB", None), "tb", None)
    if tb is not None:
        roots.append(("InteractiveTB.tb (kept for %debug)", "holder", tb))
    for name in _HISTORY_NAMES:
        if name in ns:
            roots.append((name, "history", ns[name]))
    roots.append(("user namespace", "namespace", ns))
    return roots


def current_cell(ip: Any) -> int | None:
    """The execution count of the cell now running (valid inside a magic, IPython 8 and 9)."""
    hook = getattr(ip, "displayhook", None)
    count = getattr(hook, "prompt_count", None)
    return int(count) if isinstance(count, int) else None
