"""Figures pyplot keeps open, as roots: ``del fig`` frees nothing until ``plt.close(fig)``."""

from __future__ import annotations

import gc
import sys


def open_figures() -> list[tuple[str, str, object, tuple[object, ...]]]:
    """``pyplot figure N`` for each figure pyplot's figure manager holds, the reference being
    its canvas's ``figure`` attribute (only when pyplot is already imported)."""
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    if helpers is None:
        return []
    roots: list[tuple[str, str, object, tuple[object, ...]]] = []
    for num, manager in list(helpers.Gcf.figs.items()):
        canvas = getattr(manager, "canvas", None)
        figure = getattr(canvas, "figure", None)
        if figure is not None:
            holders = (canvas, *(d for d in gc.get_referents(canvas) if type(d) is dict))
            roots.append((f"pyplot figure {num}", "pyplot", figure, holders))
    return roots
