"""The compiled walker against the pure-Python oracle, and what both must see."""

from __future__ import annotations

import contextlib
import gc
import json
import mmap
import os
import subprocess
import sys
import time
import types
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import subprocess_env
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_memsnap.capture import heap, interpreter, pywalker
from jupyter_memsnap.model import spill

needs_c = pytest.mark.skipif(not heap.HAVE_COMPILED, reason="compiled walker not built")
needs_interpreter = pytest.mark.skipif(
    interpreter._interpreter is None, reason="built without its _interpreter module"
)
COLUMNS = {
    "sorted_ids": np.uint64,
    "order": np.uint32,
    "types": np.int32,
    "sizes": np.int64,
    "offsets": np.uint32,
    "targets": np.int32,
    "roots": np.int32,
    "unreached": np.uint32,
    "native_index": np.uint32,
    "native_bytes": np.int64,
}


def _walk_both(
    roots: list[object], seeds: list[object], exclude: list[object] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    args = (roots, seeds, exclude or [], (), np.ndarray, heap.GC_HEAD)
    return heap._walker.walk(*args), pywalker.walk(*args)  # type: ignore[union-attr]


def _assert_same(c: dict[str, Any], p: dict[str, Any], *, code_may_grow: bool = False) -> None:
    """Both walks saw the same graph; with code_may_grow, 3.10 code objects may differ in size.

    On 3.10 a code object that has run 1,024 times allocates its opcache, which its
    ``__sizeof__`` counts: code running between the two walks can grow some of them.
    """
    for key in COLUMNS:
        mine, theirs = _col(c, key), _col(p, key).astype(COLUMNS[key])
        if key == "sizes" and code_may_grow and sys.version_info < (3, 11):
            changed = np.flatnonzero(mine != theirs)
            grown = [c["type_objects"][t] for t in _col(c, "types")[changed]]
            assert all(t is types.CodeType for t in grown), "only code objects may grow"
            assert (theirs[changed] > mine[changed]).all()
            mine, theirs = np.delete(mine, changed), np.delete(theirs, changed)
        np.testing.assert_array_equal(mine, theirs, key)
    assert c["type_objects"] == p["type_objects"]


def _graph_from(spec: list[tuple[str, list[int]]], atoms: list[object]) -> list[object]:
    """Containers wired by index: ('list'|'dict'|'tuple'|'objarr'|'view', [children])."""
    nodes: list[Any] = []
    for kind, _ in spec:
        nodes.append({"list": list, "dict": dict, "objarr": list, "view": list}.get(kind, list)())
    for node, (kind, children) in zip(nodes, spec, strict=True):
        kids = [nodes[c] if c < len(nodes) else atoms[c % len(atoms)] for c in children]
        if kind == "dict":
            node.update({f"k{i}": k for i, k in enumerate(kids)})
        else:
            node.extend(kids)
    out: list[object] = []
    for node, (kind, _) in zip(nodes, spec, strict=True):
        if kind == "tuple":
            out.append(tuple(node))
        elif kind == "objarr":
            arr = np.empty(len(node), dtype=object)
            arr[:] = node
            out.append(arr)
        elif kind == "view":
            out.append(np.arange(len(node) + 4, dtype=np.float64)[1::2])
        else:
            out.append(node)
    return out


node_spec = st.tuples(
    st.sampled_from(["list", "dict", "tuple", "objarr", "view"]),
    st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)


@needs_c
@settings(max_examples=150, deadline=None)
@given(st.lists(node_spec, min_size=1, max_size=25), st.integers(0, 5))
def test_c_and_python_agree_on_generated_graphs(spec: list[Any], n_excluded: int) -> None:
    atoms: list[object] = [1.5, "text", 10**30, b"bytes", None, (1, 2), "x" * 100]
    objects = _graph_from(spec, atoms)
    exclude = objects[-n_excluded:] if n_excluded else []
    c, p = _walk_both([objects], list(objects[: len(objects) // 2]), exclude)
    _assert_same(c, p)


@needs_c
def test_c_and_python_agree_on_the_whole_heap() -> None:
    frame = pd.DataFrame({"a": np.arange(500), "s": [f"s{i}" for i in range(500)]})
    frame["c"] = pd.Categorical(["x", "y"] * 250)
    grid = np.array([f"v{i}" for i in range(60)], dtype=object).reshape(6, 10)[::2, 1::3]
    pywalker.walk([frame], [], [], (), np.ndarray, heap.GC_HEAD)
    gc.collect()
    c, p = _walk_both([sys.modules, frame, grid], gc.get_objects())
    _assert_same(c, p, code_may_grow=True)
    assert len(c["unreached"]) > 0, "the gc pass should find objects only C holds"


@needs_c
@pytest.mark.parametrize("edges", [True, False])
def test_c_and_python_agree_when_every_array_outgrows_its_first_allocation(edges: bool) -> None:
    # No size hint and no seeds: each column starts at 1,024 rows and must grow past the size
    # where it moves to its own mapping (2 MiB), keeping everything written so far.
    pairs = [(f"s{i}", i + 0.5) for i in range(220_000)]
    args = ([pairs], [], [], (), np.ndarray, heap.GC_HEAD, 0, None, edges)
    c, p = heap._walker.walk(*args), pywalker.walk(*args)  # type: ignore[union-attr]
    _assert_same(c, p)
    assert len(_col(c, "sizes")) > 660_000
    assert (_col(c, "sizes") > 0).all()


def _mapping(buffer: memoryview) -> dict[str, Any]:
    """The /proc/self/smaps entry of the mapping holding ``buffer``: path, perms, span, Rss."""
    start = np.frombuffer(buffer, np.uint8).ctypes.data
    with open("/proc/self/smaps") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        fields = line.split()
        if "-" in fields[0] and ":" not in fields[0]:
            low, high = (int(x, 16) for x in fields[0].split("-"))
            if low <= start < high:
                rss = next(x for x in lines[i + 1 :] if x.startswith("Rss:"))
                return {
                    "path": " ".join(fields[5:]),
                    "perms": fields[1],
                    "span": high - low,
                    "rss": int(rss.split()[1]),
                }
    return {}


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


needs_linux_spill = pytest.mark.skipif(
    not sys.platform.startswith("linux") or spill.file_prefix() is None,
    reason="Linux, with a directory on a disk for files",
)


@needs_c
@needs_linux_spill
def test_the_graph_written_into_its_files_is_the_graph() -> None:
    # Started small (no hint), the graph moves into its files at 2 MiB and grows there.
    pairs = [(f"s{i}", i + 0.5) for i in range(220_000)]
    prefix, files = spill.file_prefix(), _open_files()
    args = ([pairs], [], [], (), np.ndarray, heap.GC_HEAD, 0, None, True, (), prefix)
    c = heap._walker.walk(*args)  # type: ignore[union-attr]
    assert _open_files() == files, "the walk closes its files: the mappings keep them"
    for key in ("offsets", "targets"):
        where = _mapping(c[key])
        assert where["path"].startswith(prefix) and where["path"].endswith("(deleted)")
        assert where["perms"] == "r--s" and where["rss"] == 0, "read-only, out of the RSS"
        assert where["span"] == -(-c[key].nbytes // mmap.PAGESIZE) * mmap.PAGESIZE
        assert c[key].obj.file_backed and spill.is_file_backed(_col(c, key))
    assert not c["sizes"].obj.file_backed
    _assert_same(c, pywalker.walk(*args))
    kept = np.frombuffer(c["targets"], np.uint8).ctypes.data
    del c
    with open("/proc/self/maps") as f:
        assert not any(int(line.split("-")[0], 16) == kept for line in f), "unmapped"
    census = heap._walker.walk([pairs], [], [], (), None, heap.GC_HEAD, 0, None, False, (), prefix)  # type: ignore[union-attr]
    assert not census["offsets"].obj.file_backed and _open_files() == files


WATCH_HELPER = """
import os, select, sys
pid, seen = int(sys.argv[1]), 0
print("ready", flush=True)
while not seen and not select.select([sys.stdin], [], [], 0.0002)[0]:
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as f:
                seen |= f.read().strip() == "memsnap-fault"
        except OSError:
            continue
print(int(seen), flush=True)
"""


class HelperWatch:
    """Another process watching this one for the walk's helper thread ("memsnap-fault"),
    which this process cannot see itself: the walk holds the GIL and runs no Python code
    while the helper lives. (Its page faults go uncounted: MADV_POPULATE_WRITE's are not
    the thread's own; strace shows them.)"""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WATCH_HELPER, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def seen(self) -> bool:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        seen = self.proc.stdout.readline().strip() == "1"
        self.proc.wait(timeout=30)
        return seen


def _helper_gone() -> bool:
    """No helper thread left in this process (a joined thread may linger in /proc a moment)."""
    for _ in range(100):
        names = []
        for task in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/comm") as f:
                names.append(f.read().strip())
        if "memsnap-fault" not in names:
            return True
        time.sleep(0.01)
    return False


CHILD_SHORT_OF_MEMORY = """
import resource, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from test_walker import HelperWatch, _helper_gone
from jupyter_memsnap.capture import heap
lists = [[i] for i in range(5_000_000)]
watch = HelperWatch()
with open("/proc/self/status") as f:
    size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + (200 << 20), resource.RLIM_INFINITY))
try:
    heap._walker.walk([lists], [], [], (), np.ndarray, heap.GC_HEAD, 2_000_000)
except MemoryError:
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    print("MemoryError", watch.seen(), _helper_gone())
"""

needs_prefault = pytest.mark.skipif(
    not getattr(heap._walker, "PREFAULTS", 0), reason="no helper thread in this build"
)


@needs_c
@needs_prefault
def test_a_large_walk_faults_its_pages_in_on_a_helper_thread_that_ends_with_it() -> None:
    floats = [i + 0.5 for i in range(4_500_000)]  # 36 MB of row pointers: past 32 MiB
    watch = HelperWatch()
    args = ([floats], [], [], (), np.ndarray, heap.GC_HEAD, 6_000_000, None, True, ())
    c = heap._walker.walk(*args, spill.file_prefix())  # type: ignore[union-attr]
    assert watch.seen(), "the helper ran during the walk"
    assert _helper_gone(), "and ended with it"
    # the graph is what the list holds, nothing else
    n = len(floats)
    offsets, targets = _col(c, "offsets"), _col(c, "targets")
    assert offsets.tolist() == [0] + [n] * (n + 1)
    ids = np.empty(n + 1, np.uint64)
    ids[_col(c, "order")] = _col(c, "sorted_ids")
    assert ids[0] == id(floats)
    held = np.sort(np.array([id(f) for f in floats], np.uint64))
    np.testing.assert_array_equal(np.sort(ids[targets]), held)  # (list_traverse goes backwards)
    assert _col(c, "sizes").tolist() == [sys.getsizeof(floats)] + [sys.getsizeof(0.5)] * n


@needs_c
@needs_prefault
def test_a_walk_short_of_memory_fails_cleanly_and_stops_its_helper() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD_SHORT_OF_MEMORY, os.path.dirname(__file__)],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["MemoryError", "True", "True"]


@needs_c
def test_a_bad_graph_prefix_is_refused_or_leaves_the_graph_in_memory() -> None:
    pairs = [(f"s{i}", i + 0.5) for i in range(220_000)]
    args = ([pairs], [], [], (), np.ndarray, heap.GC_HEAD, 0, None, True, ())
    with pytest.raises(TypeError, match="graph_prefix"):
        heap._walker.walk(*args, b"/tmp/x")  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="null"):
        heap._walker.walk(*args, "/tmp/\0x")  # type: ignore[union-attr]
    files = _open_files()
    for prefix in ("/no/such/directory/x-", "/dev/shm/jupyter_memsnap-"):  # tmpfs: refused
        c = heap._walker.walk(*args, prefix)  # type: ignore[union-attr]
        assert not c["offsets"].obj.file_backed and not c["targets"].obj.file_backed
        assert _open_files() == files


CHILD_FULL = """
import json, resource
import numpy as np
from jupyter_memsnap.capture import heap, pywalker
from jupyter_memsnap.model import spill

pairs = [(f"s{i}", i + 0.5) for i in range(220_000)]
same = [pairs[0][1]] * 1_200_000  # references, not rows
resource.setrlimit(resource.RLIMIT_FSIZE, (6 << 20, resource.RLIM_INFINITY))
args = ([pairs, same], [], [], (), np.ndarray, heap.GC_HEAD, 0, None, True, (), spill.file_prefix())
c, p = heap._walker.walk(*args), pywalker.walk(*args)
same = bytes(c["offsets"]) == np.asarray(p["offsets"], np.uint32).tobytes() and bytes(
    c["targets"]
) == np.asarray(p["targets"], np.int32).tobytes()
print(json.dumps([same, c["offsets"].obj.file_backed, c["targets"].obj.file_backed]))
"""


@needs_c
@needs_linux_spill
def test_a_full_file_leaves_the_rest_of_the_graph_in_memory() -> None:
    """Under an RLIMIT_FSIZE of 6 MiB (never crossed: its SIGXFSZ kills a process that does
    not ignore it) the targets (7.4 MB) start in their file and move to memory when it
    cannot grow; the offsets (2.6 MB) stay in theirs."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import signal; signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n" + CHILD_FULL,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True, True, False]


def _col(raw: dict[str, Any], key: str) -> np.ndarray:
    if key == "sizes":  # 4 bytes each, sizes of 4 GiB or more set aside (compiled walker)
        return heap.sizes_of(raw).decode()
    if key == "sorted_ids":  # low halves and runs of high halves (compiled walker)
        return heap.ids_of(raw).decode()
    value = raw[key]
    if value is None:  # the compiled walker's empty column
        return np.zeros(0, COLUMNS[key])
    if isinstance(value, bytes | memoryview):
        return np.frombuffer(value, COLUMNS[key])
    return np.asarray(value)


def _rows(raw: dict[str, Any]) -> dict[int, int]:
    return {
        int(x): int(r) for x, r in zip(_col(raw, "sorted_ids"), _col(raw, "order"), strict=True)
    }


def _edges(raw: dict[str, Any], row: int) -> set[int]:
    off, tgt = _col(raw, "offsets"), _col(raw, "targets")
    return {int(t) for t in tgt[off[row] : off[row + 1]]}


@pytest.mark.parametrize("engine", ["c", "python"])
def test_hidden_edges_are_followed(engine: str) -> None:
    if engine == "c" and not heap.HAVE_COMPILED:
        pytest.skip("compiled walker not built")
    base = np.zeros(1000)
    view = base[10:20]
    hidden_str = "only-in-an-object-array-" + str(id(base))
    objarr = np.array([hidden_str, 7.25], dtype=object)
    walker = heap._walker.walk if engine == "c" else pywalker.walk  # type: ignore[union-attr]
    raw = walker([view, objarr], [], [], (), np.ndarray, heap.GC_HEAD)
    rows = _rows(raw)
    assert id(base) in rows, "a view's .base must be reached"
    assert rows[id(base)] in _edges(raw, rows[id(view)])
    assert id(hidden_str) in rows, "object-array elements must be reached"
    assert rows[id(hidden_str)] in _edges(raw, rows[id(objarr)])
    sizes = _col(raw, "sizes")
    assert sizes[rows[id(base)]] == sys.getsizeof(base)
    assert sizes[rows[id(view)]] == sys.getsizeof(view) < 1000


@pytest.mark.parametrize("engine", ["c", "python"])
def test_python_level_sizeof_is_never_called(engine: str) -> None:
    if engine == "c" and not heap.HAVE_COMPILED:
        pytest.skip("compiled walker not built")
    calls = []

    class Deep:
        def __sizeof__(self) -> int:
            calls.append(1)
            return 10**9

    obj = Deep()
    raw = heap.capture(
        [("d", "variable", obj)],
        seeds=[],
        include_process_roots=False,
        engine=engine,
        collect=False,
    )
    assert calls == []
    row = int(raw.order[np.searchsorted(raw.sorted_ids, np.uint64(id(obj)))])
    assert object.__sizeof__(obj) + heap.GC_HEAD <= raw.sizes[row] < 1000


@pytest.mark.parametrize("engine", ["c", "python"])
def test_a_million_deep_chain_does_not_overflow(engine: str) -> None:
    if engine == "c" and not heap.HAVE_COMPILED:
        pytest.skip("compiled walker not built")
    depth = 1_000_000 if engine == "c" else 200_000
    chain: list[Any] = []
    for _ in range(depth):
        chain = [chain]
    raw = heap.capture(
        [("chain", "variable", chain)],
        seeds=[],
        include_process_roots=False,
        engine=engine,
        collect=False,
    )
    assert len(raw.order) == depth + 1
    assert len(raw.targets) == depth
    assert np.all(np.diff(raw.sorted_ids.astype(np.int64)) > 0), "ids sorted and unique"


def test_excluded_objects_and_what_only_they_reach_are_absent() -> None:
    class Private:
        pass

    holder = Private()
    holder.data = ["machinery-only-" + str(id(Private))]  # type: ignore[attr-defined]
    secret_ids = (id(holder.data), id(holder.data[0]))  # type: ignore[attr-defined]
    shared = "shared-" + str(id(holder))
    holder.shared = shared  # type: ignore[attr-defined]
    gc.collect()
    raw = heap.capture([("shared", "variable", shared)], exclude_types=(Private,), collect=False)
    present = set(raw.sorted_ids.tolist())
    assert id(holder) not in present
    assert not present & set(secret_ids)
    assert id(shared) in present, "an object also reached from a root stays"


def test_walking_keeps_refcounts_unchanged() -> None:
    payload = [object() for _ in range(100)]
    before = [sys.getrefcount(o) for o in payload]
    for engine in ("c", "python") if heap.HAVE_COMPILED else ("python",):
        heap.capture([("p", "variable", payload)], engine=engine, collect=False)
    assert [sys.getrefcount(o) for o in payload] == before


@needs_c
def test_c_and_python_agree_on_sites_and_census() -> None:
    import tracemalloc

    tracemalloc.start(3)
    try:
        made_here = [f"traced-{i}" for i in range(300)]
        roots: list[object] = [made_here]
        args = (roots, [], [], (), np.ndarray, heap.GC_HEAD, 0)
        c = heap._walker.walk(*args, tracemalloc._get_object_traceback)  # type: ignore[union-attr]
        p = pywalker.walk(*args, tracemalloc._get_object_traceback)
    finally:
        tracemalloc.stop()
    _assert_same(c, p)
    np.testing.assert_array_equal(np.frombuffer(c["sites"], np.int32), p["sites"])
    assert c["site_table"] == p["site_table"]
    rows = _rows(c)
    site = np.frombuffer(c["sites"], np.int32)[rows[id(made_here[7])]]
    assert site >= 0, "a string made while tracing has a site"
    filename, lineno = c["site_table"][site][0]
    assert filename == __file__ and lineno > 0
    census = heap._walker.walk(roots, [], [], (), np.ndarray, heap.GC_HEAD, 0, None, False)  # type: ignore[union-attr]
    assert len(census["targets"] or b"") == 0
    np.testing.assert_array_equal(_col(census, "sorted_ids"), _col(c, "sorted_ids"))
    np.testing.assert_array_equal(_col(census, "sizes"), _col(c, "sizes"))


def fresh_str(i: int) -> str:
    """A new string from the allocator (its block starts at the object: found by tracemalloc
    on every version, unlike an instance with a managed dict on 3.11)."""
    return f"fresh-{i}-" + "x" * 40


@needs_interpreter
def test_a_snapshots_own_allocations_are_not_traced_and_tracing_comes_back() -> None:
    import tracemalloc

    from jupyter_memsnap import take

    tracemalloc.start(5)
    try:
        snap = take(roots=[("x", "variable", [1.5])], collect=False)
        assert tracemalloc.get_object_traceback(snap) is None  # 3.11 never finds it (managed dict)
        assert tracemalloc.get_object_traceback(snap.order) is None  # an array made by take
        assert tracemalloc.get_object_traceback(fresh_str(1)) is not None
        seen: list[object] = []
        try:
            with interpreter.untraced():
                seen.append(tracemalloc.get_object_traceback(fresh_str(2)))
                raise RuntimeError
        except RuntimeError:
            pass
        assert seen == [None]
        assert tracemalloc.get_object_traceback(fresh_str(3)) is not None
    finally:
        tracemalloc.stop()


@needs_interpreter
def test_what_is_freed_while_untraced_loses_its_trace() -> None:
    """No phantom memory: traced blocks freed while a snapshot runs leave tracemalloc's table
    (3.10 and 3.11: the pass-throughs that replace its hooks drop their traces)."""
    import tracemalloc

    tracemalloc.start(1)
    try:
        small = [fresh_str(i) for i in range(2000)]  # small blocks: pymalloc's, not malloc's
        each = sys.getsizeof(small[0])
        before = tracemalloc.get_traced_memory()[0]
        with interpreter.untraced():
            del small
        freed = before - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert freed >= 2000 * each


@needs_c
@needs_interpreter
def test_site_lookups_are_not_traced_and_tracing_comes_back() -> None:
    """On every version the tracebacks a traced snapshot builds are not traced themselves,
    the user's sites are tracemalloc's own answer, and tracing goes on afterwards."""
    import tracemalloc

    tracemalloc.start(25)  # tuples of 20 frames or more never come from a free list
    try:
        made = [fresh_str(i) for i in range(200)]
        expected = tracemalloc._get_object_traceback(made[3])  # newest frame first
        raw = heap.capture([("made", "variable", made)], seeds=[], collect=False, sites=True)
        assert raw.sites is not None
        long = [tb for tb in raw.site_table if len(tb) >= 20]
        assert long, "pytest's stack is deep enough"
        assert [tracemalloc.get_object_traceback(tb) for tb in long] == [None] * len(long)
        row = heap._row_finder(raw.id_column, raw.order)(made[3])
        got = raw.site_table[raw.sites[row]]
        assert expected is not None and got == expected
        assert tracemalloc.get_object_traceback(fresh_str(1)) is not None
    finally:
        tracemalloc.stop()
    tracemalloc.start(1)
    try:
        assert tracemalloc.get_object_traceback(fresh_str(1)) is not None
    finally:
        tracemalloc.stop()


def test_a_traced_snapshot_names_sites_by_their_newest_frame() -> None:
    import tracemalloc

    from jupyter_memsnap import take

    tracemalloc.start(4)
    try:
        made = [fresh_str(i) for i in range(50)]
        made.append(fresh_str(-1))  # another traceback, the same newest frame
        newest = [tracemalloc._get_object_traceback(s)[0] for s in made]  # type: ignore[index]
        snap = take(roots=[("made", "variable", made)], collect=False)
    finally:
        tracemalloc.stop()
    assert snap.site_index is not None
    rows = [snap.row(id(s)) for s in made]
    labels = [snap.site_labels[snap.site_index[row]] for row in rows]
    assert labels == [f"{filename}:{lineno}" for filename, lineno in newest]
    assert len({int(snap.site_index[row]) for row in rows}) == 2


def test_the_next_walk_is_sized_from_the_object_count_of_the_last() -> None:
    raw = heap.capture([("x", "variable", [object() for _ in range(1000)])], collect=False)
    assert heap._last_count[0] == len(raw.order) == len(raw.sizes)
