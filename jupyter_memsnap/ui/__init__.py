"""Interactive front end: the snapshot explorer (ipywidgets).

``browse()`` opens it over the session's snapshots (those ``%memsnap take`` stored);
``Explorer(pairs)`` over any ``(number, Snapshot)`` pairs. Importing this package imports
ipywidgets; ``import jupyter_memsnap`` does not import it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from ..model.snapshot import Snapshot
from .explorer import Explorer

__all__ = ["Explorer", "browse", "session_snapshots"]


def session_snapshots() -> list[tuple[int, Snapshot]]:
    """The snapshots ``%memsnap take`` stored in this IPython session (RuntimeError outside
    IPython or before ``%load_ext jupyter_memsnap``)."""
    ipython = sys.modules.get("IPython")  # never import it: outside IPython there is none
    ip = ipython.get_ipython() if ipython is not None else None
    magics = ip.magics_manager.registry.get("MemsnapMagics") if ip is not None else None
    if magics is None:
        raise RuntimeError(
            "no session snapshots: run %load_ext jupyter_memsnap and %memsnap take, "
            "or pass snapshots=[(1, snap1), (2, snap2)]"
        )
    return list(magics.store)


def browse(
    snapshot: Snapshot | int | str | None = None,
    baseline: Snapshot | int | str | None = None,
    *,
    snapshots: Iterable[tuple[int, Snapshot]] | None = None,
    group: str = "type",
    page_size: int = 20,
) -> Explorer:
    """An explorer over the session's snapshots (or ``snapshots``): ``snapshot`` on show
    (default the latest), compared to ``baseline`` when given. Both are numbers, or for
    the session's store also labels and negative indexes (``-1``: the latest); or both are
    Snapshot objects (``browse(after, before)``), shown as 2 compared to 1."""
    if isinstance(snapshot, Snapshot) or isinstance(baseline, Snapshot):
        if snapshots is not None or not isinstance(snapshot, Snapshot):
            raise TypeError("browse(after, before): pass Snapshot objects, or numbers/labels")
        if baseline is None:
            return Explorer([(1, snapshot)], 1, None, group=group, page_size=page_size)
        if not isinstance(baseline, Snapshot):
            raise TypeError("browse(after, before): the baseline must be a Snapshot too")
        pair = [(1, baseline), (2, snapshot)]
        return Explorer(pair, 2, 1, group=group, page_size=page_size)
    items = list(snapshots) if snapshots is not None else session_snapshots()
    numbers = [n for n, _ in items]
    labels = {s.label: n for n, s in items if s.label}

    def resolve(ref: int | str | None) -> int | None:
        if ref is None:
            return None
        text = str(ref).strip()
        if text in labels:
            return labels[text]
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"no snapshot labelled {text!r}") from None
        if value < 0 and -value <= len(numbers):
            return numbers[value]
        return value

    return Explorer(items, resolve(snapshot), resolve(baseline), group=group, page_size=page_size)
