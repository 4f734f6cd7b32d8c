"""The pure-Python walker's view of what ``_cpython.h`` reads: CPython fields that no Python
attribute returns without side effects, read with ctypes.

Attributes are used where they hand back the stored object itself (``co_consts``,
``__mro__``, ``__name__``); ctypes only where they would build and keep a new object
(``co_varnames`` caches a tuple on 3.12, ``f_locals`` a dict on 3.10-3.12) or where nothing
exposes the field (``co_localsplusnames``, a heap type's ``ht_slots``, an instance's
attribute-values block). Every offset is found on a live object and checked against
attributes before it is trusted, and only on the versions whose headers define it (3.10-3.13,
default build): elsewhere these readers return nothing rather than guess.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import sys
import sysconfig
import types
from collections.abc import Callable
from typing import Any

WORD = ctypes.sizeof(ctypes.c_void_p)
KNOWN = (3, 10) <= sys.version_info[:2] <= (3, 13) and not sysconfig.get_config_var(
    "Py_GIL_DISABLED"
)
VALUES = KNOWN and sys.version_info >= (3, 11)
"""Instances keep attribute values outside any dict (3.11+), in a block read here."""

TPFLAGS_HEAPTYPE = 1 << 9
TPFLAGS_MANAGED_DICT = 1 << 4
TPFLAGS_INLINE_VALUES = 1 << 2
CO_OPTIMIZED = 0x1

_type_attr: dict[str, Any] = {k: v for k, v in type.__dict__.items() if k.startswith("__")}


def type_attr(tp: type, name: str) -> Any:
    """``tp.<name>`` as ``type`` defines it, whatever a metaclass overrides."""
    return _type_attr[name].__get__(tp, type(tp))


def _words(address: int, n: int) -> list[int]:
    """n machine words from address (no ctypes type is made: those live forever)."""
    return [ctypes.c_size_t.from_address(address + k * WORD).value for k in range(n)]


def _obj(field: int) -> Any:
    """The object a live object's field at this address points to (a new reference)."""
    return ctypes.py_object.from_address(field).value


def _find(words: list[int], *ids: int | None) -> int:
    """First index where ``words`` holds ``ids`` in a row (None matches anything), or -1."""
    for i in range(len(words) - len(ids) + 1):
        if all(x is None or words[i + k] == x for k, x in enumerate(ids)):
            return i
    return -1


# ------------------------------------------------------------------ code objects


def _code_index(co: types.CodeType) -> int:
    """Word index of co_filename in a code object, which the private fields sit at fixed
    distances from (Include/cpython/code.h, 3.11+); -1 where the layout is not known."""
    if not KNOWN or sys.version_info < (3, 11):
        return -1
    words = _words(id(co), type(co).__basicsize__ // WORD)
    i = _find(words, id(co.co_filename), id(co.co_name), id(co.co_qualname), id(co.co_linetable))
    return i if i >= 2 else -1


_CODE_INDEX = _code_index(_code_index.__code__)


def _locate(co: types.CodeType) -> int:
    """_CODE_INDEX once checked on this code object, else -1."""
    i = _CODE_INDEX
    if i < 0:
        return -1
    ids = (id(co.co_filename), id(co.co_name), id(co.co_qualname), id(co.co_linetable))
    return i if _words(id(co) + i * WORD, 4) == list(ids) else -1


def code_referents(co: types.CodeType) -> list[object]:
    """What ``ms_code_referents`` visits, in its order."""
    if sys.version_info < (3, 11):
        fields = (co.co_code, co.co_consts, co.co_names, co.co_varnames, co.co_freevars)
        return [*fields, co.co_cellvars, co.co_filename, co.co_name, co.co_linetable]
    hidden: list[int] = []  # addresses of fields
    cached: list[int] = []
    i = _locate(co)
    if i >= 0:
        hidden = [id(co) + (i - 2) * WORD, id(co) + (i - 1) * WORD]
        if sys.version_info < (3, 12):
            cached = [id(co) + (i + 5) * WORD]  # _co_code
        else:  # _co_cached, after co_executors on 3.13
            block = _words(id(co) + (i + 5 + (sys.version_info >= (3, 13))) * WORD, 1)[0]
            cached = [block + k * WORD for k in range(4)] if block else []
    out: list[object] = [co.co_consts, co.co_names, co.co_exceptiontable]
    out += [_obj(a) for a in hidden if _words(a, 1)[0]]
    out += [co.co_filename, co.co_name, co.co_qualname, co.co_linetable]
    out += [_obj(a) for a in cached if _words(a, 1)[0]]
    return out


def code_locals_names(co: types.CodeType) -> tuple[tuple[str, ...], bytes] | None:
    """``co_localsplusnames`` and ``co_localspluskinds`` (3.11+), or None."""
    i = _locate(co)
    if i < 0:
        return None
    names, kinds = _obj(id(co) + (i - 2) * WORD), _obj(id(co) + (i - 1) * WORD)
    if isinstance(names, tuple) and isinstance(kinds, bytes) and len(names) == len(kinds):
        return names, kinds
    return None


# ------------------------------------------------------------------ types


_HEAP_TYPE_WORDS: int = vars(type)["__basicsize__"].__get__(type) // WORD


def _heap_fields(tp: type) -> int:
    """Address of a heap type's ht_name, followed by ht_slots, ht_qualname and
    ht_cached_keys (Include/cpython/object.h), or 0."""
    words = _words(id(tp), _HEAP_TYPE_WORDS)
    i = _find(words, id(type_attr(tp, "__name__")), None, id(type_attr(tp, "__qualname__")))
    return id(tp) + i * WORD if i >= 0 else 0


def type_referents(tp: type) -> list[object]:
    """What ``ms_type_referents`` visits: a heap type's name, qualname and slots; a static
    type's dict, MRO and bases."""
    if tp.__flags__ & TPFLAGS_HEAPTYPE:
        name, qualname = type_attr(tp, "__name__"), type_attr(tp, "__qualname__")
        fields = _heap_fields(tp) if KNOWN else 0
        slots = [_obj(fields + WORD)] if fields and _words(fields + WORD, 1)[0] else []
        return [name, qualname, *slots]
    out: list[object] = gc.get_referents(type_attr(tp, "__dict__"))
    return [*out, type_attr(tp, "__mro__"), type_attr(tp, "__bases__")]


def type_doc_bytes(tp: type) -> int:
    """Bytes of a heap type's copy of its docstring (``tp_doc``, word 22 of PyTypeObject)."""
    if not KNOWN or not tp.__flags__ & TPFLAGS_HEAPTYPE:
        return 0
    words = _words(id(tp), 23)
    if words[4] != tp.__basicsize__ or words[21] != tp.__flags__ or not words[22]:
        return 0
    return len(ctypes.string_at(words[22])) + 1


# ------------------------------------------------------------------ instance values


def values_keys(tp: type) -> int:
    """Address of the shared keys whose instances may own an attribute-values block
    (``ms_has_values``), or 0 when instances of tp own none."""
    flags = tp.__flags__
    if not VALUES or not flags & TPFLAGS_HEAPTYPE or not flags & TPFLAGS_MANAGED_DICT:
        return 0
    fields = _heap_fields(tp)
    return _words(fields + 3 * WORD, 1)[0] if fields else 0


def values_bytes(o: object, keys: int) -> int:
    """Bytes of o's attribute-values block (``ms_values_bytes``); keys: values_keys(type(o))."""
    tp = type(o)
    if sys.version_info >= (3, 13):
        if not tp.__flags__ & TPFLAGS_INLINE_VALUES:
            return 0
        cap = ctypes.c_uint8.from_address(id(o) + tp.__basicsize__).value
        return ((cap + 7) & ~7) + (cap + 1) * WORD
    if sys.version_info >= (3, 12):
        dorv = ctypes.c_size_t.from_address(id(o) - 3 * WORD).value
        if not dorv & 1:  # PyDictOrValues: the values' address - 1, or a dict
            return 0
        values = dorv + 1
    else:
        if ctypes.c_size_t.from_address(id(o) - 3 * WORD).value:
            return 0
        values = ctypes.c_size_t.from_address(id(o) - 4 * WORD).value
        if not values:
            return 0
    prefix = ctypes.c_uint8.from_address(values - 1).value
    usable, nentries = _words(keys + 2 * WORD, 2)
    cap = max(0, min(prefix - 2, max(prefix - 9, usable + nentries)))
    return prefix + cap * WORD


def shared_key_names(tp: type) -> tuple[str, ...]:
    """The attribute names in tp's shared keys (``ht_cached_keys``), in insertion order: the
    names of the values an instance keeps outside any dict (3.11+), read without making one."""
    keys = values_keys(tp)
    if not keys:
        return ()
    log2_index_bytes = ctypes.c_uint8.from_address(keys + WORD + 1).value
    nentries = _words(keys + 3 * WORD, 1)[0]
    entries = keys + 4 * WORD + (1 << log2_index_bytes)
    names = []
    for i in range(min(nentries, 1 << 16)):
        field = entries + 2 * i * WORD
        if _words(field, 1)[0]:
            name = _obj(field)
            if type(name) is str:
                names.append(name)
    return tuple(names)


def object_traceback(raw: Callable[[object], Any], gc_head: int) -> Callable[[object], Any]:
    """``raw`` (tracemalloc's object traceback) made to find 3.11's instances with a managed
    dict, whose memory block starts two words before their GC header (3.12 does it itself)."""
    if not (KNOWN and sys.version_info[:2] == (3, 11)):
        return raw
    by_address = ctypes.pythonapi._PyTraceMalloc_GetTraceback
    by_address.restype = ctypes.py_object
    by_address.argtypes = (ctypes.c_uint, ctypes.c_size_t)
    start = gc_head + 2 * WORD

    def traceback(o: object) -> Any:
        tb = raw(o)
        if tb is None and type(o).__flags__ & TPFLAGS_MANAGED_DICT:
            return by_address(0, id(o) - start)
        return tb

    return traceback


# ------------------------------------------------------------------ buffers


def bytearray_buffer(b: bytearray) -> tuple[int, int]:
    """(address, bytes) of a bytearray's allocation (``ob_bytes``, ``ob_alloc``)."""
    alloc = bytearray.__alloc__(b)
    words = _words(id(b), 5)
    return (words[4], alloc) if words[3] == alloc else (0, 0)


# ------------------------------------------------------------------ frame locals


def _localsplus_offset_310() -> int:
    def probe(a: object) -> types.FrameType:
        b = marker  # noqa: F841 - read back through the frame
        return sys._getframe()

    marker = object()
    frame = probe(probe)
    base = type(frame).__basicsize__ - WORD
    return base if _words(id(frame) + base, 2) == [id(probe), id(marker)] else -1


_OFFSET_310 = _localsplus_offset_310() if KNOWN and sys.version_info < (3, 11) else -1


def _locals_310(frame: types.FrameType) -> list[tuple[str, object]]:
    co = frame.f_code
    names = co.co_varnames + co.co_cellvars + co.co_freevars
    if _OFFSET_310 < 0:
        return []
    out = []
    slots = id(frame) + _OFFSET_310
    for k, (name, address) in enumerate(zip(names, _words(slots, len(names)), strict=True)):
        if not address:
            continue
        value = _obj(slots + k * WORD)
        if k >= len(co.co_varnames) and isinstance(value, types.CellType):
            try:
                value = value.cell_contents
            except ValueError:
                continue
        out.append((name, value))
    return out


def _locals_311(frame: types.FrameType) -> list[tuple[str, object]]:
    co = frame.f_code
    found = code_locals_names(co)
    if found is None:
        return []
    names, kinds = found
    iframe = _words(id(frame), 4)[3]
    # A running frame points back to its frame object; a finished one (in a traceback) is
    # a copy inside the frame object, its back pointer cleared.
    owned = id(frame) + type(frame).__basicsize__ - 9 * WORD
    if not iframe or _words(iframe, 6)[4:6] not in ([id(co), id(frame)], [id(co), 0]):
        return []
    if _words(iframe, 6)[5] == 0 and iframe != owned:
        return []
    out = []
    slots = iframe + 9 * WORD
    for k, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        if not _words(slots + k * WORD, 1)[0]:
            continue
        value = _obj(slots + k * WORD)
        if kind & 0xC0 and isinstance(value, types.CellType):
            try:
                value = value.cell_contents
            except ValueError:
                continue
        out.append((name, value))
    return out


_get_var: Callable[[types.FrameType, str], object] | None = None
if sys.version_info >= (3, 12):
    _get_var = ctypes.pythonapi.PyFrame_GetVar
    _get_var.argtypes = (ctypes.py_object, ctypes.py_object)  # type: ignore[attr-defined]
    _get_var.restype = ctypes.py_object  # type: ignore[attr-defined]


def _locals_312(frame: types.FrameType) -> list[tuple[str, object]]:
    found = code_locals_names(frame.f_code)
    if found is None or _get_var is None:
        return []
    out = []
    for name in found[0]:
        with contextlib.suppress(NameError):
            out.append((name, _get_var(frame, name)))
    return out


def frame_locals(frame: types.FrameType) -> list[tuple[str, object]]:
    """A frame's bound variables (running or finished), as ``_walker.frame_locals`` lists
    them."""
    if sys.version_info >= (3, 12):
        return _locals_312(frame)
    if not KNOWN:
        return []
    return _locals_311(frame) if sys.version_info >= (3, 11) else _locals_310(frame)
