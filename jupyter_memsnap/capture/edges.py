"""What a live container calls its reference to another object: ``['q3']``, ``.history``, ``[0]``.

Paths to roots are stored as rows; names are found when a path is shown, starting from the
live root object and, at each step, looking among the current object's own references for
the one whose id is the path's next id. No stored id is ever turned back into an object, so
an old snapshot whose objects are gone just gets fewer names. Nothing here runs user code
that a plain attribute read would not (no properties, no ``__getattr__``, no ``f_locals``)
or creates objects on the user's (no instance ``__dict__`` made from inline values).
"""

from __future__ import annotations

import gc
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeGuard, TypeVar

from . import layout
from .frames import FrameLocals

_T = TypeVar("_T")
Label = tuple[str, str]
"""(kind, text): ``key`` (a dict key's repr), ``attr``, ``index``, ``column`` (a DataFrame
column or columns), ``local`` (a frame's variable), ``cell`` (a closure variable), ``dict``
(an object's ``__dict__``, shown through the next key), ``item`` (a set member, a key) or
``skip`` (a step the previous label covers: DataFrame → BlockManager → … → values)."""

MAX_SCAN = 1_000_000
"""Containers are searched up to this many items for the next object."""
_SAFE_GETSETS = ("tb_next", "__defaults__", "__kwdefaults__", "cell_contents", "base")


_ATOMS = (str, bytes, int, float, complex, bool, type(None))


def _is(obj: object, kind: type[_T]) -> TypeGuard[_T]:
    """isinstance by the real type: ``isinstance`` also asks the object's ``__class__``, which
    a class may compute in Python."""
    return issubclass(type(obj), kind)


def _atom(value: object) -> bool:
    """A builtin atom whose repr is short and runs no user code (huge ints excepted)."""
    return type(value) in _ATOMS and not (type(value) is int and abs(value) > 10**40)


def short_repr(value: object, width: int = 40) -> str:
    """repr of a key, cut to ``width`` characters; only for builtin atoms and short tuples of
    them (any other repr is user code: ``<Type>`` instead)."""
    atom = _atom(value) or (
        type(value) is tuple and len(value) < 8 and all(_atom(v) for v in value)
    )
    text = repr(value) if atom else f"<{type(value).__name__}>"
    return text if len(text) <= width else text[: width - 1] + "…"


def name_path(root: object, ids: Sequence[int], frame_locals: FrameLocals) -> list[Label | None]:
    """The label of each step after ``root`` along ``ids`` (the ids of the path's next
    objects), None from the first step that cannot be named among live references."""
    labels: list[Label | None] = []
    current = root
    while len(labels) < len(ids):
        try:
            found = _step(current, ids[len(labels) :], frame_locals)
        except Exception:
            found = None
        if found is None:
            break
        label, consumed, current = found
        labels += [label] + [("skip", "")] * (consumed - 1)
    del current
    return labels + [None] * (len(ids) - len(labels))


def _step(
    obj: object, ahead: Sequence[int], frame_locals: FrameLocals
) -> tuple[Label, int, object] | None:
    """(label, how many ids it covers, the object reached) for the next step, or None."""
    column = _pandas_column(obj, ahead)
    if column is not None:
        return column
    target = ahead[0]
    if _is(obj, types.FunctionType) and obj.__closure__ is not None:
        cell = _closure_variable(obj, ahead)
        if cell is not None:
            return cell
    if _is(obj, types.FrameType):
        for name, value in frame_locals(obj):
            if id(value) == target:
                return ("local", name), 1, value
    for label, value in _references(obj):
        if id(value) == target:
            return label, 1, value
    return None


def _references(obj: object) -> Iterator[tuple[Label, object]]:
    """The object's references that have a name, without running its Python code."""
    if _is(obj, dict):
        for n, (key, value) in enumerate(dict.items(obj)):
            if n >= MAX_SCAN:
                return
            yield ("key", short_repr(key)), value
            yield ("item", f"key {short_repr(key)}"), key
        return
    items = _items(obj)
    if items is not None:
        indexed = _is(obj, list) or _is(obj, tuple)
        for i, value in enumerate(items):
            if i >= MAX_SCAN:
                return
            yield (("index", str(i)) if indexed else ("item", "member")), value
        return
    yield from _object_array_items(obj)
    yield from _attributes(obj)
    for value in gc.get_referents(obj):
        if type(value) is dict:
            yield ("dict", "__dict__"), value


def _items(obj: object) -> Iterator[object] | None:
    """The items of a list, tuple, set or frozenset (their own iterators: a subclass's
    ``__iter__`` is not called), None for anything else."""
    for kind in (list, tuple, set, frozenset):
        if _is(obj, kind):
            iterate: Callable[[object], Iterator[object]] = getattr(kind, "__iter__")  # noqa: B009
            return iterate(obj)
    return None


def _attributes(obj: object) -> Iterator[tuple[Label, object]]:
    """Slots and C members, a few getters that return what is stored, and (3.11+) the
    attribute values an instance keeps outside any dict, named from its type's shared keys."""
    tp = type(obj)
    names = layout.shared_key_names(tp) if layout.VALUES else ()
    for name in names:
        if not _shadowed(tp, name):
            yield from _read(name, object.__getattribute__, obj, name)
    for klass in layout.type_attr(tp, "__mro__"):
        for name, descriptor in list(layout.type_attr(klass, "__dict__").items()):
            safe = isinstance(descriptor, types.MemberDescriptorType) or (
                isinstance(descriptor, types.GetSetDescriptorType) and name in _SAFE_GETSETS
            )
            if safe:
                yield from _read(name, descriptor.__get__, obj, tp)


def _read(name: str, get: Callable[..., object], *args: object) -> Iterator[tuple[Label, object]]:
    """The attribute's value if it has one (an unset slot raises)."""
    try:
        value = get(*args)
    except Exception:
        return
    yield ("attr", name), value


def _shadowed(tp: type, name: str) -> bool:
    """Whether the type defines a data descriptor ``name`` (an instance value is not what
    ``obj.name`` returns, and reading it would run the descriptor)."""
    for klass in layout.type_attr(tp, "__mro__"):
        attr = layout.type_attr(klass, "__dict__").get(name)
        if attr is not None:
            kind = type(attr)
            return hasattr(kind, "__set__") or hasattr(kind, "__delete__")
    return False


def _closure_variable(
    fn: types.FunctionType, ahead: Sequence[int]
) -> tuple[Label, int, object] | None:
    """function → its closure tuple → cell → value, as one step named by the variable."""
    closure = fn.__closure__
    if closure is None or len(ahead) < 3 or id(closure) != ahead[0]:
        return None
    for name, cell in zip(fn.__code__.co_freevars, closure, strict=False):
        if id(cell) == ahead[1]:
            try:
                value = cell.cell_contents
            except ValueError:
                return None
            if id(value) == ahead[2]:
                return ("cell", name), 3, value
    return None


def _object_array_items(obj: object) -> Iterator[tuple[Label, object]]:
    np = sys.modules.get("numpy")
    if np is None or not _is(obj, np.ndarray) or obj.dtype != object:
        return
    if obj.base is not None:
        return  # a view: its elements are the base's
    for i, value in enumerate(obj.flat):
        if i >= MAX_SCAN:
            return
        where = np.unravel_index(i, obj.shape) if obj.ndim > 1 else (i,)
        yield ("index", ", ".join(str(int(k)) for k in where)), value


def _pandas_column(obj: object, ahead: Sequence[int]) -> tuple[Label, int, object] | None:
    """DataFrame → BlockManager → tuple → Block → values as one step named by the columns
    those values hold (``['qty']``), through pandas' block manager."""
    pd = sys.modules.get("pandas")
    if pd is None or not _is(obj, pd.DataFrame):
        return None
    position = {target: k for k, target in enumerate(ahead[:8])}
    mgr: Any = object.__getattribute__(obj, "_mgr")
    for block in mgr.blocks:
        values = block.values
        k = position.get(id(values))
        if k is not None:
            columns = [short_repr(c) for c in obj.columns[block.mgr_locs.as_array]]
            text = columns[0] if len(columns) == 1 else "[" + ", ".join(columns[:4]) + "]"
            if len(columns) > 4:
                text = text[:-1] + f", … {len(columns)} columns]"
            return ("column", text), k + 1, values
    return None
