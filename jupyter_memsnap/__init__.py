"""jupyter_memsnap: heap snapshots of a live Jupyter kernel as pandas DataFrames.

``%load_ext jupyter_memsnap`` registers the ``%memsnap`` magic; ``jupyter_memsnap.take()``
snapshots the heap from plain Python. Importing this package does not import IPython.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "NotEnoughMemory",
    "Snapshot",
    "browse",
    "load_ipython_extension",
    "take",
    "unload_ipython_extension",
]

if TYPE_CHECKING:
    from .model.snapshot import Snapshot
    from .ui.explorer import Explorer


def take(*args: Any, **kwargs: Any) -> Snapshot:
    """Snapshot every live object (see :func:`jupyter_memsnap.api.take`)."""
    from .api import take as _take

    return _take(*args, **kwargs)


def browse(*args: Any, **kwargs: Any) -> Explorer:
    """The snapshot explorer (ipywidgets) over this session's snapshots, or over
    ``snapshots=[(1, snap1), (2, snap2)]`` (see :func:`jupyter_memsnap.ui.browse`)."""
    from .ui import browse as _browse

    return _browse(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "Snapshot":
        from .model.snapshot import Snapshot

        return Snapshot
    if name == "NotEnoughMemory":
        from .capture.guard import NotEnoughMemory

        return NotEnoughMemory
    raise AttributeError(name)


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext jupyter_memsnap``: register one magics instance that owns all state."""
    from .ipython.magics import MemsnapMagics

    ip.register_magics(MemsnapMagics(ip))


def unload_ipython_extension(ip: Any) -> None:
    """``%unload_ext jupyter_memsnap``: remove the magics and everything they registered."""
    manager = ip.magics_manager
    instance = manager.registry.pop("MemsnapMagics", None)
    if instance is not None:
        instance.close()
        if instance in getattr(ip, "configurables", []):
            ip.configurables.remove(instance)
    for kind in ("line", "cell"):
        manager.magics[kind].pop("memsnap", None)
