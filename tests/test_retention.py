"""Retained sizes, holders, paths to root and release, in notebook scenarios."""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import pytest
from conftest import run
from IPython.utils.capture import capture_output

import jupyter_memsnap
from jupyter_memsnap.model.retention import compute_retention, pruned_graph, root_edges

MB = 1_000_000


def _snap(ip: Any) -> Any:
    return ip.run_line_magic("memsnap", "take -o")


def _why_text(ip: Any, arg: str) -> str:
    with capture_output() as out:
        ip.run_line_magic("memsnap", f"why {arg}")
    texts = [o.data["text/plain"] for o in out.outputs] + [out.stdout]
    return "\n".join(texts)


def test_displayed_then_deleted_dataframe_is_held_by_out_and_released(ip: Any) -> None:
    run(ip, "import numpy as np, pandas as pd")
    run(ip, "df = pd.DataFrame({'x': np.ones(2_000_000)})")  # 16 MB
    count = ip.execution_count
    run(ip, "df")
    run(ip, "block = df._mgr.blocks[0].values")
    run(ip, "del df")
    text = _why_text(ip, "block")
    assert f"Out[{count}]" in text, text
    assert "%reset -f out" in text
    snap = _snap(ip)
    holders = snap.holders
    row = holders[holders["held_by"].str.contains(rf"Out\[{count}\]", regex=True)].iloc[0]
    assert row["type"] == "pandas.DataFrame"
    assert row["retained"] < MB, "the block variable still holds the 16 MB array"
    run(ip, "del block")
    snap = _snap(ip)
    holders = snap.holders
    row = holders[holders["held_by"].str.contains(rf"Out\[{count}\]", regex=True)].iloc[0]
    assert row["retained"] >= 16 * MB, "now the output cache alone keeps the frame alive"
    with capture_output() as out:
        ip.run_line_magic("memsnap", "release")
    assert "Out" in out.stdout
    freed_mb = float(out.stdout.split(" of objects freed")[0].rsplit(" ", 2)[-2])
    assert freed_mb >= 16
    assert f"Out[{count}]" not in " ".join(r.name for r in _snap(ip).roots)


def test_a_large_local_kept_by_the_last_traceback(ip: Any) -> None:
    run(ip, "import numpy as np")
    run(ip, "def fails():\n    local = np.ones(1_500_000)\n    raise ValueError('boom')")
    result = ip.run_cell("fails()", store_history=True)
    assert isinstance(result.error_in_exec, ValueError)
    del result  # the test's own reference to the exception
    snap = _snap(ip)
    holders = snap.holders
    exc = holders[holders["held_by"].str.contains("sys.last_traceback")].iloc[0]
    assert exc["retained"] >= 12 * MB
    text = _why_text(ip, "--type ndarray --top 1")
    assert "sys.last_traceback" in text or "last_execution_result" in text
    assert "frame → ndarray" in text
    assert "%memsnap release" in text
    ip.run_line_magic("memsnap", "release")
    after = _snap(ip)
    assert not any(r.name.startswith("sys.last") for r in after.roots)
    assert after.total_size <= snap.total_size - 11 * MB


def test_two_variables_sharing_one_array_are_shared_not_counted_twice(ip: Any) -> None:
    run(ip, "import numpy as np")
    run(ip, "a = np.zeros(1_000_000); b = a; solo = np.zeros(250_000)")
    v = _snap(ip).variables.set_index("name")
    for name in ("a", "b"):
        assert v.loc[name, "retained"] == 0, "del a alone frees nothing: b holds it"
        assert v.loc[name, "shared"] >= 8 * MB
    assert v.loc["a", "shared_with"] == "b"
    assert v.loc["b", "shared_with"] == "a"
    assert v.loc["solo", "retained"] >= 2 * MB
    assert v.loc["solo", "shared"] == 0
    with capture_output() as out:
        ip.run_line_magic("memsnap", "vars")
    lines = out.outputs[0].data["text/plain"].splitlines()
    names = [line.split()[0] for line in lines[2:]]  # after the title and the header
    assert names.index("solo") < names.index("a"), "sorted by retained size"


def test_vars_gets_the_dominator_trees_retained_sizes_without_building_it(ip: Any) -> None:
    run(ip, "import numpy as np, pandas as pd")
    run(ip, "a = np.zeros(300_000); b = a; words = [str(i) for i in range(20_000)]")
    run(ip, "nested = {'inner': words, 'own': np.ones(50_000)}; shown = np.ones(40_000)")
    run(ip, "shown")
    run(ip, "def f():\n    return words")
    run(ip, "df = pd.DataFrame({'x': np.arange(100_000)}); column = df['x']")
    snap = _snap(ip)
    assert not snap.is_cached("retention")
    by_name = snap.variables.set_index("name")["retained"].to_dict()
    assert not snap.is_cached("retention"), "vars built the dominator tree"
    retention = snap.retention
    expected = {
        root.name: int(size)
        for root, size in zip(retention.roots, retention.root_retained(), strict=True)
        if root.kind == "variable"
    }
    assert by_name == expected
    assert by_name["a"] == by_name["b"] == by_name["shown"] == 0
    assert 400_000 <= by_name["nested"] < 500_000, "its own array, not the words it shares"


def test_the_pruned_graph_is_the_graph_without_the_references_that_are_variables(ip: Any) -> None:
    run(ip, "import numpy as np; a = np.zeros(1000); b = a; c = [a, 1]; d = {'x': c}")
    snap = _snap(ip)
    offsets, targets = snap.offsets, snap.targets
    dropped = root_edges(snap)
    rows = np.repeat(np.arange(len(snap)), np.diff(offsets))
    namespace = snap.row(id(ip.user_ns))
    assert (rows[dropped] == namespace).sum() >= 4, "a, b, c and d: one row, several drops"
    keep = np.ones(len(targets), dtype=bool)
    keep[dropped] = False
    degree = np.bincount(rows[keep], minlength=len(snap))
    pruned_offsets, pruned_targets = pruned_graph(snap)
    assert pruned_offsets.dtype == np.uint32
    assert pruned_offsets.tolist() == [0, *np.cumsum(degree).tolist()]
    assert pruned_targets.tolist() == targets[keep].tolist()


def test_retained_sizes_match_a_brute_force_deletion() -> None:
    shared = [f"shared-{i}" for i in range(50)]
    tree = {"left": [f"l{i}" for i in range(30)], "right": shared, "leaf": np.ones(1000)}
    other = [shared]
    snap = jupyter_memsnap.take(roots=[("tree", "variable", tree), ("other", "variable", other)])
    retention = snap.retention
    tree_row = snap.row(id(tree))
    # Brute force: what becomes unreachable from the other roots without the tree?
    reachable_without = np.zeros(len(snap), dtype=bool)
    todo = [r.index for r in retention.roots if r.name != "tree"]
    todo = [i for i in todo if i != tree_row]
    while todo:
        node = todo.pop()
        if reachable_without[node] or node == tree_row:
            continue
        reachable_without[node] = True
        todo.extend(int(t) for t in snap.referents_of_row(node))
    expected = int(snap.sizes[~reachable_without].sum())
    assert int(snap.retained[tree_row]) == expected
    assert expected >= 8000 + sum(len(s) for s in tree["left"])  # type: ignore[arg-type]


def test_type_inclusive_sizes_count_nothing_twice() -> None:
    nested = [[[float(i)] for i in range(100)] for _ in range(10)]
    snap = jupyter_memsnap.take(roots=[("nested", "variable", nested)])
    types = snap.types.set_index(["type", "module"])
    list_row = types.loc[("list", "builtins")]
    assert list_row["retained"] <= snap.total_size
    assert list_row["retained"] >= int(snap.retained[snap.row(id(nested))])
    retention = compute_retention(snap)
    inclusive = retention.type_inclusive(snap)
    assert (inclusive <= retention.object_retained().sum()).all()


def test_paths_to_root_dataframe_and_neighbours() -> None:
    holder = {"payload": np.ones(5000)}  # the array is no local of this frame
    payload = id(holder["payload"])
    snap = jupyter_memsnap.take(roots=[("holder", "variable", holder, ())])
    paths = snap.paths_to_root(payload)
    first = paths[paths["path"] == 1]
    assert list(first["step"]) == [0, 1]
    assert first.iloc[0]["root"] == "holder"
    assert first.iloc[-1]["type"] == "numpy.ndarray"
    refs = snap.referrers(payload)
    assert int(refs.iloc[0]["id"]) == id(holder)
    assert payload in set(snap.referents(id(holder))["id"].astype(int))
    with pytest.raises(KeyError):
        snap.paths_to_root(id(object()))


def test_why_on_a_temporary_says_nothing_keeps_it(ip: Any) -> None:
    gc.collect()
    text = _why_text(ip, "[1, 2, 3]")
    assert "temporary" in text
