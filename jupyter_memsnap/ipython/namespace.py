"""What keeps objects alive in an IPython session, named in notebook words.

The only module that knows where IPython keeps references: the user namespace, the output
cache (``Out[n]``, ``_n``, ``_``/``__``/``___``), the last execution result, the last
exception and the traceback kept for ``%debug``. Each root also names the containers whose
reference *is* that name (the namespace dict for a variable, the ``Out`` dict for
``Out[3]``), so retained sizes can say what ``del name`` would free.
"""

from __future__ import annotations

import gc
import re
import sys
import types
from typing import Any, cast

NamedRoot = tuple[str, str, object, tuple[object, ...]]

_OUTPUT_NAME = re.compile(r"_(\d+)")
_HISTORY_NAMES = ("_i", "_ii", "_iii", "_ih", "In")
_OUTPUT_SHORTCUTS = ("_", "__", "___")


_IPYTHON_NAME = re.compile(r"_{1,3}|_\d+|_i{1,3}|_i\d+|_[iod]h|In|Out|__\w+__")
"""Names IPython and the interpreter put in the namespace: outputs, inputs, dunders."""


def visible_variables(ip: Any) -> list[tuple[str, object]]:
    """Every name the user bound, in definition order: underscore names included, IPython's
    own (``_``, ``_3``, ``_i3``, ``In``, ``Out``, dunders) and its startup names left out."""
    ns, hidden = ip.user_ns, ip.user_ns_hidden
    missing = object()
    return [
        (name, value)
        for name, value in list(ns.items())
        if not _IPYTHON_NAME.fullmatch(name) and value is not hidden.get(name, missing)
    ]


def _set(value: object) -> bool:
    """An output slot holds something (IPython fills empty ones with '')."""
    return value is not None and not (type(value) is str and value == "")


def _attribute_holders(obj: object) -> tuple[object, ...]:
    """Where an instance keeps an attribute's reference: the instance itself (inline
    values), its ``__dict__`` if it has one (not creating it), or for a traitlets attribute
    its ``_trait_values`` dict."""
    dicts = tuple(d for d in gc.get_referents(obj) if type(d) is dict)
    traits = getattr(obj, "_trait_values", None)
    return (obj, *dicts, *((traits,) if type(traits) is dict else ()))


def notebook_roots(ip: Any) -> list[NamedRoot]:
    """Named roots in the order DESIGN.md gives: variables, output cache, other holders."""
    ns, hidden = ip.user_ns, ip.user_ns_hidden
    roots: list[NamedRoot] = [
        (f"module {cast(types.ModuleType, value).__name__} (as {name})", "module", value, (ns,))
        if issubclass(type(value), types.ModuleType)
        else (name, "variable", value, (ns,))
        for name, value in visible_variables(ip)
    ]
    out = ns.get("Out", {})
    if isinstance(out, dict):
        roots += [(f"Out[{n}]", "output", v, (out,)) for n, v in list(out.items())]
    for where, space in (("", ns), (" (hidden)", hidden)):
        for name, value in list(space.items()):
            if (name in _OUTPUT_SHORTCUTS or _OUTPUT_NAME.fullmatch(name)) and _set(value):
                roots.append((f"{name}{where}", "output", value, (space,)))
    hook = getattr(ip, "displayhook", None)
    for attr in _OUTPUT_SHORTCUTS:
        value = getattr(hook, attr, None)
        if _set(value):
            roots.append((f"displayhook.{attr}", "output", value, _attribute_holders(hook)))
    result = getattr(ip, "last_execution_result", None)
    if result is not None:
        roots.append(("last_execution_result", "holder", result, _attribute_holders(ip)))
    for attr in ("last_exc", "last_value", "last_traceback", "last_type"):
        value = getattr(sys, attr, None)
        if value is not None:
            roots.append((f"sys.{attr}", "holder", value, (sys.__dict__,)))
    formatter = getattr(ip, "InteractiveTB", None)
    tb = getattr(formatter, "tb", None)
    if tb is not None:
        roots.append(("InteractiveTB.tb (for %debug)", "holder", tb, _attribute_holders(formatter)))
    for name in _HISTORY_NAMES:
        if name in ns:
            roots.append((name, "history", ns[name], (ns,)))
    roots.append(("user namespace", "namespace", ns, ()))
    return roots


def current_cell(ip: Any) -> int | None:
    """The execution count of the cell now running (valid inside a magic, IPython 8 and 9)."""
    hook = getattr(ip, "displayhook", None)
    count = getattr(hook, "prompt_count", None)
    return int(count) if isinstance(count, int) else None


def release_hidden_holders(ip: Any) -> list[str]:
    """Drop IPython's hidden references: output cache (``Out``, ``_N``, ``_``/``__``/``___``
    everywhere they live), the last execution result, the last exception and the traceback
    kept for ``%debug``. Returns what was cleared. Changes user state: only on request."""
    cleared: list[str] = []
    ns, hidden = ip.user_ns, ip.user_ns_hidden
    out = ns.get("Out")
    if isinstance(out, dict) and out:
        cleared.append(f"Out ({len(out)} outputs)")
    hook = getattr(ip, "displayhook", None)
    if hook is not None and hasattr(hook, "flush"):
        hook.flush()
    for space in (ns, hidden):
        for name in list(space):
            if _OUTPUT_NAME.fullmatch(name):
                del space[name]
        for name in _OUTPUT_SHORTCUTS:
            if name in space and _set(space[name]):
                space[name] = ""
    for attr in _OUTPUT_SHORTCUTS:
        if hook is not None and _set(getattr(hook, attr, None)):
            setattr(hook, attr, "")
    cleared.append("_, __, ___")
    if getattr(ip, "last_execution_result", None) is not None:
        ip.last_execution_result = None
        cleared.append("last_execution_result")
    for attr in ("last_exc", "last_value", "last_traceback", "last_type"):
        if getattr(sys, attr, None) is not None:
            delattr(sys, attr)
            cleared.append(f"sys.{attr}")
    formatter: Any = getattr(ip, "InteractiveTB", None)
    if getattr(formatter, "tb", None) is not None:
        formatter.tb = None
        cleared.append("InteractiveTB.tb")
    gc.collect()
    return cleared
