"""What keeps objects alive on a Dask worker, in Dask's words: each task key's result in
the worker's memory, and the globals of user modules (caches there are the classic worker
leak). The rest (every module, running tasks' frames) are the process's roots, as in a
kernel."""

from __future__ import annotations

import os
import site
import sys
import sysconfig
import types
from collections.abc import Iterator
from typing import Any

from .heap import NamedRoot

LIBRARY_PREFIXES = ("jupyter_memsnap", "distributed", "dask", "_pytest", "pytest")


def task_name(key: object) -> str:
    """``task ('x-3f2a', 0)``: a key as Dask prints it."""
    return f"task {key}"


def in_memory(worker: Any) -> tuple[dict[object, object] | None, list[tuple[object, object]]]:
    """The dict that holds the results kept in memory, and its items (never what is
    spilled to disk: reading that would load it)."""
    data = worker.data
    mapping = getattr(data, "fast", data)
    inner = getattr(mapping, "d", mapping)
    if isinstance(inner, dict):
        return inner, list(inner.items())
    return None, []


def worker_roots(worker: Any) -> list[NamedRoot]:
    """``task KEY`` for each result in memory, ``module.name`` for each global of a user
    module (kind ``variable``)."""
    holder, items = in_memory(worker)
    roots: list[NamedRoot] = [
        (task_name(key), "task", value, (holder,) if holder is not None else ())
        for key, value in items
    ]
    for module in user_modules():
        space = vars(module)
        roots += [
            (f"{module.__name__}.{name}", "variable", value, (space,))
            for name, value in list(space.items())
            if not name.startswith("__") and not _code_or_namespace(value)
        ]
    return roots


def _code_or_namespace(value: object) -> bool:
    return isinstance(
        value, (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)
    )


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    dirs.update(site.getsitepackages() if hasattr(site, "getsitepackages") else ())
    return tuple(os.path.abspath(d) + os.sep for d in dirs)


def user_modules() -> Iterator[types.ModuleType]:
    """Modules that are neither the standard library, nor installed packages, nor built
    in (nor inside one of those): code the user shipped to the workers, or made there."""
    libraries = _library_dirs()

    def library(module: object) -> bool:
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.origin in ("built-in", "frozen"):
            return True
        file = getattr(module, "__file__", None)
        return isinstance(file, str) and os.path.abspath(file).startswith(libraries)

    for name, module in list(sys.modules.items()):
        if not isinstance(module, types.ModuleType) or name == "__main__":
            continue
        top = name.partition(".")[0]
        if top in LIBRARY_PREFIXES or top in sys.builtin_module_names:
            continue
        if library(module) or library(sys.modules.get(top)):
            continue
        yield module
