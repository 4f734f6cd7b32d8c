"""What CPython hides from tp_traverse, measured against truths that do not come from it:
the bytes tracemalloc traced while a structure was built, ``sys.getsizeof`` over contents
known by construction, and a walk's named roots for a thread's locals. Both walkers."""

from __future__ import annotations

import array
import collections
import gc
import sys
import threading
import time
import tracemalloc
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from jupyter_memsnap.capture import heap, interpreter, pywalker
from jupyter_memsnap.capture.heap import RawHeap

ENGINES = ["c", "python"] if heap.HAVE_COMPILED else ["python"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _closure(engine: str, obj: object, exclude: list[object] | None = None) -> RawHeap:
    """Every object reachable from obj alone (through the hidden references too)."""
    return heap.capture(
        [("obj", "variable", obj)],
        seeds=[],
        include_process_roots=False,
        engine=engine,
        collect=False,
        exclude_objects=exclude or [],
    )


def _row(raw: RawHeap, obj: object) -> int:
    k = int(np.searchsorted(raw.sorted_ids, np.uint64(id(obj))))
    found = k < len(raw.sorted_ids) and int(raw.sorted_ids[k]) == id(obj)
    return int(raw.order[k]) if found else -1


def _size(raw: RawHeap, obj: object) -> int:
    r = _row(raw, obj)
    assert r >= 0, f"{type(obj).__name__} not reached"
    return int(raw.sizes[r])


def _traced(build: Callable[[], Any]) -> tuple[Any, int]:
    """What build() returns, and the bytes tracemalloc saw it keep."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        made = build()
        gc.collect()
        delta = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return made, delta


def _close(ours: int, truth: int, tolerance: float) -> None:
    assert abs(ours - truth) <= tolerance * truth, f"ours {ours:,} vs truth {truth:,}"


def test_a_str_keyed_dict_counts_its_keys(engine: str) -> None:
    d, traced = _traced(lambda: {f"user-{i:08d}-key": float(i) for i in range(200_000)})
    raw = _closure(engine, d)
    by_contents = sys.getsizeof(d) + sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in d.items())
    assert int(raw.sizes.sum()) == by_contents
    _close(int(raw.sizes.sum()), traced, 0.02)
    assert _row(raw, next(iter(d))) in raw.targets[raw.offsets[_row(raw, d)] :]


def test_a_dict_subclass_counts_its_keys_too(engine: str) -> None:
    d = collections.OrderedDict((f"ordered-{i}", None) for i in range(100))
    raw = _closure(engine, d)
    assert all(_row(raw, k) >= 0 for k in d)


class _Record:
    def __init__(self, i: int) -> None:
        self.a = float(i)
        self.b = f"b{i}"
        self.c = float(-i)
        self.d = f"d{i}"
        self.e = (i, i)


def test_instances_count_their_attribute_values(engine: str) -> None:
    _Record(0)
    records, traced = _traced(lambda: [_Record(i) for i in range(100_000)])
    raw = _closure(engine, records, exclude=[_Record])
    _close(int(raw.sizes.sum()), traced, 0.03)
    plain = sys.getsizeof(records) + sum(
        sys.getsizeof(r) + sum(sys.getsizeof(v) for v in vars(r).values()) for r in records[:1]
    )
    assert int(raw.sizes.sum()) > plain  # something beyond getsizeof, on 3.11+ the values


def _generated_module(run: str) -> types.ModuleType:
    # Names and constants unique to each run: interned strings can outlive a module (3.12
    # makes them immortal), and the next compile would reuse them untraced.
    source = "\n".join(
        f"def generated_{run}_{i}(a, b=({i}, 'k-{run}-{i}')):\n"
        f"    c = a + {i}.5\n"
        f"    return str(c) + 'tail-{run}-{i}'\n"
        for i in range(2_000)
    )
    module = types.ModuleType(f"memsnap_generated_{run}")
    exec(compile(source, "<memsnap-generated>", "exec"), module.__dict__)
    return module


def test_a_generated_module_counts_its_code(engine: str) -> None:
    # Interning the new names may grow the interpreter's interned-string table (memory only C
    # holds) while one module is traced: of two builds, the one that did not is the truth.
    builds = [_traced(lambda k=k: _generated_module(f"{engine}{k}{id(engine)}")) for k in (1, 2)]
    module, traced = min(builds, key=lambda b: b[1])
    builtins = module.__dict__["__builtins__"]
    raw = _closure(engine, module, exclude=[builtins, sys.modules["builtins"]])
    code_rows = sum(
        1 for i in range(len(raw.order)) if raw.type_qualname[int(raw.types[i])] == "code"
    )
    assert code_rows >= 2_000
    _close(int(raw.sizes.sum()), traced, 0.10)


def test_a_subclass_with_a_python_sizeof_gets_the_nearest_c_one(engine: str) -> None:
    class Items(list):  # type: ignore[type-arg]
        def __sizeof__(self) -> int:
            return 1

    items, traced = _traced(lambda: Items([None] * 1_000_000))
    _close(_size(_closure(engine, items, exclude=[Items]), items), traced, 0.02)

    class Big(int):
        def __sizeof__(self) -> int:
            return 1

    class Plain(int):
        pass

    number = Big(10**400)
    assert _size(_closure(engine, number, exclude=[Big]), number) == sys.getsizeof(Plain(10**400))


def test_a_sizeof_borrowed_from_an_unrelated_type_is_not_called(engine: str) -> None:
    class Borrower:
        __sizeof__ = dict.__sizeof__

    obj = Borrower()
    assert 0 < _size(_closure(engine, obj, exclude=[Borrower]), obj) < 1000


def _c_typed_samples() -> list[object]:
    def function() -> None:
        pass

    return [
        [1, 2, 3],
        list(range(1000)),
        {"a": 1, 2: "b"},
        {f"k{i}": i for i in range(100)},
        set(range(50)),
        frozenset("abc"),
        "ascii text",
        "latin ñ" * 5,
        "ucs2 ☃" * 7,
        "ucs4 🐍" * 3,
        b"bytes" * 9,
        bytearray(b"x" * 77),
        10**100,
        -5,
        2.5,
        1 + 2j,
        (1, "two", 3.0),
        range(10),
        slice(1, 2),
        memoryview(b"view"),
        array.array("d", range(30)),
        collections.deque(range(20)),
        collections.defaultdict(list, a=[1]),
        collections.OrderedDict(a=1),
        function,
        function.__code__,
        types.SimpleNamespace(x=1),
        int,
        type,
        object,
        np.ndarray,
        np.arange(100),
        np.arange(100)[::3],
        np.float64(1.5),
        np.dtype([("x", "f8"), ("y", "i4", (3,))]),
        sys,
        threading.Lock(),
        iter([1]),
    ]


def test_every_c_type_is_sized_as_sys_getsizeof_sizes_it(engine: str) -> None:
    samples = _c_typed_samples()
    raw = _closure(engine, samples)
    wrong = {
        type(o).__name__: (_size(raw, o), sys.getsizeof(o))
        for o in samples
        if _size(raw, o) != sys.getsizeof(o)
    }
    assert not wrong


def test_a_heap_type_owns_its_names_slots_and_docstring(engine: str) -> None:
    cls = type("Slotted", (), {"__slots__": ["left", "right"], "__doc__": "d" * 999})
    raw = _closure(engine, cls)
    assert _size(raw, cls) == sys.getsizeof(cls) + 1000
    for attribute in (cls.__name__, cls.__qualname__):
        assert _row(raw, attribute) >= 0


def test_code_objects_are_followed(engine: str) -> None:
    def sample(x: int) -> str:
        inner = "a-constant-only-this-code-holds"
        return inner * x

    code = sample.__code__
    raw = _closure(engine, code)
    for part in (code.co_consts, code.co_names, code.co_filename, code.co_name, code.co_linetable):
        assert _row(raw, part) >= 0
    assert _row(raw, code.co_consts[1]) >= 0


def test_an_arrays_dtype_and_a_structured_dtypes_fields_are_followed(engine: str) -> None:
    arr = np.zeros(4, dtype=[("price", "f8"), ("tags", "U8", (2,))])
    raw = _closure(engine, arr)
    fields: Any = arr.dtype.fields
    for part in (arr.dtype, arr.dtype.names, gc.get_referents(fields)[0]):
        assert _row(raw, part) >= 0


@pytest.fixture
def worker() -> Iterator[tuple[threading.Thread, int]]:
    """A thread holding a 40 MB array in a local variable, and that array's id."""
    ready, stop = threading.Event(), threading.Event()
    box: list[int] = []

    def hold_weights() -> None:
        weights = np.ones(5_000_000)
        box.append(id(weights))
        ready.set()
        stop.wait()

    thread = threading.Thread(target=hold_weights, name="trainer", daemon=True)
    thread.start()
    ready.wait()
    yield thread, box[0]
    stop.set()
    thread.join()


def test_a_threads_locals_are_named_roots(
    engine: str, worker: tuple[threading.Thread, int]
) -> None:
    _, weights_id = worker
    here = np.full(1_000_000, 2.0)  # a local of the frame that takes the snapshot
    gc.collect()
    raw = heap.capture(engine=engine, collect=False)
    ids = np.empty(len(raw.order), np.uint64)
    ids[raw.order] = raw.sorted_ids

    def held(thread: str, local: str) -> int:
        found = [
            r
            for r in raw.roots
            if r.name.startswith(f"thread {thread} › ") and r.name.endswith(local)
        ]
        assert len(found) == 1 and found[0].kind == "local", [r.name for r in found]
        return int(found[0].index)

    weights = held("trainer", "hold_weights() › weights")
    assert int(ids[weights]) == weights_id
    assert int(raw.sizes[weights]) == 40_000_000 + sys.getsizeof(np.ones(0))
    mine = held(threading.current_thread().name, "test_a_threads_locals_are_named_roots() › here")
    assert int(ids[mine]) == id(here)


def test_reading_locals_builds_nothing_on_the_frame(engine: str) -> None:
    kept = object()
    before = sys.getrefcount(kept)
    heap.capture(engine=engine, collect=False)
    assert sys.getrefcount(kept) == before  # f_locals would have made a dict holding it


def test_dead_objects_on_a_free_list_are_never_touched(tmp_path: Any) -> None:
    import subprocess

    script = (
        "import asyncio, gc, jupyter_memsnap\n"
        "loop = asyncio.new_event_loop()\n"
        "for _ in range(3):\n"
        "    it = iter(loop.create_future()); del it\n"
        f"for engine in {ENGINES!r}:\n"
        "    jupyter_memsnap.take(engine=engine)\n"
        "    gc.collect()\n"
        "print('alive')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "alive", done.stderr[-2000:]


def test_the_pure_python_walker_agrees_on_the_hidden_edges() -> None:
    if not heap.HAVE_COMPILED:
        pytest.skip("compiled walker not built")
    sample = [*_c_typed_samples(), _Record(3), type("T", (), {"__slots__": ("q",)})]
    args = ([sample], [], [], (), np.ndarray, heap.GC_HEAD)
    c, p = heap._walker.walk(*args), pywalker.walk(*args)
    for key, dtype in (("sorted_ids", np.uint64), ("sizes", np.int64), ("targets", np.uint32)):
        decoded = {"sizes": heap.sizes_of, "sorted_ids": heap.ids_of}
        mine = decoded[key](c).decode() if key in decoded else np.frombuffer(c[key], dtype)
        theirs = np.asarray(p[key], dtype)
        if key == "sizes" and sys.version_info < (3, 11):
            # 3.10 sizes a code object's opcache, which code running between the walks grows
            code = (
                c["type_objects"].index(types.CodeType)
                if types.CodeType in c["type_objects"]
                else -1
            )
            grown = (mine != theirs) & (np.frombuffer(c["types"], np.int32) == code)
            mine, theirs = mine[~grown], theirs[~grown]
        np.testing.assert_array_equal(mine, theirs)


_GUPPY = """
import gc, json, sys, types
import numpy as np
from guppy import hpy
from jupyter_memsnap.capture import heap, interpreter

n = 100_000
data = {
    "names": [f"name-{i:07d}" for i in range(3 * n)],
    "pairs": [(i * 0.5, f"p{i}") for i in range(n)],
    "blobs": [bytes(40) + str(i).encode() for i in range(n // 4)],
    "records": [{"id": i, "label": f"r{i}", "score": i * 0.25} for i in range(n // 2)],
    "groups": [[float(i), float(-i)] for i in range(n // 4)],
}
module = types.ModuleType("memsnap_guppy_generated")
source = "\\n".join(f"def g{i}(a):\\n    return a + {i}.5 + len('c{i}')" for i in range(10_000))
exec(compile(source, "<generated>", "exec"), module.__dict__)
h = hpy()
gc.collect()
everything = h.heap()
theirs = {row.name: row.size for row in everything.bytype.stat.get_rows()}
# guppy hides its own objects but not its own code objects; ours leaves all of guppy out
theirs["types.CodeType"] -= sum(
    sys.getsizeof(c) for c in everything.nodes
    if type(c) is types.CodeType and "/guppy/" in c.co_filename.replace(chr(92), "/")
)
del everything
gc.collect()
guppy = [m for name, m in sys.modules.items() if name.split(".")[0] == "guppy"]
# guppy3 does not see the interpreter's interned-string table (a dict only C holds)
interned = [root[2] for root in interpreter.interned_roots()]
raw = heap.capture(engine=sys.argv[1], exclude_objects=[*guppy, h, *interned])
ours = {}
for code, size in zip(raw.types.tolist(), raw.sizes.tolist()):
    if raw.type_module[code] == "builtins":
        name = raw.type_qualname[code]
        ours[name] = ours.get(name, 0) + size
names = {"code": "types.CodeType"}
print(json.dumps({t: [ours.get(t, 0), theirs.get(names.get(t, t), 0)]
                  for t in ("str", "tuple", "bytes", "code", "float", "dict", "list")}))
"""


def test_the_whole_heap_by_type_agrees_with_guppy3(engine: str) -> None:
    import json
    import subprocess

    from conftest import subprocess_env

    done = subprocess.run(
        [sys.executable, "-c", _GUPPY, engine],
        capture_output=True,
        text=True,
        timeout=240,
        env=subprocess_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    totals = json.loads(done.stdout.splitlines()[-1])
    off = {
        t: (ours, theirs)
        for t, (ours, theirs) in totals.items()
        if abs(ours - theirs) > 0.05 * theirs
    }
    assert not off, off


def test_a_generic_alias_is_walked_as_the_object_it_is(engine: str) -> None:
    marker = "a string only this alias holds " + str(id(engine))
    alias = types.GenericAlias(tuple, (int, marker))
    raw = _closure(engine, alias)
    assert _row(raw, marker) >= 0  # on 3.10 isinstance(alias, type) is True


def test_the_compiled_walker_passes_its_self_check() -> None:
    if not heap.HAVE_COMPILED:
        pytest.skip("compiled walker not built")
    from jupyter_memsnap.capture import selfcheck

    assert selfcheck.problems(heap._walker, heap.GC_HEAD) == []
    assert heap.use_compiled()


def test_a_failed_self_check_warns_once_and_walks_in_python(monkeypatch: Any) -> None:
    if not heap.HAVE_COMPILED:
        pytest.skip("compiled walker not built")
    from jupyter_memsnap.capture import selfcheck

    monkeypatch.setattr(heap, "_checked", [])
    monkeypatch.setattr(selfcheck, "problems", lambda walker, gc_head: ["size of int: 1"])
    payload = [1.5, "x"]
    with pytest.warns(RuntimeWarning, match="failed its self-check.*size of int"):
        raw = heap.capture([("p", "variable", payload)], seeds=[], include_process_roots=False)
    assert raw.engine == "python"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = heap.capture([("p", "variable", payload)], seeds=[], include_process_roots=False)
    assert again.engine == "python"


def test_a_missing_compiled_module_is_said_once_and_falls_back() -> None:
    from jupyter_memsnap.compiled import load

    with pytest.warns(RuntimeWarning, match="not built.*pure Python"):
        assert load("jupyter_memsnap.model._no_such_extension", "graph algorithms") is None


def _names_only_the_interpreter_keeps(count: int) -> list[str]:
    """Copies of ``count`` fresh names that a compiled and discarded function interned: the
    interned originals stay (3.12 and 3.13 make them immortal), held by no object."""
    tag = f"{id(object()):x}_{time.monotonic_ns()}"
    names = [f"kept_{tag}_{i}" for i in range(count)]
    exec(compile(f"def _gone():\n    return [{', '.join(names)}]\n", "<memsnap-names>", "exec"), {})
    return names


@pytest.mark.skipif(sys.version_info < (3, 12), reason="3.10 and 3.11 keep the dict static in C")
def test_the_interpreters_interned_strings_are_a_root(engine: str) -> None:
    if interpreter._interpreter is None:
        pytest.skip("built without CPython's internal headers")
    names = _names_only_the_interpreter_keeps(5_000)
    (root,) = interpreter.interned_roots()
    name, kind, interned = root
    assert (name, kind) == ("interpreter interned strings", "interpreter")
    raw = _closure(engine, interned)
    by_contents = sys.getsizeof(interned) + sum(sys.getsizeof(k) for k in interned)
    assert all(v is k for k, v in interned.items())
    assert int(raw.sizes.sum()) == by_contents
    kept = [interned[n] for n in names]
    assert all(_row(raw, k) >= 0 for k in kept)
    assert all(sys.getrefcount(k) > 1_000_000 for k in kept[:10])  # immortal: only C holds them


@pytest.mark.skipif(sys.version_info < (3, 12), reason="3.10 and 3.11 keep the dict static in C")
def test_a_snapshot_names_what_only_the_interned_strings_keep() -> None:
    if interpreter._interpreter is None:
        pytest.skip("built without CPython's internal headers")
    from jupyter_memsnap import take

    before = take()
    names = _names_only_the_interpreter_keeps(20_000)
    after = take()
    truth = sum(sys.getsizeof(n) for n in names)

    def retained(snap: Any) -> int:
        roots = [r.name for r in snap.retention.roots]
        return int(snap.retention.root_retained()[roots.index("interpreter interned strings")])

    grown = retained(after) - retained(before)
    assert truth <= grown <= truth * 1.1 + 2 * 1024 * 1024, (grown, truth)  # + a dict resize
