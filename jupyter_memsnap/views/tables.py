"""The DataFrames a snapshot shows: by type, by module, per object, per variable, memory."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..model import graph
from ..model.snapshot import Snapshot

SHARED_INFRASTRUCTURE = frozenset(
    {
        "module",
        "function",
        "builtin_function_or_method",
        "method_descriptor",
        "wrapper_descriptor",
        "getset_descriptor",
        "member_descriptor",
        "classmethod_descriptor",
        "method-wrapper",
        "code",
        "frame",
    }
)
"""Builtin types a variable's reachable size does not go through (nor through classes):
reaching a module or a class from a variable says nothing about what the variable costs."""


def _grouped(snap: Snapshot, keys: list[str], key_of_type: pd.DataFrame) -> pd.DataFrame:
    n_types = len(snap.type_table)
    counts = np.bincount(snap.type_index, minlength=n_types)
    sizes = np.bincount(snap.type_index, weights=snap.sizes, minlength=n_types)
    per_type = key_of_type.assign(count=counts, size=sizes.astype(np.int64))
    per_type = per_type[per_type["count"] > 0]
    out = per_type.groupby(keys, sort=False, as_index=False)[["count", "size"]].sum()
    total = max(int(snap.sizes.sum()), 1)
    out["share"] = out["size"] / total
    return out.sort_values(["size", "count"], ascending=False, ignore_index=True)


def _type_frame(snap: Snapshot) -> pd.DataFrame:
    t = snap.type_table
    return pd.DataFrame({"type": list(t.qualname), "module": list(t.module)})


def types_table(snap: Snapshot) -> pd.DataFrame:
    """type, module, count, size (shallow bytes), share of all bytes; largest first."""
    return _grouped(snap, ["type", "module"], _type_frame(snap))


def modules_table(snap: Snapshot) -> pd.DataFrame:
    """module (that defines the type), count, size, share; largest first."""
    return _grouped(snap, ["module"], _type_frame(snap)[["module"]])


def objects_table(snap: Snapshot) -> pd.DataFrame:
    """One row per object: id, type, module, size (categoricals keep it compact)."""
    t = snap.type_table
    codes = snap.type_index
    return pd.DataFrame(
        {
            "id": snap.ids,
            "type": pd.Categorical.from_codes(codes, categories=_unique(list(t.qualname), codes)),
            "module": pd.Categorical.from_codes(codes, categories=_unique(list(t.module), codes)),
            "size": snap.sizes,
        }
    )


def _unique(names: list[str], codes: np.ndarray) -> pd.Index:
    # Categories must be unique; duplicate names (a class defined twice) get a suffix.
    seen: dict[str, int] = {}
    out = []
    for name in names:
        k = seen.get(name, 0)
        seen[name] = k + 1
        out.append(name if k == 0 else f"{name} ({k + 1})")
    return pd.Index(out)


def shared_mask(snap: Snapshot) -> np.ndarray:
    """Rows that are shared infrastructure: classes, modules, functions, code, frames."""
    t = snap.type_table
    per_type = np.array(
        [
            t.is_class[i] or (t.module[i] == "builtins" and t.qualname[i] in SHARED_INFRASTRUCTURE)
            for i in range(len(t))
        ],
        dtype=bool,
    )
    return per_type[snap.type_index] if len(per_type) else np.zeros(len(snap), dtype=bool)


def variables_table(snap: Snapshot) -> pd.DataFrame:
    """name, type, size (shallow) and reachable (deep, not through classes/modules/functions)."""
    roots = [r for r in snap.roots if r.kind == "variable" and r.index >= 0]
    starts = np.array([r.index for r in roots], dtype=np.int64)
    reachable = graph.reachable_sizes(
        snap.offsets, snap.targets, snap.sizes, starts, shared_mask(snap)
    )
    df = pd.DataFrame(
        {
            "name": [r.name for r in roots],
            "type": [snap.type_label(r.index) for r in roots],
            "size": snap.sizes[starts] if len(starts) else np.zeros(0, np.int64),
            "reachable": np.asarray(reachable, dtype=np.int64),
        }
    )
    return df.sort_values(["reachable", "name"], ascending=[False, True], ignore_index=True)


def memory_table(snap: Snapshot) -> pd.DataFrame:
    """Process memory next to what the objects account for, and the gap between them."""
    p = snap.process
    objects = int(snap.sizes.sum())
    buffers = int(snap.native_bytes.sum())
    rows: list[tuple[str, int | None, str]] = [
        ("RSS", p.rss, "resident memory of the kernel process (what the OS charges)"),
        ("USS", p.uss, "memory unique to this process (freed if it exited)"),
        ("objects", objects, f"all {len(snap):,} live Python objects, each counted once"),
        ("python objects", objects - buffers, "object headers and their own storage"),
        ("numpy buffers", buffers, "data buffers owned by numpy arrays"),
    ]
    if p.traced is not None:
        rows.append(("tracemalloc traced", p.traced, "bytes allocated since tracing started"))
    rows.append(
        (
            "unattributed",
            p.rss - objects,
            "RSS − objects: interpreter and library code, allocator free lists and "
            "fragmentation, memory freed but not returned to the OS, native memory no "
            "Python object owns",
        )
    )
    df = pd.DataFrame(rows, columns=["measure", "bytes", "note"])
    df["share"] = [b / p.rss if b is not None and p.rss else float("nan") for b in df["bytes"]]
    return df[["measure", "bytes", "share", "note"]]
