"""HTML and text renderings of the explorer's tables: human-readable sizes (through
:func:`views.format.for_display`), growth in red and shrinkage in green."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ..views.format import for_display

GROWTH_COLOR = "#c62828"
SHRINK_COLOR = "#2e7d32"

STYLE = f"""<style>
.memsnap-explorer .memsnap-grid {{
  border-collapse: collapse;
  font-family: var(--jp-code-font-family, monospace);
  font-size: var(--jp-code-font-size, 12px);
  color: var(--jp-ui-font-color1, #222);
}}
.memsnap-explorer .memsnap-grid th {{
  text-align: left;
  font-weight: 600;
  padding: 2px 10px;
  border-bottom: 1px solid var(--jp-border-color1, #bbb);
  white-space: nowrap;
}}
.memsnap-explorer .memsnap-grid td {{ padding: 1px 10px; white-space: nowrap; }}
.memsnap-explorer .memsnap-grid tbody tr:nth-child(even) {{
  background: var(--jp-layout-color2, #f3f3f3);
}}
.memsnap-explorer .memsnap-grid .num {{ text-align: right; }}
.memsnap-explorer .memsnap-grid td.wrap {{ white-space: normal; max-width: 60em; }}
.memsnap-explorer .memsnap-grid .up {{ color: {GROWTH_COLOR}; font-weight: 600; }}
.memsnap-explorer .memsnap-grid .down {{ color: {SHRINK_COLOR}; font-weight: 600; }}
.memsnap-explorer .memsnap-scroll {{ overflow-x: auto; max-width: 100%; }}
.memsnap-explorer .memsnap-note {{ color: var(--jp-ui-font-color2, #666); }}
</style>"""

WRAP_COLUMNS = frozenset({"path", "fix", "shared_with", "held_by"})


def is_growth(column: str) -> bool:
    """Columns whose sign is a change: coloured red when positive, green when negative."""
    return column.endswith("_diff") or column.startswith("d_")


def _numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series.dtype)) and not pd.api.types.is_bool_dtype(
        series.dtype
    )


def displayed(frame: pd.DataFrame) -> pd.DataFrame:
    """``for_display`` applied to the numeric columns only: text columns whose names look
    like sizes (``shared_with``) stay as they are."""
    numeric = [c for c in frame.columns if _numeric(frame[c])]
    out = frame.astype(object).copy()
    if numeric:
        shown = for_display(frame[numeric])
        for c in numeric:
            out[c] = shown[c]
    if "id" in numeric:  # object ids (addresses) read best in hex, as Python prints them
        out["id"] = [f"{int(v):#x}" for v in frame["id"]]
    return out


def html_table(
    frame: pd.DataFrame,
    *,
    sort: str = "",
    ascending: bool = False,
    first: int = 1,
    css_class: str = "memsnap-grid",
    empty: str = "(no rows)",
) -> str:
    """The rows as an HTML table; ``first`` numbers the first row (the page's offset + 1),
    the sorted column's header carries an arrow."""
    if not len(frame.columns):
        return f"<p class='memsnap-note'>{html.escape(empty)}</p>"
    shown = displayed(frame)
    numeric = {c: _numeric(frame[c]) for c in frame.columns}
    head = ["<th class='num'>#</th>"]
    for c in frame.columns:
        arrow = (" ▲" if ascending else " ▼") if c == sort else ""
        cls = " class='num'" if numeric[c] else ""
        name = html.escape(str(c))
        head.append(f"<th{cls} data-column='{name}'>{name}{arrow}</th>")
    signs = {
        c: np.sign(pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64))
        for c in frame.columns
        if numeric[c] and is_growth(str(c))
    }
    body = []
    for i in range(len(frame)):
        cells = [f"<td class='num'>{first + i}</td>"]
        for j, c in enumerate(frame.columns):
            classes = []
            if numeric[c]:
                classes.append("num")
                sign = signs[c][i] if c in signs else 0.0
                if sign > 0:
                    classes.append("up")
                elif sign < 0:
                    classes.append("down")
            if c in WRAP_COLUMNS:
                classes.append("wrap")
            cls = f" class='{' '.join(classes)}'" if classes else ""
            cells.append(f"<td{cls}>{html.escape(str(shown.iat[i, j]))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    if not body:
        body.append(
            f"<tr><td></td><td colspan='{len(frame.columns)}' class='memsnap-note'>"
            f"{html.escape(empty)}</td></tr>"
        )
    return (
        f"<div class='memsnap-scroll'><table class='{css_class}'>"
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def text_table(frame: pd.DataFrame, first: int = 1, empty: str = "(no rows)") -> str:
    """The rows as plain text (sizes human readable), numbered from ``first``."""
    if not len(frame):
        return empty
    shown = displayed(frame)
    shown.index = np.arange(first, first + len(frame))
    text: str = shown.to_string()
    return text
