"""Answers a user can act on: every name is a variable, paths name their edges, and the fix
given for a path frees the object when it is run (checked with weak references)."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from conftest import run
from test_magics import magic, table


def why(ip: Any, line: str) -> list[dict[str, str]]:
    """The rows of ``%memsnap why``, their text with runs of spaces made one."""
    rows = table(magic(ip, f"why {line}")[1])
    return [{k: " ".join(v.split()) for k, v in row.items()} for row in rows]


def command(fix: str) -> str:
    """The code of a fix, without its explanation in parentheses."""
    return fix.split(" (")[0]


def path_of(row: dict[str, str]) -> str:
    """The path's text without its size: ``_cache['q3'] → ndarray``."""
    return row["path"].rpartition(" (")[0]


def named_expression(row: dict[str, str]) -> str:
    return row["path"].partition(" → ")[0]


def assert_names_the_object(ip: Any, row: dict[str, str]) -> None:
    """The path's named expression, evaluated in the user's namespace, is the object."""
    assert hex(id(ip.ev(named_expression(row)))) == row["id"], row


def test_every_namespace_name_is_a_variable_but_ipythons_own(ip: Any) -> None:
    run(ip, "_cache = {'q3': list(range(1000))}\n__secret = 1\nvisible = 2")
    run(ip, "_cache")
    run(ip, "_i1")
    names = {row["name"] for row in table(magic(ip, "vars --top 50")[1])}
    assert {"_cache", "__secret", "visible"} <= names
    assert not names & {"_", "__", "_2", "_i", "_i1", "_ih", "_oh", "In", "Out", "__name__"}


def test_shared_with_names_each_holder_once_and_ignores_shared_atoms(ip: Any) -> None:
    run(ip, "import numpy as np\n_cache = {'q3': np.ones(300_000)}")
    out = run(ip, "_cache['q3']")  # displayed: Out[n], _n, _ and displayhook._ hold it
    del out
    run(ip, "a = {'alpha_key': [0.5] * 10_000}\nb = {'alpha_key': [1.5] * 10_000}")
    rows = {r["name"]: r for r in table(magic(ip, "vars --top 50")[1])}
    assert rows["_cache"]["shared_with"] == "Out[2]"  # not "displayhook._, _2 (hidden), _2, …"
    assert rows["a"]["shared_with"] == rows["b"]["shared_with"] == ""


def test_entries_of_an_underscore_dict_are_named_and_deleting_them_frees_them(ip: Any) -> None:
    run(
        ip,
        "import numpy as np, weakref\n_cache = {}\n"
        "def process(q):\n    _cache[q] = np.random.rand(300_000)\n    return len(_cache)\n"
        "process('q3'); process('q4')\n"
        "refs = {q: weakref.ref(a) for q, a in _cache.items()}",
    )
    rows = why(ip, "--type ndarray --top 2")
    assert sorted(path_of(r) for r in rows) == [
        "_cache['q3'] → ndarray",
        "_cache['q4'] → ndarray",
    ]
    # A function reaches the namespace through its globals: it holds none of its entries.
    assert all(r["holder"] == "_cache" for r in rows)
    for row in rows:
        assert_names_the_object(ip, row)
        assert row["fix"] == f"del {named_expression(row)} (or _cache.clear())"
    q3 = next(r for r in rows if "q3" in r["path"])
    run(ip, command(q3["fix"]))
    gc.collect()
    assert run(ip, "refs['q3']() is None, refs['q4']() is None") == (True, False)


def test_attributes_and_nested_entries_are_named(ip: Any) -> None:
    run(
        ip,
        "import numpy as np, weakref\n"
        "class Model:\n    def __init__(self):\n"
        "        self.history = {'epoch': [np.zeros(500_000)]}\n"
        "model = Model()\nref = weakref.ref(model.history['epoch'][0])",
    )
    (row,) = why(ip, "model.history['epoch'][0]")
    assert path_of(row) == "model.history['epoch'][0] → ndarray"
    assert_names_the_object(ip, row)
    run(ip, command(row["fix"]))
    gc.collect()
    assert run(ip, "ref() is None") is True


def test_naming_an_attribute_does_not_make_the_instance_a_dict(ip: Any) -> None:
    run(
        ip,
        "import gc, numpy as np\nclass Holder:\n    def __init__(self):\n"
        "        self.weights = [np.zeros(400_000)]\nholder = Holder()",
    )
    before = run(ip, "[type(r).__name__ for r in gc.get_referents(holder)]")
    (row,) = why(ip, "holder.weights[0]")
    assert path_of(row) == "holder.weights[0] → ndarray"
    assert run(ip, "[type(r).__name__ for r in gc.get_referents(holder)]") == before


def test_dataframe_columns_are_named_and_deleting_one_frees_its_block(ip: Any) -> None:
    run(
        ip,
        "import numpy as np, pandas as pd, weakref\n"
        "orders = pd.DataFrame({'qty': np.arange(300_000), 'price': np.ones(300_000)})\n"
        "block = orders['qty'].to_numpy().base\nref = weakref.ref(block)",
    )
    block_id = hex(run(ip, "id(block)"))
    run(ip, "del block")
    rows = [r for r in why(ip, "--type ndarray --top 2") if r["id"] == block_id]
    assert [path_of(r) for r in rows] == ["orders['qty'] → ndarray"]
    assert rows[0]["fix"] == "del orders['qty']"
    run(ip, command(rows[0]["fix"]))
    gc.collect()
    assert run(ip, "ref() is None") is True


def test_an_open_pyplot_figure_is_freed_by_plt_close_not_del(ip: Any) -> None:
    run(
        ip,
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt, weakref\n"
        "fig_open, ax = plt.subplots()\nref = weakref.ref(fig_open)",
    )
    rows = why(ip, "fig_open")
    assert rows[0]["holder"] == "fig_open"
    assert rows[0]["fix"].startswith("plt.close(fig_open); del fig_open")
    run(ip, "del fig_open, ax")
    gc.collect()
    assert run(ip, "ref() is not None"), "pyplot still holds it: del alone freed nothing"
    (row,) = why(ip, "ref()")
    assert row["holder"] == "pyplot figure 1"
    assert row["fix"] == "plt.close(1)"
    run(ip, command(row["fix"]))
    gc.collect()
    assert run(ip, "ref() is None") is True


def test_closure_variables_running_locals_and_traceback_locals_are_named(ip: Any) -> None:
    run(
        ip,
        "import numpy as np, threading\n"
        "def make():\n    big = np.zeros(200_000)\n    return lambda: big\nfn = make()\n"
        "def train(ready, stop):\n    weights = [np.ones(300_000)]\n"
        "    ready.set()\n    stop.wait()\n"
        "ready, stop = threading.Event(), threading.Event()\n"
        "worker = threading.Thread(target=train, args=(ready, stop), name='trainer')\n"
        "worker.start(); ready.wait()",
    )
    try:
        (row,) = why(ip, "fn.__closure__[0].cell_contents")
        assert path_of(row) == "fn › big → ndarray"
        rows = why(ip, "--type ndarray --top 1")
        assert "thread trainer › train() › weights[0] → ndarray" in map(path_of, rows)
    finally:
        run(ip, "stop.set(); worker.join()")
    ip.run_cell("def fail():\n    kept = np.full(400_000, 7.0)\n    raise ValueError('x')\nfail()")
    rows = why(ip, "--type ndarray --top 1")
    assert any(path_of(r).endswith("tb_frame › kept → ndarray") for r in rows), rows
    assert all(r["fix"].startswith("%memsnap release") for r in rows)


def test_an_old_snapshot_whose_objects_were_replaced_shows_types(ip: Any) -> None:
    run(ip, "import numpy as np\n_cache = {'q3': np.ones(300_000)}")
    array = hex(run(ip, "id(_cache['q3'])"))
    magic(ip, "take")
    run(ip, "_cache = dict(_cache)")  # a new dict: the stored path's ids are not live
    old = [r for r in why(ip, "--type ndarray --top 5 -s 1") if r["id"] == array]
    assert [path_of(r) for r in old] == ["_cache → dict → ndarray"]
    now = [r for r in why(ip, "--type ndarray --top 5") if r["id"] == array]
    assert [path_of(r) for r in now] == ["_cache['q3'] → ndarray"]


@pytest.mark.parametrize("line", ["d['a b'] -s 'x y'", 'd["k"] --paths 2'])
def test_why_keeps_the_quotes_of_an_expression(ip: Any, line: str) -> None:
    run(ip, "d = {'a b': [1.0] * 1000, 'k': [2.0] * 1000}")
    magic(ip, "take -l 'x y'")
    (row,) = why(ip, line)
    assert path_of(row) == f"{named_expression(row)} → list"
    assert_names_the_object(ip, row)


# ----------------------------------------------------------------------------- diffs


def test_a_diff_ranks_what_was_freed_with_what_grew(ip: Any) -> None:
    run(
        ip,
        "import sys, numpy as np, pandas as pd\n"
        "_cache = {q: np.random.rand(1_000_000) for q in ('q1', 'q2', 'q3')}\n"
        "freed = sum(sys.getsizeof(a) for a in _cache.values())\n"
        "frame = pd.DataFrame({'x': np.arange(500_000)})\n"
        "frame_bytes = int(frame.memory_usage(deep=True).sum())",
    )
    magic(ip, "take -l before")
    run(ip, "_cache.clear()\ndel frame\ngrown = [np.ones(10_000)]")
    magic(ip, "take -l after")
    diff, cap = magic(ip, "diff before after --top 3 -o")
    first = diff.types.iloc[0]
    assert first["type"] == "ndarray"
    assert first["size_diff"] <= -run(ip, "freed")  # the cleared arrays lead, as a shrinkage
    assert table(cap)[0]["type"] == "ndarray"
    frames = diff.types.set_index("type").loc["DataFrame"]
    assert frames["retained_a"] >= run(ip, "frame_bytes") and frames["retained_b"] == 0
    assert frames["retained_diff"] == -frames["retained_a"]
    grew = table(magic(ip, "diff before after --growth --top 50")[1])
    assert grew and all(not r["size_diff"].startswith("-") for r in grew)
    variables = diff.variables.set_index("name")
    assert variables.loc["_cache", "retained_diff"] <= -run(ip, "freed")
    assert variables.loc["frame", "retained_b"] == 0


def test_diff_headers_name_the_snapshots_and_define_themselves(ip: Any) -> None:
    run(ip, "x = [0] * 1000")
    magic(ip, "take -l before")
    magic(ip, "take")
    _, cap = magic(ip, "diff before 2 --top 3")
    html = cap.outputs[0].data["text/html"]
    for shown in ("count (before)", "count (2)", "size change", "retained (before)", "new bytes"):
        assert f">{shown}</th>" in html
    assert "title='bytes that would be freed if this went away" in html
    assert "count (before)" in cap.outputs[0].data["text/plain"]


def test_naming_runs_no_user_code(ip: Any) -> None:
    run(
        ip,
        "import numpy as np\n"
        "class Loud:\n"
        "    calls = 0\n"
        "    def __repr__(self):\n        Loud.calls += 1\n        raise RuntimeError('repr')\n"
        "    def __getattribute__(self, name):\n        Loud.calls += 1\n"
        "        return object.__getattribute__(self, name)\n"
        "    @property\n    def data(self):\n        Loud.calls += 1\n        return None\n"
        "key = Loud()\nholder = Loud()\nobject.__setattr__(holder, 'payload', [np.ones(300_000)])\n"
        "table = {key: holder}\nLoud.calls = 0",
    )
    rows = {r["holder"]: r for r in why(ip, "table[key].payload[0]")}
    assert path_of(rows["table"]) == "table[<Loud>].payload[0] → ndarray"
    assert rows["table"]["fix"].startswith("del table ")  # not code it cannot write
    assert run(ip, "Loud.calls") == 1  # evaluating the expression (.payload), nothing more
