"""The optional compiled extensions, each loaded once, with one warning when it is missing."""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType


def load(name: str, what: str) -> ModuleType | None:
    """Import the extension module ``name`` (absolute), or warn that ``what`` falls back to
    pure Python and return None: same results, slower."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        warnings.warn(
            f"jupyter_memsnap: the compiled {what} ({name}) is not built ({exc}); using pure "
            "Python (same results, much slower). Reinstall with a C compiler to fix this.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
