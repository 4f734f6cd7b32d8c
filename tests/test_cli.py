"""``python -m jupyter_memsnap show|diff``: real subprocesses, real files, every bad file."""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
from conftest import subprocess_env

import jupyter_memsnap
from jupyter_memsnap.model.files import load_snapshot, save_snapshot
from jupyter_memsnap.views.select import grouped


def run(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_memsnap", *map(str, args)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], status: int) -> str:
    assert proc.returncode == status, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    """Two snapshots of this process, before and after making a few objects."""
    base = tmp_path_factory.mktemp("cli")
    holder: dict[str, object] = {}
    roots = [("holder", "variable", holder)]
    before = jupyter_memsnap.take("before", roots=roots)
    holder["payload"] = [np.arange(1000) for _ in range(50)]
    holder["words"] = [f"word-{i}" for i in range(2000)]
    after = jupyter_memsnap.take("after", roots=roots)
    paths = {"a": base / "a.memsnap", "b": base / "b.memsnap"}
    save_snapshot(before, paths["a"])
    save_snapshot(after, paths["b"])
    os.utime(paths["a"], ns=(10**18, 10**18))
    os.utime(paths["b"], ns=(2 * 10**18, 2 * 10**18))
    return paths


# ---------------------------------------------------------------- show
def test_show_table(files: dict[str, pathlib.Path]) -> None:
    proc = run("show", files["b"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{files['b']}: 'after' ")
    assert "objects" in lines[0] and "top 20 of" in lines[0] and "by type" in lines[0]
    assert lines[1].split() == list(grouped(load_snapshot(files["b"]), "type").columns)
    assert len(lines) == 2 + 20
    assert lines[2].split()[-1].endswith("%")


@pytest.mark.parametrize("by", ["type", "variable", "module", "holder"])
def test_show_by_as_csv_matches_the_view(files: dict[str, pathlib.Path], by: str) -> None:
    proc = run("show", files["b"], "--by", by, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    expected = grouped(load_snapshot(files["b"]), by).reset_index(drop=True)
    if not len(expected):
        assert proc.stdout.strip() == ",".join(expected.columns)
        return
    got = pd.read_csv(io.StringIO(proc.stdout), keep_default_na=False)
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)  # csv and json: every row unless --top
    for col in expected.columns:
        if pd.api.types.is_numeric_dtype(expected[col]):
            assert np.allclose(got[col].to_numpy(float), expected[col].to_numpy(float)), col
        else:
            assert got[col].astype(str).tolist() == expected[col].astype(str).tolist(), col


def test_show_top_and_filter(files: dict[str, pathlib.Path]) -> None:
    proc = run("show", files["b"], "--top", "3", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == 3 and set(rows[0]) >= {"type", "module", "count", "size", "share"}
    assert isinstance(rows[0]["size"], int)
    proc = run("show", files["b"], "--filter", "^nd", "--top", "5")
    assert proc.returncode == 0, proc.stderr
    body = proc.stdout.splitlines()[2:]
    assert body and all(line.split()[0].startswith("nd") for line in body)
    proc = run("show", files["b"], "--by", "variable")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[2].split()[:2] == ["holder", "dict"]


def test_show_filter_matching_nothing(files: dict[str, pathlib.Path]) -> None:
    proc = run("show", files["b"], "--filter", "no-such-type-anywhere")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1:] == ["(no rows)"]


def test_show_directory_picks_the_newest(files: dict[str, pathlib.Path]) -> None:
    directory = files["a"].parent
    proc = run("show", directory, "--top", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{files['b']}: 'after'")


def test_show_empty_directory(tmp_path: pathlib.Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    line = assert_one_line_error(run("show", tmp_path), 1)
    assert "no snapshot files" in line


# ---------------------------------------------------------------- diff
def test_diff_table(files: dict[str, pathlib.Path]) -> None:
    proc = run("diff", files["a"], files["b"], "--top", "5")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{files['a']} -> {files['b']}: objects +")
    assert "largest changes first" in lines[0]
    assert lines[1].split()[:2] == ["type", "module"]
    assert len(lines) == 2 + 5


def test_diff_json_and_csv(files: dict[str, pathlib.Path]) -> None:
    a, b = load_snapshot(files["a"]), load_snapshot(files["b"])
    expected = b.diff(a).types
    proc = run("diff", files["a"], files["b"], "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == len(expected)
    assert [r["type"] for r in rows] == expected["type"].tolist()
    ndarray = next(r for r in rows if r["type"] == "ndarray")
    assert ndarray["count_diff"] >= 50
    proc = run("diff", files["a"], files["b"], "--by", "variable", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    got = pd.read_csv(io.StringIO(proc.stdout))
    assert got["name"].tolist() == ["holder"]


# ---------------------------------------------------------------- help and usage errors
@pytest.mark.parametrize("command", [[], ["show"], ["diff"], ["demo"]])
def test_help(command: list[str]) -> None:
    proc = run(*command, "--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: python -m jupyter_memsnap")
    if command in (["show"], ["diff"]):
        for option in ("--by", "--top", "--filter", "--format"):
            assert option in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "required: COMMAND"),
        (["nonsense"], "invalid choice"),
        (["show"], "required: FILE"),
        (["diff", "x"], "required: FILE_B"),
        (["show", "f", "--top", "0"], "--top: must be a positive integer"),
        (["show", "f", "--top", "many"], "--top: must be a positive integer"),
        (["show", "f", "--by", "colour"], "--by: invalid choice"),
        (["diff", "a", "b", "--by", "holder"], "--by: invalid choice"),
        (["show", "f", "--format", "xml"], "--format: invalid choice"),
        (["show", "f", "--bogus"], "unrecognized arguments"),
        (["demo", "--rows", "0"], "--rows must be a positive integer"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    assert message in assert_one_line_error(run(*args), 2)


def test_bad_filter_is_a_usage_error(files: dict[str, pathlib.Path]) -> None:
    line = assert_one_line_error(run("show", files["a"], "--filter", "("), 2)
    assert "--filter '(' is not a valid pattern" in line


@pytest.mark.skipif("born" not in dir(jupyter_memsnap.Snapshot), reason="no cell grouping yet")
def test_grouping_without_its_data(files: dict[str, pathlib.Path]) -> None:
    line = assert_one_line_error(run("show", files["a"], "--by", "cell"), 1)
    assert "--by cell" in line


# ---------------------------------------------------------------- bad files
def _bad_files(base: pathlib.Path, good: bytes) -> dict[str, pathlib.Path]:
    out: dict[str, pathlib.Path] = {}

    def put(name: str, data: bytes) -> None:
        out[name] = base / name
        out[name].write_bytes(data)

    put("empty.memsnap", b"")
    put("truncated.memsnap", good[: len(good) // 2])
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x40
    put("corrupted.memsnap", bytes(flipped))
    put("text.memsnap", b"just some notes\n")
    put("image.png", b"\x89PNG\r\n\x1a\n" + bytes(200))
    other = io.BytesIO()
    np.savez(other, a=np.arange(5))
    put("other.npz", other.getvalue())
    future = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(future, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "memsnap.json":
                meta = json.loads(data)
                meta["version"] = 7
                data = json.dumps(meta).encode()
            dst.writestr(info.filename, data)
    put("future.memsnap", future.getvalue())
    (base / "a_directory").mkdir()
    out["a_directory"] = base / "a_directory"
    out["missing"] = base / "missing.memsnap"
    out["in_missing_directory"] = base / "nowhere" / "x.memsnap"
    out["below_a_file"] = base / "text.memsnap" / "x.memsnap"
    return out


BAD = {
    "empty.memsnap": "empty file",
    "truncated.memsnap": "corrupted",
    "corrupted.memsnap": "corrupted",
    "text.memsnap": "not a jupyter_memsnap snapshot file (a text file)",
    "image.png": "(a PNG image)",
    "other.npz": "(a numpy .npz archive without memsnap.json)",
    "future.memsnap": "newer jupyter_memsnap (format version 7",
    "a_directory": "no snapshot files",  # show accepts directories
    "missing": "No such file or directory",
    "in_missing_directory": "No such file or directory",
    "below_a_file": "Not a directory",
}


@pytest.fixture(scope="module")
def bad_files(
    files: dict[str, pathlib.Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, pathlib.Path]:
    return _bad_files(tmp_path_factory.mktemp("bad"), files["a"].read_bytes())


@pytest.mark.parametrize("name", list(BAD))
def test_show_bad_file(name: str, bad_files: dict[str, pathlib.Path]) -> None:
    line = assert_one_line_error(run("show", bad_files[name]), 1)
    assert BAD[name] in line
    assert str(bad_files[name]) in line


@pytest.mark.parametrize("name", ["truncated.memsnap", "missing"])
def test_diff_bad_file(
    name: str, files: dict[str, pathlib.Path], bad_files: dict[str, pathlib.Path]
) -> None:
    line = assert_one_line_error(run("diff", files["a"], bad_files[name]), 1)
    assert str(bad_files[name]) in line
    line = assert_one_line_error(run("diff", bad_files[name], files["b"], "--format", "csv"), 1)
    assert str(bad_files[name]) in line


def test_diff_of_a_directory_is_refused(files: dict[str, pathlib.Path]) -> None:
    line = assert_one_line_error(run("diff", files["a"].parent, files["b"]), 1)
    assert "is a directory" in line


# ---------------------------------------------------------------- demo
def test_demo_runs() -> None:
    proc = run("demo", "--rows", "2000")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
