"""Paths to roots and neighbours of an object, in notebook words."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..model.retention import paths_to_root, roots_by_object
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


Label = tuple[str, str]
Namer = Callable[[Root, list[int]], list["Label | None"]]
"""Names a path's steps: given its root and the ids of the path's objects (the root's object
first), the label of each step after the root (see ``capture.edges``), None where unknown."""

_IDENTIFIER = re.compile(r"'([A-Za-z_][A-Za-z0-9_]*)'")
_DELETABLE = ("key", "index", "column")
"""Steps whose removal is the user's to make: entries of containers, columns of frames
(not a library object's attributes)."""


def expression(root: Root, labels: Sequence[Label | None]) -> tuple[str, int, str | None]:
    """The root's name extended by the path's leading named steps (``_cache['q3']``,
    ``model.history['epoch'][0]``), how many steps it covers, and the kind of its last
    step (None when the text is not code: a key shown as ``<Type>``)."""
    text = root.name
    if root.kind == "module":
        alias = text.rpartition(" (as ")[2].rstrip(")")
        text = alias if " (as " in text else text.removeprefix("module ")
    covered, last, through_dict, runnable = 0, None, False, True
    for label in labels:
        if label is None:
            break
        kind, name = label
        if kind == "skip":
            covered += 1
            continue
        if kind == "dict":
            through_dict = True
            covered += 1
            continue
        identifier = _IDENTIFIER.fullmatch(name) if through_dict and kind == "key" else None
        if identifier is not None:
            text, kind = f"{text}.{identifier.group(1)}", "attr"
        elif kind in ("key", "index", "column"):
            text += f"[{name}]"
            runnable = runnable and not name.startswith("<")  # a key shown as <Type>
        elif kind == "attr":
            text += f".{name}"
        elif kind in ("local", "cell"):
            text += f" › {name}"
        else:
            break
        covered, last, through_dict = covered + 1, kind, False
    if through_dict:
        covered -= 1
    return text, covered, last if runnable else None


def release_hint(
    root: Root, others: Sequence[Root] = (), named: tuple[str, str | None] | None = None
) -> str:
    """How to drop this holder's reference, in IPython commands. ``others``: the other roots
    that hold the object (an open pyplot figure is freed by ``plt.close``, not ``del``);
    ``named``: the path's named expression and its last step's kind, when it has one."""
    name, kind = root.name, root.kind
    if kind == "variable":
        if named is not None and named[1] in _DELETABLE:
            expr, last = named
            hint = f"del {expr}"
            if last == "key" and expr.startswith(f"{name}["):
                hint += f"   (or {expr.rpartition('[')[0]}.clear())"
            return hint
        figure = next((o for o in others if o.kind == "pyplot"), None)
        if figure is not None:
            return f"plt.close({name}); del {name}   (pyplot keeps open figures)"
        return f"del {name}   (or %xdel {name}, which also clears the output cache)"
    if kind == "pyplot":
        variable = next((o.name for o in others if o.kind == "variable"), None)
        return f"plt.close({variable or name.rpartition(' ')[2]})"
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
    if kind == "interpreter":
        return "the interpreter keeps interned names for the life of the process"
    if kind == "history":
        return "%reset -f in   (input history)"
    return ""


def path_labels(
    snap: Snapshot, root: Root, rows: list[int], namer: Namer | None
) -> list[Label | None]:
    if namer is None:
        return [None] * (len(rows) - 1)
    return namer(root, [snap.id_of(r) for r in rows])


def path_text(
    snap: Snapshot, root: Root, rows: list[int], labels: Sequence[Label | None] = ()
) -> str:
    """``_cache['q3']['a'] → ndarray (8.0 MB)``; unnamed steps by type:
    ``Out[3] → DataFrame → BlockManager → ndarray (762.0 MB)``."""
    text, covered, _ = expression(root, labels)
    steps = [text] + [snap.type_table.qualname[int(snap.type_index[r])] for r in rows[covered:]]
    return " → ".join(steps) + f" ({human_bytes(int(snap.retained[rows[-1]]))})"


def paths_frame(
    snap: Snapshot, row: int, max_paths: int = 3, namer: Namer | None = None
) -> pd.DataFrame:
    """One row per step of each shortest path from a named root to ``row``; ``edge`` names
    the reference into that step where ``namer`` finds it."""
    records = []
    for number, (root, rows) in enumerate(
        paths_to_root(snap, row, max_paths=max_paths, reverse=snap._reverse()), start=1
    ):
        labels = [None, *path_labels(snap, root, rows, namer)]
        for step, (r, label) in enumerate(zip(rows, labels, strict=True)):
            records.append(
                {
                    "path": number,
                    "step": step,
                    "root": root.name,
                    "kind": root.kind,
                    "edge": label[1] if label is not None and label[0] != "skip" else "",
                    "type": snap.type_label(r),
                    "id": snap.id_of(r),
                    "size": snap.size_of(r),
                    "retained": int(snap.retained[r]),
                }
            )
    columns = ["path", "step", "root", "kind", "edge", "type", "id", "size", "retained"]
    return pd.DataFrame(records, columns=columns)


def why_frame(
    snap: Snapshot, rows: list[int], max_paths: int = 3, namer: Namer | None = None
) -> pd.DataFrame:
    """For each object: its shortest paths from named roots, in notebook words (edges named
    by ``namer``), with the fix that would drop that path's reference."""
    reverse = snap._reverse()
    same = roots_by_object(snap)
    records = []
    for row in rows:
        paths = paths_to_root(snap, row, max_paths=max_paths, reverse=reverse)
        # besides the roots on the same object: pyplot, whose root is the figure's manager
        holders = [r for r, path in paths if len(path) == 1 or r.kind == "pyplot"]
        for root, path in paths:
            labels = path_labels(snap, root, path, namer)
            text, covered, last = expression(root, labels)
            others = [o for o in (*same.get(root.index, []), *holders) if o is not root]
            records.append(
                {
                    "object": snap.type_label(row),
                    "id": f"{snap.id_of(row):#x}",
                    "retained": int(snap.retained[row]),
                    "path": path_text(snap, root, path, labels),
                    "holder": root.name,
                    "kind": root.kind,
                    "fix": release_hint(root, others, (text, last) if covered else None),
                }
            )
    columns = ["object", "id", "retained", "path", "holder", "kind", "fix"]
    return pd.DataFrame(records, columns=columns)


def contains_frame(snap: Snapshot, row: int) -> pd.DataFrame:
    """What an object refers to, by type (VS's Referenced Types, Chrome's containment):
    count, size and retained of its referents, largest retained first."""
    rows = np.unique(snap.referents_of_row(row))
    df = pd.DataFrame(
        {
            "type": [snap.type_label(int(r)) for r in rows],
            "size": snap.sizes[rows],
            "retained": snap.retained[rows],
        }
    )
    out = df.groupby("type", as_index=False).agg(
        count=("size", "size"), size=("size", "sum"), retained=("retained", "sum")
    )
    return out.sort_values(["retained", "size"], ascending=False, ignore_index=True)


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
