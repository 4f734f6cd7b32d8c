"""Paths to roots and neighbours of an object, in notebook words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..model.retention import paths_to_root
from ..model.snapshot import Root, Snapshot
from .format import human_bytes


def rows_frame(snap: Snapshot, rows: np.ndarray) -> pd.DataFrame:
    """id, type, module, size, retained of the given rows, largest retained first."""
    rows = np.asarray(rows, dtype=np.int64)
    t = snap.type_table
    codes = snap.type_index[rows]
    df = pd.DataFrame(
        {
            "id": np.array([snap.id_of(int(r)) for r in rows], dtype=np.uint64),
            "type": [t.qualname[c] for c in codes],
            "module": [t.module[c] for c in codes],
            "size": snap.sizes[rows],
            "retained": snap.retained[rows],
        }
    )
    return df.sort_values(["retained", "size"], ascending=False, ignore_index=True)


def release_hint(root: Root) -> str:
    """How to drop this holder's reference, in IPython commands."""
    name, kind = root.name, root.kind
    if kind == "variable":
        return f"del {name}   (or %xdel {name}, which also clears the output cache)"
    if kind == "output":
        return "%reset -f out   (or %memsnap release, which also clears _, __, ___)"
    if kind == "holder":
        return "%memsnap release   (clears the last result, exception and traceback)"
    if kind == "module":
        return "reachable from an imported module: the module keeps it (delete it there)"
    if kind == "frame":
        return "a running frame holds it: it is freed when that function returns"
    if kind == "local":
        where, _, local = name.rpartition(" › ")
        function = where.rpartition(" › ")[2]
        return f"a local of {function}, running: freed when it returns (or `del {local}` there)"
    if kind == "history":
        return "%reset -f in   (input history)"
    return ""


def path_text(snap: Snapshot, root: Root, rows: list[int]) -> str:
    """``Out[3] → DataFrame → BlockManager → ndarray (762.0 MB)``."""
    steps = [root.name] + [snap.type_table.qualname[int(snap.type_index[r])] for r in rows]
    last = rows[-1]
    return " → ".join(steps) + f" ({human_bytes(int(snap.retained[last]))})"


def paths_frame(snap: Snapshot, row: int, max_paths: int = 3) -> pd.DataFrame:
    """One row per step of each shortest path from a named root to ``row``."""
    records = []
    for number, (root, rows) in enumerate(
        paths_to_root(snap, row, max_paths=max_paths, reverse=snap._reverse()), start=1
    ):
        for step, r in enumerate(rows):
            records.append(
                {
                    "path": number,
                    "step": step,
                    "root": root.name,
                    "kind": root.kind,
                    "type": snap.type_label(r),
                    "id": snap.id_of(r),
                    "size": int(snap.sizes[r]),
                    "retained": int(snap.retained[r]),
                }
            )
    return pd.DataFrame(
        records, columns=["path", "step", "root", "kind", "type", "id", "size", "retained"]
    )


def why_frame(snap: Snapshot, rows: list[int], max_paths: int = 3) -> pd.DataFrame:
    """For each object: its shortest paths from named roots, in notebook words, with the
    fix when the root is one IPython keeps without the user naming it."""
    reverse = snap._reverse()
    records = []
    for row in rows:
        for root, path in paths_to_root(snap, row, max_paths=max_paths, reverse=reverse):
            records.append(
                {
                    "object": snap.type_label(row),
                    "id": f"{snap.id_of(row):#x}",
                    "retained": int(snap.retained[row]),
                    "path": path_text(snap, root, path),
                    "holder": root.name,
                    "kind": root.kind,
                    "fix": release_hint(root),
                }
            )
    columns = ["object", "id", "retained", "path", "holder", "kind", "fix"]
    return pd.DataFrame(records, columns=columns)


def rows_of_type(snap: Snapshot, name: str, top: int) -> list[int]:
    """The ``top`` largest (by retained size) objects whose type is ``name`` (a qualname
    or ``module.qualname``)."""
    t = snap.type_table
    codes = [i for i in range(len(t)) if name in (t.qualname[i], t.label(i))]
    if not codes:
        return []
    rows = np.flatnonzero(np.isin(snap.type_index, codes))
    best = rows[np.argsort(-snap.retained[rows], kind="stable")[:top]]
    return [int(r) for r in best]


def similar_type_names(snap: Snapshot, name: str) -> list[str]:
    import difflib

    names = sorted(set(snap.type_table.qualname))
    return difflib.get_close_matches(name, names, n=3)
