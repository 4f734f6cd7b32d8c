"""Figures pyplot keeps open, as roots: ``del fig`` frees nothing until ``plt.close(fig)``."""

from __future__ import annotations

import sys


def open_figures() -> list[tuple[str, str, object, tuple[object, ...]]]:
    """``pyplot figure N`` for each figure pyplot keeps open (only when pyplot is already
    imported): its figure manager, the reference being pyplot's figure list. The manager,
    not the figure, so that what the root alone keeps is what ``plt.close`` frees: the
    canvas, its renderer's buffer (which the figure's texts share) and the figure."""
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    if helpers is None:
        return []
    figs = helpers.Gcf.figs
    return [
        (f"pyplot figure {num}", "pyplot", manager, (figs,)) for num, manager in list(figs.items())
    ]
