"""HTML and text renderings of tables, shared by the magics and the explorer: human-readable
sizes (through :func:`views.format.for_display`), text left and numbers right, growth in red
and shrinkage in green, a definition on every header."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from .columns import header
from .format import for_display

COLORS = {"light": ("#b71c1c", "#1b5e20"), "dark": ("#ff8a80", "#81c784")}
"""(growth, shrinkage) per theme: at least 4.5:1 against the theme's background and the
striped rows (JupyterLab's own error and success colours are not, on its dark stripes)."""

STYLE = f"""<style>
.memsnap {{
  --memsnap-up: {COLORS["light"][0]};
  --memsnap-down: {COLORS["light"][1]};
}}
body[data-jp-theme-light="false"] .memsnap, body.vscode-dark .memsnap {{
  --memsnap-up: {COLORS["dark"][0]};
  --memsnap-down: {COLORS["dark"][1]};
}}
.memsnap .memsnap-grid {{
  border-collapse: collapse;
  font-family: var(--jp-code-font-family, monospace);
  font-size: var(--jp-code-font-size, 12px);
  color: var(--jp-ui-font-color1, #222);
}}
.memsnap .memsnap-grid th {{
  text-align: left;
  font-weight: 600;
  padding: 2px 10px;
  border-bottom: 1px solid var(--jp-border-color1, #bbb);
  white-space: nowrap;
}}
.memsnap .memsnap-grid th[title] {{ cursor: help; }}
.memsnap .memsnap-grid td {{ padding: 1px 10px; white-space: nowrap; text-align: left; }}
.memsnap .memsnap-grid tbody tr:nth-child(even) {{ background: rgba(127, 127, 127, 0.08); }}
.memsnap .memsnap-grid .num {{ text-align: right; }}
.memsnap .memsnap-grid td.wrap {{ white-space: normal; max-width: 60em; }}
.memsnap .memsnap-grid .up {{ color: var(--memsnap-up); font-weight: 600; }}
.memsnap .memsnap-grid .down {{ color: var(--memsnap-down); font-weight: 600; }}
.memsnap .memsnap-scroll {{ overflow-x: auto; max-width: 100%; }}
.memsnap .memsnap-clickable .memsnap-scroll {{ max-height: 30em; overflow-y: auto; }}
.memsnap .memsnap-clickable th[data-column], .memsnap .memsnap-clickable tbody tr {{
  cursor: pointer;
}}
.memsnap .memsnap-clickable tbody tr:hover {{ outline: 1px solid var(--jp-brand-color1, #1976d2); }}
.memsnap .memsnap-note {{ color: var(--jp-ui-font-color2, #666); }}
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
    first: int | None = 1,
    sides: tuple[str, str] | None = None,
    css_class: str = "memsnap-grid",
    empty: str = "(no rows)",
) -> str:
    """The rows as an HTML table; ``first`` numbers the first row (the page's offset + 1;
    None: no numbers), the sorted column's header carries an arrow, each header its
    definition as a tooltip; ``sides`` names the compared snapshots (``size (1)``)."""
    if not len(frame.columns):
        return f"<p class='memsnap-note'>{html.escape(empty)}</p>"
    shown = displayed(frame)
    numeric = {c: _numeric(frame[c]) for c in frame.columns}
    head = [] if first is None else ["<th class='num'>#</th>"]
    for c in frame.columns:
        arrow = (" ▲" if ascending else " ▼") if c == sort else ""
        cls = " class='num'" if numeric[c] else ""
        text, definition = header(str(c), sides)
        tip = f" title='{html.escape(definition, quote=True)}'" if definition else ""
        column = html.escape(str(c), quote=True)
        head.append(f"<th{cls} data-column='{column}'{tip}>{html.escape(text)}{arrow}</th>")
    signs = {
        c: np.sign(pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64))
        for c in frame.columns
        if numeric[c] and is_growth(str(c))
    }
    body = []
    for i in range(len(frame)):
        cells = [] if first is None else [f"<td class='num'>{first + i}</td>"]
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
        body.append(f"<tr data-row='{i}'>{''.join(cells)}</tr>")
    if not body:
        lead = "" if first is None else "<td></td>"
        body.append(
            f"<tr>{lead}<td colspan='{len(frame.columns)}' class='memsnap-note'>"
            f"{html.escape(empty)}</td></tr>"
        )
    return (
        f"<div class='memsnap-scroll'><table class='{css_class}'>"
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def text_table(
    frame: pd.DataFrame,
    first: int | None = 1,
    empty: str = "(no rows)",
    sides: tuple[str, str] | None = None,
) -> str:
    """The rows as plain text (sizes human readable), numbered from ``first`` (None: not)."""
    if not len(frame):
        return empty
    shown = displayed(frame)
    shown.columns = [header(str(c), sides)[0] for c in frame.columns]
    if first is None:
        return str(shown.to_string(index=False))
    shown.index = np.arange(first, first + len(frame))
    return str(shown.to_string())


class Table:
    """A DataFrame shown with a title: text for terminals, styled HTML for notebooks (the
    explorer's look, definitions as header tooltips). ``sides`` names the two snapshots a
    diff compares, for its ``_a``/``_b`` columns."""

    def __init__(
        self, frame: pd.DataFrame, title: str = "", sides: tuple[str, str] | None = None
    ) -> None:
        self.frame = frame
        self.title = title
        self.sides = sides

    def __repr__(self) -> str:
        body = text_table(self.frame, first=None, sides=self.sides)
        return f"{self.title}\n{body}" if self.title else body

    def _repr_html_(self) -> str:
        title = f"<p><b>{html.escape(self.title)}</b></p>" if self.title else ""
        table = html_table(self.frame, first=None, sides=self.sides)
        return f"{STYLE}<div class='memsnap'>{title}{table}</div>"
