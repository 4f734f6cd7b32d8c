"""Snapshot files: ``save_snapshot(snap, path)`` and ``load_snapshot(path)``.

Format, version 1
=================

A snapshot file is a standard uncompressed numpy ``.npz`` (a zip archive, every member
``ZIP_STORED``); ``np.load(path)`` and ``unzip -l`` open it. The suggested suffix is
``.memsnap``. Its members:

- ``memsnap.json``, always first (so the file's first 42 bytes identify it): UTF-8 JSON with
  ``format`` (``"jupyter_memsnap.snapshot"``), ``version`` (1), the writer, the number of
  objects and edges, how every column is encoded, the type table's names, the roots, process
  memory, the label, cell, timestamps and engine, and any further field of ``Snapshot``
  that is plain data (strings, numbers, tuples of them).
- one ``.npy`` member per stored array (``sorted_ids.values.npy``, ``targets.values.npy``,
  ``type_table.is_class.npy`` ...). Every numpy field of the snapshot that is not None is
  saved, including optional columns added later (``born``, ``site_index``).

Integer columns are packed losslessly, then restored to their exact dtype on load: a column
that never decreases (``sorted_ids``, ``offsets``) is stored as differences from its first
value (ids become gaps between addresses, offsets become out-degrees), any other as the
difference from its minimum; the result goes into the narrowest unsigned width (1, 2, 4 or
8 bytes) that minimises the total, with the few values too large for it listed separately
(``.escape_rows`` / ``.escape_values`` members). Booleans and floats are stored as they are.

Guarantees
----------
- Loading never executes anything from the file: the metadata is JSON, ``.npy`` headers are
  parsed with ``numpy.lib.format`` (a literal parser) and object arrays are refused, so no
  pickle is ever read. ``np.load`` is not used: sizes are checked against the metadata
  before anything is read, so a corrupted length cannot make the reader allocate memory the
  file does not back.
- Every member carries zip's CRC-32, checked when the member is read, so any changed byte
  of the metadata or of the column data is detected; damage to zip bookkeeping that does not
  change what is read can go unnoticed, which is harmless. Everything is then validated:
  dtypes and lengths, ``offsets`` monotone from 0 to ``len(targets)``, row numbers in range,
  ``order`` a permutation, ``sorted_ids`` strictly increasing, roots' rows in range. A bad
  file raises :class:`SnapshotFileError` with one line; nothing else escapes and no partly
  loaded snapshot is returned.
- A newer format version is refused with a message saying so. Fields of ``Snapshot`` that
  the file lacks take their default (older files load into a newer model); fields the file
  has and the running model does not know are ignored.
- Writing is atomic: a temporary file in the same directory, written, flushed and
  ``fsync``-ed, is renamed over the destination with ``os.replace`` (then the directory is
  synced where the platform allows). A crash or an error mid-write leaves the old file (or
  none) under the real name and removes the temporary file.

Why this container (``benchmarks/bench_files.py``: ``take()`` of the synthetic
data-notebook heap of ``benchmarks/heap_builder.py``, 1.1 M and 3.1 M objects, 2 cores)
-------------------------------------------------------------------------------------
- ``np.savez`` of the raw columns: 37.7 bytes/object (1.4 references per object), saves in
  ~0.15 s per million objects, but it is 32 bytes plus 4 per reference: at 4 references
  per object (a small script heap with a few lists measured 3.9) it is at the 48 B budget.
- ``np.savez_compressed`` (zlib level 6): 5.4 bytes/object but 4-6 s to save one million
  objects. The packed columns with zlib level 1: 3.9 bytes/object, 0.5-0.6 s per million,
  0.7-1.4 s at 3 M: no margin left in the 1 s budget, and these heaps are unusually regular
  (real ones compress less). zstd/lz4 are not installed; pyarrow is not a dependency and
  would only be another container for the same arrays.
- the packed columns above in an uncompressed npz (this format): 14-15 bytes/object on that
  heap, 20.6 on a module-only interpreter heap; save 0.3-0.6 s and load 0.2-0.6 s at 3.1 M
  objects on a busy machine, validation included. A hand-made container read the same
  bytes ~0.05 s per million objects faster, not worth losing ``np.load``/``unzip``
  compatibility and zip's per-member CRC-32.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import json
import math
import os
import secrets
import stat
import zipfile
from collections.abc import Iterable
from typing import Any, NoReturn, TypeGuard

import numpy as np

from .snapshot import ProcessMemory, Root, Snapshot, TypeTable

FORMAT_NAME = "jupyter_memsnap.snapshot"
FORMAT_VERSION = 1
SUFFIX = ".memsnap"
METADATA_MEMBER = "memsnap.json"
_ZIP_MAGIC = b"PK\x03\x04"
_MAX_METADATA = 1 << 30  # bytes of JSON: far above any real snapshot's
_MAX_NPY_HEADER = 1 << 16

# dtypes of the core columns in a file (the model keeps offsets in 4 bytes, see below)
CORE_DTYPES: dict[str, np.dtype[Any]] = {
    "sorted_ids": np.dtype(np.uint64),
    "order": np.dtype(np.uint32),
    "type_index": np.dtype(np.int32),
    "sizes": np.dtype(np.int64),
    "offsets": np.dtype(np.int64),
    "targets": np.dtype(np.int32),
    "native_index": np.dtype(np.uint32),
    "native_bytes": np.dtype(np.int64),
    "type_table.is_class": np.dtype(np.bool_),
}
# columns the model keeps narrower than the file stores them
_STORED_DTYPES: dict[str, np.dtype[Any]] = {
    "type_index": CORE_DTYPES["type_index"],
    "offsets": CORE_DTYPES["offsets"],
    "born": np.dtype(np.int32),
    "site_index": np.dtype(np.int32),
}
_UNSIGNED: dict[int, np.dtype[Any]] = {
    1: np.dtype(np.uint8),
    2: np.dtype(np.uint16),
    4: np.dtype(np.uint32),
    8: np.dtype(np.uint64),
}
_SPECIAL_FIELDS = ("type_table", "roots", "process")
_COMPACT = {"id_column": ("sorted_ids",), "size_column": ("sizes",)}
"""The model's compact fields, and the plain columns the file stores for them."""


class SnapshotFileError(Exception):
    """A snapshot file that cannot be read or written. The message is one line and names the
    file."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


# ====================================================================== writing
def save_snapshot(snap: Snapshot, path: str | os.PathLike[str]) -> None:
    """Write ``snap`` to ``path`` atomically (see the module docstring for the format)."""
    write_columns(snap.columns(), path)


def write_columns(columns: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a snapshot given as :meth:`Snapshot.columns` (plain arrays and fields)."""
    path = os.fspath(path)
    meta, arrays = _encode(columns)
    payload = json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if os.path.isdir(path):
        raise SnapshotFileError(f"cannot write {path}: it is a directory")
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as e:
        raise SnapshotFileError(f"cannot write {path}: {_reason(e)}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            _write_archive(f, payload, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise SnapshotFileError(f"cannot write {path}: {_reason(e)}") from e
        raise
    _sync_directory(directory)


def _write_archive(f: Any, payload: bytes, arrays: dict[str, np.ndarray]) -> None:
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(METADATA_MEMBER, payload)
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def _sync_directory(directory: str) -> None:
    """Make the rename durable too (POSIX); harmless where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _encode(parts: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and the arrays to store."""
    columns: dict[str, np.ndarray] = {}
    fields: dict[str, Any] = {}
    for name, value in parts.items():
        if name in _SPECIAL_FIELDS:
            continue
        if isinstance(value, np.ndarray):
            columns[name] = value.astype(_STORED_DTYPES.get(name, value.dtype), copy=False)
        else:
            fields[name] = _to_json(value, name)
    table: dict[str, Any] = {}
    for name, value in _public_fields(parts["type_table"]):
        if isinstance(value, np.ndarray):
            columns[f"type_table.{name}"] = value
        else:
            table[name] = _to_json(value, f"type_table.{name}")
    root_fields = [f.name for f in dataclasses.fields(Root)]
    roots = [[_to_json(getattr(r, n), "roots") for n in root_fields] for r in parts["roots"]]
    process = {
        f.name: _to_json(getattr(parts["process"], f.name), "process")
        for f in dataclasses.fields(ProcessMemory)
    }
    from .. import __version__

    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "writer": f"jupyter_memsnap {__version__}",
        "objects": len(parts["order"]),
        "edges": len(parts["targets"]),
        "columns": {},
        "type_table": table,
        "roots": {"fields": root_fields, "rows": roots},
        "process": process,
        "fields": fields,
    }
    arrays: dict[str, np.ndarray] = {}
    for name, value in columns.items():
        spec, parts = _encode_column(name, value)
        meta["columns"][name] = spec
        arrays.update({f"{name}.{part}" if part else name: arr for part, arr in parts.items()})
    return meta, arrays


def _public_fields(obj: Any) -> Iterable[tuple[str, Any]]:
    for f in dataclasses.fields(obj):
        if not f.name.startswith("_"):
            yield f.name, getattr(obj, f.name)


def _to_json(value: Any, where: str) -> Any:
    """Plain data as JSON values: tuples become lists (and come back as tuples)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return {"$float": repr(value)}
        return value
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return _to_json(value.item(), where)
    if isinstance(value, (tuple, list)):
        return [_to_json(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        if len(value) == 1 and next(iter(value)).startswith("$"):
            raise SnapshotFileError(f"cannot save {where}: key {next(iter(value))!r}")
        return {k: _to_json(v, where) for k, v in value.items()}
    raise SnapshotFileError(f"cannot save {where}: {type(value).__name__} is not plain data")


def _encode_column(name: str, arr: np.ndarray) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """How one column is stored: its spec for the metadata and the arrays to write."""
    arr = np.ascontiguousarray(arr)
    if arr.dtype.kind not in "biuf":
        raise SnapshotFileError(f"cannot save column {name}: dtype {arr.dtype} is not numeric")
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    spec: dict[str, Any] = {"dtype": arr.dtype.str, "shape": list(arr.shape)}
    if arr.dtype.kind not in "iu" or arr.ndim != 1 or arr.dtype.itemsize not in _UNSIGNED:
        spec["codec"] = "raw"
        return spec, {"": arr}
    unsigned = _UNSIGNED[arr.dtype.itemsize]
    bits = arr.view(unsigned)
    if len(arr) >= 2 and bool(np.all(arr[1:] >= arr[:-1])):
        spec["codec"] = "delta"
        spec["start"] = int(arr[0])
        small = bits[1:] - bits[:-1]  # wraps modulo 2**bits like the decoder: exact
    else:
        start = int(arr.min()) if len(arr) else 0
        spec["codec"] = "offset"
        spec["start"] = start
        small = bits - np.array(start, dtype=arr.dtype).view(unsigned)
    width = _best_width(small)
    spec["width"] = width
    parts: dict[str, np.ndarray] = {}
    if width == small.dtype.itemsize:
        parts["values"] = small
        spec["escapes"] = 0
        return spec, parts
    limit = int(np.iinfo(_UNSIGNED[width]).max)
    rows = np.flatnonzero(small >= limit)
    parts["values"] = np.minimum(small, limit).astype(_UNSIGNED[width])
    spec["escapes"] = len(rows)
    if len(rows):
        parts["escape_rows"] = rows.astype(np.uint32 if len(small) <= 1 << 32 else np.uint64)
        parts["escape_values"] = small[rows]
    return spec, parts


def _best_width(values: np.ndarray) -> int:
    """Bytes per value that minimise the stored size, values too large listed apart."""
    full = values.dtype.itemsize
    best, best_cost = full, full * len(values)
    for width in (1, 2, 4):
        if width >= full:
            break
        escapes = int(np.count_nonzero(values >= np.iinfo(_UNSIGNED[width]).max))
        cost = width * len(values) + escapes * (4 + full)
        if cost < best_cost:
            best, best_cost = width, cost
    return best


def _reason(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__


# ====================================================================== reading
def load_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    """Read a snapshot file; any problem with the file raises :class:`SnapshotFileError`."""
    name = os.fspath(path)
    try:
        return _load(name)
    except SnapshotFileError:
        raise
    except MemoryError:
        raise SnapshotFileError(f"{name}: not enough memory to load this snapshot") from None
    except OSError as e:  # the file opened, then reading it failed
        raise SnapshotFileError(f"{name}: truncated, corrupted or unreadable ({_reason(e)})") from e
    except Exception as e:  # untrusted input: whatever the parsers raise is a bad file
        raise SnapshotFileError(f"{name}: corrupted snapshot file ({type(e).__name__}: {e})") from e


def is_snapshot_file(path: str | os.PathLike[str]) -> bool:
    """Whether the file starts like a snapshot file (a cheap test of its first 42 bytes)."""
    if not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(30 + len(METADATA_MEMBER))
    except OSError:
        return False
    return (
        head[:4] == _ZIP_MAGIC
        and head[26:28] == len(METADATA_MEMBER).to_bytes(2, "little")
        and head[30:] == METADATA_MEMBER.encode()
    )


def newest_snapshot_file(directory: str | os.PathLike[str]) -> str:
    """The most recently written snapshot file in ``directory`` (by modification time)."""
    name = os.fspath(directory)
    try:
        entries = list(os.scandir(name))
    except OSError as e:
        raise SnapshotFileError(f"{name}: cannot list the directory: {_reason(e)}") from e
    found: list[tuple[int, str]] = []
    for entry in entries:
        if entry.name.startswith(".") or entry.name.endswith(".tmp"):
            continue  # hidden and temporary files: a save in progress
        with contextlib.suppress(OSError):
            if entry.is_file() and is_snapshot_file(entry.path):
                found.append((entry.stat().st_mtime_ns, entry.path))
    if not found:
        raise SnapshotFileError(f"{name}: no snapshot files in this directory")
    return max(found)[1]


def _load(path: str) -> Snapshot:
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise SnapshotFileError(f"{path}: is a directory, not a snapshot file")
        if not stat.S_ISREG(mode):
            raise SnapshotFileError(f"{path}: not a regular file, not a snapshot file")
        f = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as e:
        raise SnapshotFileError(f"{path}: cannot read: {_reason(e)}") from e
    with f:
        head = f.read(30 + len(METADATA_MEMBER))
        if not head:
            raise SnapshotFileError(f"{path}: empty file, not a snapshot")
        if head[:4] != _ZIP_MAGIC:
            raise SnapshotFileError(f"{path}: not a jupyter_memsnap snapshot file ({_what(head)})")
        f.seek(0)
        try:
            zf = zipfile.ZipFile(f)
        except zipfile.BadZipFile as e:
            raise SnapshotFileError(f"{path}: truncated or corrupted snapshot file ({e})") from e
        with zf:
            return _read_archive(path, zf)


def _what(head: bytes) -> str:
    """A guess at what a foreign file is, for the error message."""
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head.startswith(b"\x93NUMPY"):
        return "a numpy .npy file"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if b"\x00" in head:
        return "unrecognised binary data"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "unrecognised binary data"
    return "a text file"


def _read_archive(path: str, zf: zipfile.ZipFile) -> Snapshot:
    names = set(zf.namelist())
    if METADATA_MEMBER not in names:
        kind = "a numpy .npz archive" if any(n.endswith(".npy") for n in names) else "a zip"
        raise SnapshotFileError(
            f"{path}: not a jupyter_memsnap snapshot file ({kind} without {METADATA_MEMBER})"
        )
    info = zf.getinfo(METADATA_MEMBER)
    if info.file_size > _MAX_METADATA:
        raise SnapshotFileError(f"{path}: corrupted snapshot file (metadata too large)")
    try:
        meta = json.loads(zf.read(info).decode("utf-8"))
    except zipfile.BadZipFile as e:
        raise SnapshotFileError(f"{path}: corrupted snapshot file ({e})") from e
    except ValueError as e:
        raise SnapshotFileError(f"{path}: corrupted snapshot file (bad metadata: {e})") from e
    reader = _Reader(path, zf, meta)
    return reader.snapshot()


class _Reader:
    """Reads and validates one file's contents; every check fails with SnapshotFileError."""

    def __init__(self, path: str, zf: zipfile.ZipFile, meta: Any) -> None:
        self.path = path
        self.zf = zf
        self.meta = self._dict(meta, "metadata")
        fmt = self.meta.get("format")
        if fmt != FORMAT_NAME:
            self.fail(f"not a jupyter_memsnap snapshot file (format {fmt!r})")
        version = self.meta.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            self.fail(f"unknown snapshot format version {version!r}")
        if version > FORMAT_VERSION:
            self.fail(
                f"written by a newer jupyter_memsnap (format version {version}; this one reads "
                f"version {FORMAT_VERSION}): upgrade jupyter_memsnap to read it"
            )
        self.n = self._count("objects")
        self.n_edges = self._count("edges")
        self.specs = self._dict(self.meta.get("columns"), "columns")

    # ------------------------------------------------------------ helpers
    def fail(self, reason: str) -> NoReturn:
        raise SnapshotFileError(f"{self.path}: {reason}")

    def _dict(self, value: Any, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(f"corrupted snapshot file ({what} is not a JSON object)")
        return value

    def _count(self, key: str) -> int:
        value = self.meta.get(key)
        if not _is_int(value) or not 0 <= value < 1 << 32:
            self.fail(f"corrupted snapshot file ({key} is {value!r})")
        result: int = value
        return result

    # ------------------------------------------------------------ columns
    def column(self, name: str) -> np.ndarray:
        spec = self._dict(self.specs.get(name), f"column {name}")
        text = spec.get("dtype")
        try:
            dtype = np.dtype(text) if isinstance(text, str) else None
        except (TypeError, ValueError):
            dtype = None
        if dtype is None or dtype.kind not in "biuf" or dtype.itemsize > 16:
            self.fail(f"corrupted snapshot file (column {name} has dtype {text!r})")
        shape = spec.get("shape")
        if (
            not isinstance(shape, list)
            or not all(_is_int(d) and 0 <= d < 1 << 40 for d in shape)
            or len(shape) > 4
        ):
            self.fail(f"corrupted snapshot file (column {name} has shape {shape!r})")
        count = math.prod(shape)
        codec = spec.get("codec")
        if codec == "raw":
            return self.member(name, dtype, count).reshape(shape)
        if codec not in ("delta", "offset") or len(shape) != 1 or dtype.kind not in "iu":
            self.fail(f"corrupted snapshot file (column {name}: codec {codec!r})")
        unsigned = _UNSIGNED[dtype.itemsize]
        width, escapes, start = spec.get("width"), spec.get("escapes"), spec.get("start")
        info = np.iinfo(dtype)
        if (
            width not in _UNSIGNED
            or width > dtype.itemsize
            or not _is_int(escapes)
            or not _is_int(start)
            or not info.min <= start <= info.max
        ):
            self.fail(f"corrupted snapshot file (column {name}: bad encoding)")
        n_small = count - 1 if codec == "delta" and count else count
        values = self.member(f"{name}.values", _UNSIGNED[width], n_small)
        small = values.astype(unsigned, copy=False)
        if escapes:
            if width == dtype.itemsize or not 0 < escapes <= n_small:
                self.fail(f"corrupted snapshot file (column {name}: bad escapes)")
            row_dtype = np.dtype(np.uint32 if n_small <= 1 << 32 else np.uint64)
            rows = self.member(f"{name}.escape_rows", row_dtype, escapes)
            big = self.member(f"{name}.escape_values", unsigned, escapes)
            limit = np.iinfo(_UNSIGNED[width]).max
            if (
                (len(rows) > 1 and not bool(np.all(rows[1:] > rows[:-1])))
                or int(rows[-1]) >= n_small
                or int(np.count_nonzero(values == limit)) != escapes
                or not bool(np.all(values[rows] == limit))
                or not bool(np.all(big >= limit))
            ):
                self.fail(f"corrupted snapshot file (column {name}: bad escapes)")
            small[rows] = big
        elif width < dtype.itemsize and bool(np.any(values == np.iinfo(values.dtype).max)):
            self.fail(f"corrupted snapshot file (column {name}: bad escapes)")
        first = np.array(start, dtype=dtype).view(unsigned)
        if codec == "offset":
            bits = small + first
        elif count == 0:
            if start != 0:
                self.fail(f"corrupted snapshot file (column {name}: bad encoding)")
            bits = np.zeros(0, dtype=unsigned)
        else:
            bits = np.empty(count, dtype=unsigned)
            bits[0] = first
            np.cumsum(small, out=bits[1:])
            bits[1:] += first
        result: np.ndarray = bits.view(dtype)
        if codec == "delta" and count > 1 and not bool(np.all(result[1:] >= result[:-1])):
            self.fail(f"corrupted snapshot file (column {name} overflows)")
        return result

    def member(self, name: str, dtype: np.dtype[Any], count: int) -> np.ndarray:
        """One ``.npy`` member, checked against the dtype and length it must have."""
        try:
            info = self.zf.getinfo(name + ".npy")
        except KeyError:
            self.fail(f"corrupted snapshot file (member {name}.npy is missing)")
        nbytes = count * dtype.itemsize
        if not nbytes <= info.file_size <= nbytes + _MAX_NPY_HEADER:
            self.fail(f"corrupted snapshot file (member {name}.npy has the wrong size)")
        try:
            data = self.zf.read(info)
        except zipfile.BadZipFile as e:
            self.fail(f"corrupted snapshot file ({e})")
        stream = io.BytesIO(data)
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, stored = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, stored = np.lib.format.read_array_header_2_0(stream)
        else:
            self.fail(f"corrupted snapshot file (member {name}.npy: .npy version {version})")
        header = stream.tell()
        if stored != dtype or tuple(shape) != (count,) or fortran or len(data) - header != nbytes:
            self.fail(f"corrupted snapshot file (member {name}.npy does not match the metadata)")
        return np.frombuffer(data, dtype=dtype, count=count, offset=header)

    # ------------------------------------------------------------ the snapshot
    def snapshot(self) -> Snapshot:
        kwargs: dict[str, Any] = {}
        fields = self._dict(self.meta.get("fields", {}), "fields")
        known = {
            name: f
            for f in dataclasses.fields(Snapshot)
            if not f.name.startswith("_")
            for name in _COMPACT.get(f.name, (f.name,))
        }
        for name, value in fields.items():
            if name in known and name not in _SPECIAL_FIELDS:
                kwargs[name] = self._from_json(value)
        for name in self.specs:
            if name in known and name not in _SPECIAL_FIELDS:
                kwargs[name] = self.core_column(name)
        kwargs["type_table"] = self.type_table()
        kwargs["roots"] = self.roots()
        kwargs["process"] = self.process()
        missing = [
            name
            for name, f in known.items()
            if name not in kwargs
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            self.fail(f"corrupted snapshot file (missing {', '.join(sorted(missing))})")
        self.check_fields(kwargs)
        try:
            snap = Snapshot.from_columns(**kwargs)
        except (TypeError, ValueError) as e:
            self.fail(f"corrupted snapshot file ({e})")
        self.check_graph(snap)
        return snap

    def core_column(self, name: str) -> np.ndarray:
        arr = self.column(name)
        want = CORE_DTYPES.get(name)
        if want is not None and arr.dtype != want:
            self.fail(f"corrupted snapshot file (column {name} has dtype {arr.dtype}, not {want})")
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        arr.setflags(write=False)
        return arr

    def _from_json(self, value: Any) -> Any:
        if isinstance(value, list):
            return tuple(self._from_json(v) for v in value)
        if isinstance(value, dict):
            if len(value) == 1 and "$datetime" in value:
                return dt.datetime.fromisoformat(value["$datetime"])
            if len(value) == 1 and "$float" in value:
                text = value["$float"]
                if text not in ("nan", "inf", "-inf"):
                    self.fail(f"corrupted snapshot file (number {text!r})")
                return float(text)
            return {k: self._from_json(v) for k, v in value.items()}
        return value

    def type_table(self) -> TypeTable:
        table = self._dict(self.meta.get("type_table"), "type_table")
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(TypeTable):
            column = f"type_table.{f.name}"
            if column in self.specs:
                kwargs[f.name] = self.core_column(column)
            elif f.name in table:
                kwargs[f.name] = self._from_json(table[f.name])
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.fail(f"corrupted snapshot file (type table has no {f.name})")
        module, qualname = kwargs.get("module"), kwargs.get("qualname")
        is_class = kwargs.get("is_class")
        if (
            not _strings(module)
            or not _strings(qualname)
            or not isinstance(is_class, np.ndarray)
            or not len(module) == len(qualname) == len(is_class)
        ):
            self.fail("corrupted snapshot file (inconsistent type table)")
        return TypeTable(**kwargs)

    def roots(self) -> tuple[Root, ...]:
        roots = self._dict(self.meta.get("roots"), "roots")
        names, rows = self._from_json(roots.get("fields")), roots.get("rows")
        if not _strings(names) or not isinstance(rows, list):
            self.fail("corrupted snapshot file (roots)")
        known = {f.name for f in dataclasses.fields(Root)}
        keep = [i for i, n in enumerate(names) if n in known]
        result = []
        for row in rows:
            if not isinstance(row, list) or len(row) != len(names):
                self.fail("corrupted snapshot file (roots)")
            values = {names[i]: self._from_json(row[i]) for i in keep}
            name, kind, index = values.get("name"), values.get("kind"), values.get("index")
            via = values.get("via", ())
            if (
                not isinstance(name, str)
                or not isinstance(kind, str)
                or not _is_int(index)
                or not -1 <= index < self.n
                or not isinstance(via, tuple)
                or not all(_is_int(v) and 0 <= v < self.n for v in via)
            ):
                self.fail(f"corrupted snapshot file (root {name!r})")
            try:
                result.append(Root(**values))
            except TypeError as e:
                self.fail(f"corrupted snapshot file (root {name!r}: {e})")
        return tuple(result)

    def process(self) -> ProcessMemory:
        values = self._dict(self.meta.get("process"), "process")
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(ProcessMemory):
            value = values.get(f.name)
            if f.name not in values:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    self.fail(f"corrupted snapshot file (process memory has no {f.name})")
                continue
            if f.name == "files":
                kwargs["files"] = self.named_sizes(value)
                continue
            number = (int, float) if "float" in str(f.type) else int
            optional = "None" in str(f.type)
            ok = isinstance(value, number) and not isinstance(value, bool) and value >= 0
            if not ok and not (value is None and optional):
                self.fail(f"corrupted snapshot file (process memory {f.name} is {value!r})")
            kwargs[f.name] = value
        return ProcessMemory(**kwargs)

    def named_sizes(self, value: Any) -> tuple[tuple[str, int], ...]:
        """``[[name, bytes], ...]`` as read back from JSON."""
        ok = isinstance(value, list) and all(
            isinstance(pair, list)
            and len(pair) == 2
            and isinstance(pair[0], str)
            and isinstance(pair[1], int)
            and not isinstance(pair[1], bool)
            and pair[1] >= 0
            for pair in value
        )
        if not ok:
            self.fail(f"corrupted snapshot file (process memory files is {value!r})")
        return tuple((name, size) for name, size in value)

    def check_fields(self, kwargs: dict[str, Any]) -> None:
        """The plain fields have the types the model expects."""
        checks: dict[str, Any] = {
            "taken_at": lambda v: isinstance(v, dt.datetime),
            "seconds": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "engine": lambda v: isinstance(v, str),
            "label": lambda v: isinstance(v, str),
            "cell": lambda v: v is None or _is_int(v),
            "site_labels": _strings,
            "born_ranges": _int_pairs,
        }
        for name, ok in checks.items():
            if name in kwargs and not ok(kwargs[name]):
                self.fail(f"corrupted snapshot file ({name} is {kwargs[name]!r})")

    def check_graph(self, snap: Snapshot) -> None:
        """Every column's length and every row number against the others."""
        n, n_types = self.n, len(snap.type_table)
        lengths = {
            "sorted_ids": n,
            "order": n,
            "type_index": n,
            "sizes": n,
            "offsets": n + 1,
            "targets": self.n_edges,
            "native_bytes": len(snap.native_index),
        }
        for name, length in lengths.items():
            if len(getattr(snap, name)) != length:
                self.fail(f"corrupted snapshot file (column {name} has the wrong length)")
        for name in ("born", "site_index"):
            value = getattr(snap, name, None)
            if value is not None and (not isinstance(value, np.ndarray) or value.shape != (n,)):
                self.fail(f"corrupted snapshot file (column {name} has the wrong length)")
        ids, order, offsets = snap.sorted_ids, snap.order, snap.offsets
        if n > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            self.fail("corrupted snapshot file (ids are not strictly increasing)")
        seen = np.zeros(n, dtype=bool)
        if n and int(order.max()) < n:
            seen[order] = True
        if not bool(seen.all()):
            self.fail("corrupted snapshot file (order is not a permutation of the rows)")
        if int(offsets[0]) != 0 or int(offsets[-1]) != len(snap.targets):
            self.fail("corrupted snapshot file (offsets do not span the targets)")
        if n and not bool(np.all(offsets[1:] >= offsets[:-1])):
            self.fail("corrupted snapshot file (offsets decrease)")
        ranges: list[tuple[str, np.ndarray | None, int, int]] = [
            ("targets", snap.targets, 0, n),
            ("type_index", snap.type_index, 0, n_types),
            ("native_index", snap.native_index, 0, n),
            ("sizes", snap.sizes, 0, 1 << 62),
            ("native_bytes", snap.native_bytes, 0, 1 << 62),
        ]
        site_labels = getattr(snap, "site_labels", ())
        ranges.append(("site_index", getattr(snap, "site_index", None), -1, len(site_labels)))
        for name, arr, low, high in ranges:
            if (
                arr is not None
                and len(arr)
                and not (low <= int(arr.min()) <= int(arr.max()) < high)
            ):
                self.fail(f"corrupted snapshot file (column {name} out of range)")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_pairs(value: object) -> TypeGuard[tuple[tuple[int, int], ...]]:
    return isinstance(value, tuple) and all(
        isinstance(v, tuple) and len(v) == 2 and all(_is_int(x) for x in v) for v in value
    )


def _strings(value: object) -> TypeGuard[tuple[str, ...]]:
    return isinstance(value, tuple) and all(isinstance(v, str) for v in value)
