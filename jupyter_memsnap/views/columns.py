"""What each column of the tables means, and what its header says when two snapshots are
compared (``size (1)``, ``size (after)``, ``size change``): one source for HTML tooltips,
text headers and the README."""

from __future__ import annotations

DEFINITIONS: dict[str, str] = {
    "type": "the objects' class, as its module exports it",
    "module": "the module that defines the type",
    "count": "live objects",
    "size": "bytes of the objects themselves: sys.getsizeof plus the native buffers they own "
    "(numpy data, Arrow buffers, images, …)",
    "retained": "bytes that would be freed if this went away: what it alone keeps alive "
    "(dominator tree), nothing counted twice",
    "reachable": "bytes reachable from it, not through modules, classes or functions",
    "shared": "reachable bytes that another holder also keeps alive",
    "shared_with": "the other holders that keep those shared bytes alive",
    "share": "fraction of all bytes in objects",
    "new": "objects of the newer snapshot that the older one did not have",
    "freed": "objects of the older snapshot that are gone",
    "survived": "objects alive in both snapshots (same id and type)",
    "new_size": "bytes of the new objects",
    "freed_size": "bytes of the freed objects",
    "name": "the variable's name in the namespace",
    "held_by": "IPython's hidden references to one object (output cache, last result, …)",
    "fix": "the code to run: it drops that reference, or gets those bytes back",
    "path": "shortest chain of references from a named root to the object",
    "holder": "the named root the path starts from",
    "kind": "what the root is (variable, output, holder, pyplot, module, local, …), or what "
    "the insight found (duplicate strings, small view keeps a big array, …)",
    "object": "the object the paths lead to",
    "id": "the object's id (its address)",
    "cell": "the cell that created the objects (In[n])",
    "site": "where the objects were allocated (tracemalloc)",
    "objects": "live objects in the snapshot",
    "heap": "bytes in objects",
    "rss": "resident memory of the process",
    "peak": "highest RSS while the cell ran",
    "seconds": "time the snapshot took",
    "measure": "part of the process's resident memory",
    "bytes": "resident bytes of that part; for an insight, what its fix saves (measured)",
    "where": "where the waste is, in notebook words: variable, column, holder, type",
    "evidence": "what was measured to find it",
    "worker": "the Dask worker's address",
    "status": "ok, or why the worker has no snapshot (failed, no answer, gone, new)",
    "key": "the Dask task key whose result the worker keeps in memory",
    "native": "bytes of native buffers owned by objects (numpy, Arrow, …)",
    "managed": "Dask's managed memory: its sizeof estimates of the results in memory",
    "unmanaged": "RSS minus Dask's managed memory (what Dask's dashboard calls unmanaged)",
    "unattributed": "RSS that the memory table cannot name",
    "kept": "bytes of the snapshot the worker keeps until %memsnap clear",
    "dask_sizeof": "Dask's own estimate of the result's size (dask.sizeof)",
}

_SPELLED = {"new_size": "new bytes", "freed_size": "freed bytes", "shared_with": "shared with"}


def header(column: str, sides: tuple[str, str] | None = None) -> tuple[str, str]:
    """The header to show for a column and its definition (empty when none is known).
    ``sides`` names the older and newer snapshots for ``_a``/``_b`` columns."""
    base, _, suffix = column.rpartition("_")
    if base and suffix in ("a", "b") and base in DEFINITIONS:
        which = (sides or ("older", "newer"))[suffix == "b"]
        return f"{base} ({which})", f"{DEFINITIONS[base]}, in snapshot {which}"
    if base and suffix == "diff" and base in DEFINITIONS:
        return f"{base} change", f"{DEFINITIONS[base]}: newer minus older (+ grew, - shrank)"
    return _SPELLED.get(column, column), DEFINITIONS.get(column, "")


def side_name(number: int | str, label: str = "") -> str:
    """How a snapshot is named in a header: its label, else its number."""
    return label or str(number)
