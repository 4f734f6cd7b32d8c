"""%memsnap plot: figures with a PNG and text, and one-line errors."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import run
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output


@pytest.mark.parametrize("line", ["plot", "plot timeline", "plot diff 1 2", "plot types 1"])
def test_plots_display_a_png_with_text(ip: Any, line: str) -> None:
    ip.run_line_magic("memsnap", "take")
    run(ip, "grown = [bytearray(100_000) for _ in range(50)]")
    ip.run_line_magic("memsnap", "take")
    with capture_output() as out:
        ip.run_line_magic("memsnap", line)
    assert len(out.outputs) == 1
    data = out.outputs[0].data
    assert data["image/png"]
    assert "text/plain" in data


@pytest.mark.parametrize(
    "line", ["plot diff", "plot diff 1 2 3", "plot types 1 2", "plot timeline 1", "plot frob"]
)
def test_bad_plot_arguments_are_usage_errors(ip: Any, line: str) -> None:
    ip.run_line_magic("memsnap", "take")
    with pytest.raises(UsageError):
        ip.run_line_magic("memsnap", line)


def test_a_timeline_needs_something_to_plot(ip: Any) -> None:
    with pytest.raises(UsageError, match="nothing to plot"):
        ip.run_line_magic("memsnap", "plot")
