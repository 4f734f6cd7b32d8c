"""Where RSS is: the memory table, rows that add up to the process's resident memory.

Level 1 rows are the parts of RSS (they add up to it, ``unattributed`` being what is left);
level 2 rows detail the part above them (native buffers by library, mapped files by name,
the two allocators); level 0 is RSS itself and rows without a level are other measures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..model.snapshot import ProcessMemory, Snapshot

LIBRARY_NAMES = {"builtins": "Python bytearrays", "PIL": "Pillow", "sklearn": "scikit-learn"}

FREE_KEPT_LARGE = 0.10
"""Allocator free space above this share of RSS is worth `%memsnap trim` (the views say so)."""


def native_by_library(snap: Snapshot) -> dict[str, int]:
    """Native buffer bytes by the top-level package of the type that owns them."""
    if not len(snap.native_index):
        return {}
    codes = snap.type_index[snap.native_index.astype(np.int64)]
    totals = np.bincount(codes, weights=snap.native_bytes, minlength=len(snap.type_table))
    out: dict[str, int] = {}
    for code in np.flatnonzero(totals):
        package = snap.type_table.module[int(code)].split(".")[0]
        name = LIBRARY_NAMES.get(package, package)
        out[name] = out.get(name, 0) + int(totals[code])
    return dict(sorted(out.items(), key=lambda item: -item[1]))


def free_kept(p: ProcessMemory) -> int:
    """Bytes the allocators hold free (what `%memsnap trim` may return), 0 if unknown."""
    return (p.malloc_free or 0) + (p.pymalloc_free or 0)


Row = tuple[str, int | None, object, str]


def memory_rows(snap: Snapshot) -> list[Row]:
    """(measure, bytes, level, note) rows; see the module docstring."""
    p = snap.process
    objects = snap.total_size
    natives = native_by_library(snap)
    buffers = sum(natives.values())
    rows: list[Row] = [
        ("RSS", p.rss, 0, "resident memory of the kernel process (what the OS charges)"),
        ("python objects", objects - buffers, 1, "object headers and their own storage"),
        ("native buffers", buffers, 1, "data buffers owned by objects, each counted once"),
    ]
    rows += [(f"native: {name}", size, 2, "") for name, size in natives.items()]
    arrow_owned = natives.get("pyarrow", 0) + natives.get("polars", 0)
    if p.arrow_pool is not None and p.arrow_pool > arrow_owned:
        rows.append(
            (
                "pyarrow pool, no object",
                p.arrow_pool - arrow_owned,
                1,
                "pyarrow's allocator holds it, but no live pyarrow object owns it",
            )
        )
    missing = [
        name
        for name, value in (
            ("mapped files", p.file_backed),
            ("thread stacks", p.stacks),
            ("allocators' free space", p.malloc_free),
        )
        if value is None
    ]
    platform_note = f"; and, not readable here, {', '.join(missing)}" if missing else ""
    if p.file_backed is not None:
        rows.append(
            (
                "code and data of libraries",
                p.file_backed,
                1,
                "files mapped in memory: the interpreter, extension modules, shared libraries",
            )
        )
        named = sum(size for _, size in p.files)
        rows += [(f"code: {name}", size, 2, "") for name, size in p.files]
        if p.file_backed > named:
            rows.append(("code: others", p.file_backed - named, 2, ""))
    if p.stacks is not None:
        rows.append(("thread stacks", p.stacks, 1, "the resident part of every thread's stack"))
    if p.tracemalloc_own:
        rows.append(
            ("tracemalloc", p.tracemalloc_own, 1, "tracing's own tables: `%memsnap trace off`")
        )
    if p.own is not None:
        rows.append(("jupyter_memsnap", p.own, 1, "this tool's snapshots and caches"))
    if p.malloc_free is not None or p.pymalloc_free is not None:
        # what the allocators hold free is address space: pages trimmed or never touched are
        # not resident, so this row takes at most what RSS has left after the rows above
        room = p.rss - sum(int(size or 0) for _, size, level, _ in rows if level == 1)
        rows.append(
            (
                "allocators: free but kept",
                max(0, min(free_kept(p), room)),
                1,
                "memory freed by Python or C code that the allocators keep for reuse "
                "(`%memsnap trim` returns what it can); at most what RSS has left",
            )
        )
        if p.malloc_free is not None:
            rows.append(("free: glibc malloc", p.malloc_free, 2, "free bytes in its arenas"))
        if p.pymalloc_free is not None:
            rows.append(("free: pymalloc", p.pymalloc_free, 2, "arena bytes holding no object"))
    parts = sum(int(size) for _, size, level, _ in rows if level == 1 and size is not None)
    rows.append(
        (
            "unattributed",
            p.rss - parts,
            1,
            "RSS − the rows above: memory C libraries allocated for themselves (no Python "
            "object owns it), fragmentation" + platform_note,
        )
    )
    rows += [
        ("USS", p.uss, "", "memory unique to this process (freed if it exited)"),
        ("objects", objects, "", f"all {len(snap):,} live Python objects, each counted once"),
    ]
    if p.traced is not None:
        rows.append(("tracemalloc traced", p.traced, "", "bytes allocated since tracing started"))
    if p.gpu is not None:
        rows.append(("GPU (torch)", p.gpu, "", "CUDA memory torch has reserved: not in RSS"))
    return rows


def unattributed(snap: Snapshot) -> int:
    """What RSS the memory table cannot name."""
    return next(int(size or 0) for name, size, _, _ in memory_rows(snap) if name == "unattributed")


def memory_table(snap: Snapshot) -> pd.DataFrame:
    """The memory table as a DataFrame: measure, bytes, share of RSS, level, note."""
    p = snap.process
    df = pd.DataFrame(memory_rows(snap), columns=["measure", "bytes", "level", "note"])
    df["share"] = [b / p.rss if b is not None and p.rss else float("nan") for b in df["bytes"]]
    return df[["measure", "bytes", "share", "level", "note"]]
