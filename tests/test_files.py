"""Snapshot files: round trips, atomic writes, and every kind of bad file."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
import pathlib
import subprocess
import sys
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import subprocess_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jupyter_memsnap
from jupyter_memsnap.model import files
from jupyter_memsnap.model.files import (
    SnapshotFileError,
    is_snapshot_file,
    load_snapshot,
    newest_snapshot_file,
    save_snapshot,
)
from jupyter_memsnap.model.snapshot import ProcessMemory, Root, Snapshot, TypeTable

FIELDS = {f.name for f in dataclasses.fields(Snapshot)}
TESTS = pathlib.Path(__file__).resolve().parent


# ---------------------------------------------------------------- helpers
def make_snapshot(n: int = 40, seed: int = 0, **overrides: Any) -> Snapshot:
    """A valid snapshot built by hand, with values that need every encoding path: id gaps
    beyond 32 bits, sizes beyond 32 bits, a node with hundreds of references."""
    rng = np.random.default_rng(seed)
    gaps = rng.integers(16, 4096, n).astype(np.uint64)
    if n > 3:
        gaps[n // 2] = np.uint64(1 << 44)  # another memory region
    ids = np.cumsum(gaps, dtype=np.uint64) + np.uint64(0x5555_0000_0000)
    degree = rng.integers(0, 4, n)
    if n > 1:
        degree[1] = 300
    offsets = np.concatenate([[0], np.cumsum(degree)]).astype(np.int64)
    sizes = rng.integers(16, 2000, n).astype(np.int64)
    if n > 2:
        sizes[2] = 5 << 32
    modules = ("builtins", "builtins", "builtins", "pandas.core.frame", "__main__")
    qualnames = ("dict", "list", "str", "DataFrame", "Sample — ünïcode")
    kwargs: dict[str, Any] = dict(
        sorted_ids=ids,
        order=rng.permutation(n).astype(np.uint32),
        type_index=rng.integers(0, len(modules), n).astype(np.int32),
        sizes=sizes,
        offsets=offsets,
        targets=rng.integers(0, max(n, 1), int(offsets[-1])).astype(np.int32),
        type_table=TypeTable(modules, qualnames, np.array([0, 0, 0, 0, 1], dtype=bool)),
        roots=(
            Root("df", "variable", 0 if n else -1, (1,) if n > 1 else ()),
            Root("Out[3]", "output", min(2, n - 1)),
            Root("module données", "module", -1),
            Root("held from C", "unreached", n - 1),
        ),
        native_index=np.array([0, n - 1] if n else [], dtype=np.uint32),
        native_bytes=np.array([800, 1 << 40] if n else [], dtype=np.int64),
        process=ProcessMemory(rss=987_654_321, uss=None, traced=12345, traced_peak=None),
        taken_at=dt.datetime(2025, 3, 4, 5, 6, 7, 891011),
        seconds=0.123456789,
        engine="c",
        label="après df",
        cell=7,
    )
    if "born" in FIELDS:
        kwargs["born"] = rng.integers(0, 9, n).astype(np.int32)
    if "site_index" in FIELDS:
        kwargs["site_index"] = rng.integers(-1, 3, n).astype(np.int32)
        kwargs["site_labels"] = ("In[1] line 2", "pandas/core/frame.py:120", "x.py:1")
    kwargs.update(overrides)
    return Snapshot.from_columns(**kwargs)


def assert_same(a: Snapshot, b: Snapshot) -> None:
    """Every field equal: columns in dtype and values, tables, roots, metadata."""
    plain_a, plain_b = a.columns(), b.columns()
    assert plain_a.keys() == plain_b.keys()
    for name in plain_a:
        x, y = plain_a[name], plain_b[name]
        if isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray), name
            assert x.dtype == y.dtype, name
            assert np.array_equal(x, y), name
        elif isinstance(x, TypeTable):
            assert x.module == y.module
            assert x.qualname == y.qualname
            assert x.is_class.dtype == y.is_class.dtype
            assert np.array_equal(x.is_class, y.is_class)
        else:
            assert x == y, name
            assert type(x) is type(y), name


def write_raw(
    path: pathlib.Path,
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    *,
    allow_pickle: bool = False,
) -> None:
    """A file with chosen metadata and members (valid zip, valid CRCs)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(files.METADATA_MEMBER, json.dumps(meta))
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as m:
                np.lib.format.write_array(m, arr, allow_pickle=allow_pickle)


def encoded(snap: Snapshot) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    return files._encode(snap.columns())


def expect_error(path: pathlib.Path | str, match: str | None = None) -> SnapshotFileError:
    with pytest.raises(SnapshotFileError, match=match) as info:
        load_snapshot(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return info.value


@pytest.fixture(scope="module")
def real_snapshot() -> Snapshot:
    """A snapshot of this test process, with variables of a script."""
    return jupyter_memsnap.take("real", roots=[("data", "variable", list(range(1000)))])


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Snapshot, bytes]:
    snap = make_snapshot(12, seed=3)
    path = tmp_path_factory.mktemp("small") / "small.memsnap"
    save_snapshot(snap, path)
    return snap, path.read_bytes()


# ---------------------------------------------------------------- round trips
def test_round_trip_real_snapshot(real_snapshot: Snapshot, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "real.memsnap"
    save_snapshot(real_snapshot, path)
    loaded = load_snapshot(path)
    assert_same(real_snapshot, loaded)
    assert loaded.types.equals(real_snapshot.types)
    assert loaded.modules.equals(real_snapshot.modules)
    assert loaded.variables.equals(real_snapshot.variables)
    assert loaded.holders.equals(real_snapshot.holders)
    assert loaded.memory.equals(real_snapshot.memory)
    assert np.array_equal(loaded.retained, real_snapshot.retained)
    diff = loaded.diff(real_snapshot)
    assert len(diff.new_rows) == len(diff.freed_rows) == 0


def test_round_trip_is_compact(real_snapshot: Snapshot, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "real.memsnap"
    save_snapshot(real_snapshot, path)
    assert path.stat().st_size / len(real_snapshot) <= 48


@pytest.mark.parametrize("n", [0, 1, 2, 3, 40, 5000])
def test_round_trip_hand_made(n: int, tmp_path: pathlib.Path) -> None:
    snap = make_snapshot(n, seed=n)
    save_snapshot(snap, tmp_path / "s.memsnap")
    loaded = load_snapshot(tmp_path / "s.memsnap")
    assert_same(snap, loaded)
    assert loaded.types.equals(snap.types)


@pytest.mark.parametrize(
    "overrides",
    [
        {"cell": None, "label": ""},
        {"process": ProcessMemory(rss=0, uss=None, traced=None, traced_peak=None)},
        {
            "process": ProcessMemory(
                rss=10**9,
                uss=None,
                traced=None,
                traced_peak=None,
                file_backed=5 * 10**7,
                files=(("numpy", 10**7), ("Python", 6 * 10**6)),
                stacks=81920,
                malloc_free=10**6,
                pymalloc_free=2 * 10**6,
                own=123,
                arrow_pool=0,
            )
        },
        {"taken_at": dt.datetime(2025, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))},
        {"seconds": 0.0, "engine": "python"},
    ],
)
def test_round_trip_metadata_variants(overrides: dict[str, Any], tmp_path: pathlib.Path) -> None:
    snap = make_snapshot(10, **overrides)
    save_snapshot(snap, tmp_path / "s.memsnap")
    assert_same(snap, load_snapshot(tmp_path / "s.memsnap"))


@pytest.mark.skipif("born" not in FIELDS, reason="the model has no optional columns yet")
def test_optional_columns_absent_and_present(tmp_path: pathlib.Path) -> None:
    without = make_snapshot(20, born=None, site_index=None, site_labels=())
    save_snapshot(without, tmp_path / "a.memsnap")
    loaded = load_snapshot(tmp_path / "a.memsnap")
    assert loaded.born is None and loaded.site_index is None
    assert_same(without, loaded)
    with_columns = make_snapshot(20)
    save_snapshot(with_columns, tmp_path / "b.memsnap")
    assert_same(with_columns, load_snapshot(tmp_path / "b.memsnap"))


def test_file_is_a_plain_npz_with_json_metadata(tmp_path: pathlib.Path) -> None:
    snap = make_snapshot(30)
    path = tmp_path / "s.memsnap"
    save_snapshot(snap, path)
    assert is_snapshot_file(path)
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z[files.METADATA_MEMBER])
        assert meta["format"] == files.FORMAT_NAME
        assert meta["version"] == files.FORMAT_VERSION
        assert meta["objects"] == 30
        assert meta["fields"]["label"] == "après df"
        assert z["type_table.is_class"].dtype == bool
        assert meta["columns"]["offsets"]["dtype"] == "<i8", "as format 1 has always had them"
    assert snap.offsets.dtype == load_snapshot(path).offsets.dtype == np.uint32
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        assert infos[0].filename == files.METADATA_MEMBER
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)


def test_offsets_past_32_bits_are_refused_not_wrapped() -> None:
    columns = make_snapshot(5).columns()
    offsets = columns["offsets"].astype(np.int64)
    offsets[-1] = 1 << 32
    with pytest.raises(ValueError, match="too many references"):
        Snapshot.from_columns(**{**columns, "offsets": offsets})


_INT_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]


@st.composite
def int_columns(draw: st.DrawFn) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(_INT_DTYPES)))
    info = np.iinfo(dtype)
    values = st.integers(int(info.min), int(info.max))
    small = st.integers(max(int(info.min), -300), min(int(info.max), 70_000))
    items = draw(st.lists(st.one_of(values, small), max_size=60))
    arr = np.array(items, dtype=dtype)
    if draw(st.booleans()):
        arr = np.sort(arr)  # the delta path
    return arr


@given(int_columns())
@settings(max_examples=300, deadline=None)
def test_integer_codec_is_exact(arr: np.ndarray) -> None:
    spec, parts = files._encode_column("col", arr)
    members = {f"col.{p}" if p else "col": a for p, a in parts.items()}
    buffer = io.BytesIO()
    meta = {"format": files.FORMAT_NAME, "version": 1, "objects": 0, "edges": 0}
    meta["columns"] = {"col": spec}
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, part in members.items():
            with zf.open(name + ".npy", "w") as m:
                np.lib.format.write_array(m, part)
    with zipfile.ZipFile(buffer) as zf:
        back = files._Reader("mem", zf, meta).column("col")
    assert back.dtype == arr.dtype
    assert np.array_equal(back, arr)


# ---------------------------------------------------------------- atomic writes
def _fail_on_third_member(
    monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> Callable[..., Any]:
    real = np.lib.format.write_array
    calls: list[int] = []

    def failing(fp: Any, array: np.ndarray, *args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 3:
            fp.write(b"\x00" * 100)  # half a member is on disk
            raise error
        real(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing)
    return failing


@pytest.mark.parametrize(
    "error",
    [OSError(28, "No space left on device"), RuntimeError("boom"), KeyboardInterrupt()],
)
def test_failure_mid_write_leaves_no_file(
    error: BaseException, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_on_third_member(monkeypatch, error)
    expected = SnapshotFileError if isinstance(error, OSError) else type(error)
    with pytest.raises(expected):
        save_snapshot(make_snapshot(), tmp_path / "s.memsnap")
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_write_keeps_the_old_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.memsnap"
    old = make_snapshot(seed=1)
    save_snapshot(old, path)
    _fail_on_third_member(monkeypatch, OSError(28, "No space left on device"))
    with pytest.raises(SnapshotFileError, match="No space left on device"):
        save_snapshot(make_snapshot(seed=2), path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["s.memsnap"]
    assert_same(old, load_snapshot(path))


def test_save_fsyncs_before_renaming(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append(f"replace {pathlib.Path(src).parent == tmp_path}")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    save_snapshot(make_snapshot(), tmp_path / "s.memsnap")
    assert events[:2] == ["fsync", "replace True"]  # then the directory's fsync


_CRASH = """
import os, sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_files import make_snapshot
from jupyter_memsnap.model.files import save_snapshot
real, calls = np.lib.format.write_array, []
def crash(fp, array, *a, **k):
    calls.append(1)
    if len(calls) == 3:
        fp.write(b"\\x00" * 100)
        fp.flush()
        os._exit(9)  # the process dies mid-write: no cleanup runs
    real(fp, array, *a, **k)
np.lib.format.write_array = crash
save_snapshot(make_snapshot(seed=2), sys.argv[1])
"""


def test_crash_mid_write_never_leaves_a_half_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "s.memsnap"
    old = make_snapshot(seed=1)
    save_snapshot(old, path)
    script = _CRASH.format(tests=str(TESTS))
    proc = subprocess.run(
        [sys.executable, "-c", script, str(path)], env=subprocess_env(), check=False
    )
    assert proc.returncode == 9
    assert_same(old, load_snapshot(path))  # the real name still holds the old, whole file
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "s.memsnap"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".s.memsnap.")
    assert newest_snapshot_file(tmp_path) == str(path)  # the temporary file is ignored


def test_save_errors_are_one_line(tmp_path: pathlib.Path) -> None:
    snap = make_snapshot()
    for target in (tmp_path / "missing" / "s.memsnap", tmp_path):
        with pytest.raises(SnapshotFileError) as info:
            save_snapshot(snap, target)
        assert "\n" not in str(info.value) and str(target) in str(info.value)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- bad files
def test_empty_file(tmp_path: pathlib.Path) -> None:
    (tmp_path / "e.memsnap").write_bytes(b"")
    expect_error(tmp_path / "e.memsnap", "empty file")


def test_truncated_files(small_file: tuple[Snapshot, bytes], tmp_path: pathlib.Path) -> None:
    data = small_file[1]
    path = tmp_path / "t.memsnap"
    for size in sorted({1, 3, 4, 10, 30, 41, 42, 100, len(data) // 2, len(data) - 22,
                        len(data) - 1}):  # fmt: skip
        path.write_bytes(data[:size])
        expect_error(path)


def test_corrupted_byte_in_column_data(
    small_file: tuple[Snapshot, bytes], tmp_path: pathlib.Path
) -> None:
    data = bytearray(small_file[1])
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("targets.values.npy")
    position = info.header_offset + 30 + len(info.filename) + len(info.extra) + 130
    data[position] ^= 0x01
    (tmp_path / "c.memsnap").write_bytes(bytes(data))
    expect_error(tmp_path / "c.memsnap", "CRC")


@pytest.mark.once
@pytest.mark.slow
def test_every_single_byte_flip_is_caught_or_harmless(
    small_file: tuple[Snapshot, bytes], tmp_path: pathlib.Path
) -> None:
    snap, data = small_file
    path = tmp_path / "f.memsnap"
    loaded = 0
    for position in range(len(data)):
        mutated = bytearray(data)
        mutated[position] ^= 0xFF
        path.write_bytes(bytes(mutated))
        try:
            result = load_snapshot(path)
        except SnapshotFileError:
            continue
        assert_same(snap, result)  # only zip bookkeeping nobody reads was hit
        loaded += 1
    assert loaded < len(data) // 5


@st.composite
def mutations(draw: st.DrawFn, size: int) -> list[tuple[str, int, Any]]:
    steps = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        position = draw(st.integers(0, size - 1))
        if kind == "flip":
            steps.append((kind, position, draw(st.integers(1, 255))))
        elif kind == "insert":
            steps.append((kind, position, draw(st.binary(min_size=1, max_size=8))))
        elif kind == "delete":
            steps.append((kind, position, draw(st.integers(1, 16))))
        else:
            steps.append((kind, position, None))
    return steps


def _mutate(data: bytes, steps: list[tuple[str, int, Any]]) -> bytes:
    out = bytearray(data)
    for kind, position, arg in steps:
        position = min(position, max(len(out) - 1, 0))
        if kind == "flip" and out:
            out[position] ^= arg
        elif kind == "insert":
            out[position:position] = arg
        elif kind == "delete":
            del out[position : position + arg]
        elif kind == "truncate":
            del out[position:]
    return bytes(out)


@given(data=st.data())
@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_fuzzed_file_loads_equal_or_raises_snapshot_file_error(
    data: st.DataObject, small_file: tuple[Snapshot, bytes], tmp_path: pathlib.Path
) -> None:
    snap, original = small_file
    steps = data.draw(mutations(len(original)))
    path = tmp_path / "fuzz.memsnap"
    path.write_bytes(_mutate(original, steps))
    try:
        result = load_snapshot(path)
    except SnapshotFileError as e:
        message = str(e)
    else:
        assert_same(snap, result)
        return
    assert "\n" not in message


_COLUMN_LENGTHS = ["sorted_ids", "order", "type_index", "sizes", "offsets", "targets"]


@given(
    column=st.sampled_from([*_COLUMN_LENGTHS, "native_index", "native_bytes"]),
    index=st.integers(0, 1000),
    value=st.integers(-(1 << 63), (1 << 64) - 1),
)
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_well_formed_file_with_a_wrong_value_is_valid_or_refused(
    column: str, index: int, value: int, tmp_path: pathlib.Path
) -> None:
    """Checksums pass here (the writer wrote the bad value): validation must catch it."""
    snap = make_snapshot(12, seed=3)
    columns = snap.columns()
    arr = columns[column].astype(files.CORE_DTYPES[column])
    if not len(arr):
        return
    info = np.iinfo(arr.dtype)
    arr[index % len(arr)] = min(max(value, int(info.min)), int(info.max))
    path = tmp_path / "v.memsnap"
    files.write_columns({**columns, column: arr}, path)
    try:
        result = load_snapshot(path)
    except SnapshotFileError:
        return
    result_columns = result.columns()
    assert np.array_equal(result_columns[column], arr)
    assert_same(snap.replace(**{column: arr}), result)
    result.types  # noqa: B018 - a snapshot that loads can be used
    result.retained  # noqa: B018


def _save_modified(
    tmp_path: pathlib.Path, change: Callable[[dict[str, Any]], None]
) -> pathlib.Path:
    meta, arrays = encoded(make_snapshot(12, seed=3))
    change(meta)
    path = tmp_path / "m.memsnap"
    write_raw(path, meta, arrays)
    return path


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda m: m.update(version=2), "newer jupyter_memsnap"),
        (lambda m: m.update(version=999), "format version 999"),
        (lambda m: m.update(version=0), "unknown snapshot format version"),
        (lambda m: m.update(version="1"), "unknown snapshot format version"),
        (lambda m: m.pop("version"), "unknown snapshot format version"),
        (lambda m: m.update(format="someone.else"), "not a jupyter_memsnap snapshot"),
        (lambda m: m.update(objects=13), "corrupted"),
        (lambda m: m.update(objects=-1), "corrupted"),
        (lambda m: m.update(edges=1), "corrupted"),
        (lambda m: m["columns"]["sorted_ids"].update(dtype="<i8"), "dtype"),
        (lambda m: m["columns"]["order"].update(dtype="|O"), "dtype"),
        (lambda m: m["columns"]["order"].update(codec="pickle"), "codec"),
        (lambda m: m["columns"]["targets"].update(width=3), "encoding"),
        (lambda m: m["columns"]["sorted_ids"].update(start=-5), "encoding"),
        (lambda m: m["columns"].pop("targets"), "missing targets"),
        (lambda m: m["roots"]["rows"][0].__setitem__(2, 12), "root"),
        (lambda m: m["roots"]["rows"][0].__setitem__(3, [99]), "root"),
        (lambda m: m["roots"].update(rows="x"), "roots"),
        (lambda m: m["type_table"]["module"].pop(), "type table"),
        (lambda m: m["process"].update(rss=None), "process memory"),
        (lambda m: m["process"].update(rss="big"), "process memory"),
        (lambda m: m["fields"].update(taken_at="yesterday"), "taken_at"),
        (lambda m: m["fields"].update(taken_at={"$datetime": "not a date"}), "corrupted"),
        (lambda m: m["fields"].update(label=3), "label"),
        (lambda m: m["fields"].update(cell="7"), "cell"),
        (lambda m: m.update(columns=[]), "columns"),
    ],
)
def test_inconsistent_metadata(
    change: Callable[[dict[str, Any]], None], match: str, tmp_path: pathlib.Path
) -> None:
    expect_error(_save_modified(tmp_path, change), match)


def _bad(snap: Snapshot, **changes: Any) -> dict[str, Any]:
    """A snapshot's columns with some changed: what a file may hold that no snapshot does."""
    return {**snap.columns(), **changes}


@pytest.mark.parametrize(
    ("name", "make", "match"),
    [
        ("offsets not monotone", lambda s: _bad(s, offsets=s.offsets[::-1].copy()), "offsets"),
        (
            "offsets end early",
            lambda s: _bad(s, offsets=np.minimum(s.offsets, s.offsets[-1] - 1)),
            "offsets",
        ),
        ("target out of range", lambda s: _bad(s, targets=s.targets + 12), "targets"),
        ("negative target", lambda s: _bad(s, targets=s.targets - 1000), "targets"),
        (
            "order not a permutation",
            lambda s: _bad(s, order=np.zeros(12, dtype=np.uint32)),
            "permutation",
        ),
        ("ids not increasing", lambda s: _bad(s, sorted_ids=s.sorted_ids[::-1].copy()), "ids"),
        (
            "duplicate ids",
            lambda s: _bad(s, sorted_ids=np.repeat(s.sorted_ids[:6], 2)),
            "ids",
        ),
        ("type out of range", lambda s: _bad(s, type_index=s.type_index + 5), "type_index"),
        ("negative size", lambda s: _bad(s, sizes=-s.sizes), "sizes"),
        ("column too short", lambda s: _bad(s, sizes=s.sizes[:-1].copy()), "length"),
        ("wrong dtype", lambda s: _bad(s, sizes=s.sizes.astype(np.int32)), "dtype"),
        (
            "native row out of range",
            lambda s: _bad(s, native_index=s.native_index + 100),
            "native_index",
        ),
        (
            "native lengths differ",
            lambda s: _bad(s, native_bytes=s.native_bytes[:1].copy()),
            "native_bytes",
        ),
        (
            "root row out of range",
            lambda s: _bad(s, roots=(Root("x", "variable", 50),)),
            "root",
        ),
        (
            "type table lengths differ",
            lambda s: _bad(s, type_table=TypeTable(("a",), ("b", "c"), np.zeros(2, bool))),
            "type table",
        ),
    ],
)
def test_well_formed_but_inconsistent_columns(
    name: str, make: Callable[[Snapshot], dict[str, Any]], match: str, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "bad.memsnap"
    files.write_columns(make(make_snapshot(12, seed=3)), path)
    expect_error(path, match)


def test_member_tampering(tmp_path: pathlib.Path) -> None:
    snap = make_snapshot(12, seed=3)
    meta, arrays = encoded(snap)
    path = tmp_path / "t.memsnap"
    cases: list[tuple[dict[str, np.ndarray], str]] = [
        ({k: v for k, v in arrays.items() if k != "targets.values"}, "missing"),
        ({**arrays, "order.values": arrays["order.values"].astype(np.uint64)}, "size|match"),
        ({**arrays, "order.values": arrays["order.values"][:-1]}, "size|match"),
        ({**arrays, "order.values": arrays["order.values"].reshape(3, 4)}, "match"),
        ({**arrays, "order.values": np.zeros_like(arrays["order.values"])}, "permutation"),
    ]
    for members, match in cases:
        write_raw(path, meta, members)
        expect_error(path, match)


class _Evil:
    """Unpickling this would create a file: loading must never unpickle."""

    marker = pathlib.Path("/nonexistent")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (pathlib.Path.touch, (self.marker,))


def test_pickled_members_are_never_loaded(tmp_path: pathlib.Path) -> None:
    _Evil.marker = tmp_path / "pwned"
    meta, arrays = encoded(make_snapshot(12, seed=3))
    evil = np.empty(5, dtype=object)
    evil[:] = [_Evil() for _ in range(5)]
    path = tmp_path / "evil.memsnap"
    write_raw(path, meta, {**arrays, "type_table.is_class": evil}, allow_pickle=True)
    expect_error(path)
    meta["columns"]["type_table.is_class"]["dtype"] = "|O"
    write_raw(path, meta, {**arrays, "type_table.is_class": evil}, allow_pickle=True)
    expect_error(path, "dtype")
    assert not _Evil.marker.exists()


def test_other_programs_files(tmp_path: pathlib.Path) -> None:
    other = tmp_path / "other.npz"
    np.savez(other, a=np.arange(10), b=np.ones((2, 2)))
    expect_error(other, r"not a jupyter_memsnap snapshot file \(a numpy .npz archive")
    compressed = tmp_path / "compressed.npz"
    np.savez_compressed(compressed, x=np.arange(5))
    expect_error(compressed, "not a jupyter_memsnap snapshot file")
    plain_zip = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain_zip, "w") as zf:
        zf.writestr("readme.txt", "hello")
    expect_error(plain_zip, r"\(a zip without")
    text = tmp_path / "notes.txt"
    text.write_text("x = 1\n" * 100)
    expect_error(text, "a text file")
    png = tmp_path / "image.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    expect_error(png, "a PNG image")
    npy = tmp_path / "array.npy"
    np.save(npy, np.arange(3))
    expect_error(npy, "a numpy .npy file")
    binary = tmp_path / "random.bin"
    binary.write_bytes(np.random.default_rng(0).bytes(5000))
    expect_error(binary, "not a jupyter_memsnap snapshot file")
    not_json = tmp_path / "notjson.memsnap"
    with zipfile.ZipFile(not_json, "w") as zf:
        zf.writestr(files.METADATA_MEMBER, b"\xff\xfe not json")
    expect_error(not_json, "bad metadata")
    json_list = tmp_path / "list.memsnap"
    with zipfile.ZipFile(json_list, "w") as zf:
        zf.writestr(files.METADATA_MEMBER, "[1, 2, 3]")
    expect_error(json_list, "metadata is not a JSON object")


def test_paths_that_are_not_files(tmp_path: pathlib.Path) -> None:
    expect_error(tmp_path, "is a directory")
    expect_error(tmp_path / "missing.memsnap", "No such file")
    expect_error(tmp_path / "no" / "such" / "dir.memsnap", "No such file")
    (tmp_path / "afile").write_text("x")
    expect_error(tmp_path / "afile" / "inside.memsnap", "Not a directory")


def test_not_a_regular_file() -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    expect_error("/dev/zero", "not a regular file")


def test_permission_denied_reading(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root can read anything, so the refusal is injected where the file is opened."""
    path = tmp_path / "s.memsnap"
    save_snapshot(make_snapshot(), path)

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(files, "open", denied, raising=False)
    expect_error(path, "cannot read: Permission denied")


def test_permission_denied_writing(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.os, "open", denied)
    with pytest.raises(SnapshotFileError, match=r"cannot write .*: Permission denied"):
        save_snapshot(make_snapshot(), tmp_path / "s.memsnap")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(Snapshot, "save"), reason="Snapshot.save/load not added yet")
def test_snapshot_methods(tmp_path: pathlib.Path) -> None:
    snap = make_snapshot()
    snap.save(tmp_path / "s.memsnap")
    assert_same(snap, Snapshot.load(tmp_path / "s.memsnap"))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "s.memsnap"
    save_snapshot(make_snapshot(), path)
    path.chmod(0)
    expect_error(path, "Permission denied")


# ---------------------------------------------------------------- directories
def test_newest_snapshot_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SnapshotFileError, match="no snapshot files"):
        newest_snapshot_file(tmp_path)
    for i, name in enumerate(["b.memsnap", "a.memsnap", "c_no_suffix"]):
        save_snapshot(make_snapshot(seed=i), tmp_path / name)
        os.utime(tmp_path / name, ns=(10**18 + i * 10**9, 10**18 + i * 10**9))
    (tmp_path / "newer.txt").write_text("not a snapshot")
    (tmp_path / ".hidden.memsnap").write_bytes((tmp_path / "a.memsnap").read_bytes())
    assert newest_snapshot_file(tmp_path) == str(tmp_path / "c_no_suffix")
    os.utime(tmp_path / "a.memsnap", ns=(2 * 10**18, 2 * 10**18))
    assert newest_snapshot_file(tmp_path) == str(tmp_path / "a.memsnap")
    assert not is_snapshot_file(tmp_path / "newer.txt")
    assert not is_snapshot_file(tmp_path / "missing")
    with pytest.raises(SnapshotFileError, match="cannot list"):
        newest_snapshot_file(tmp_path / "missing")
