"""A table that reports clicks: a header click asks to sort by that column, a row click to
show that row's details. ipywidgets' HTML widget cannot send events back, so this is an
anywidget (a few lines of JavaScript shipped with the package, no build step, rendered by
anywidget's front-end extension in JupyterLab, Notebook 7 and VS Code)."""

from __future__ import annotations

import anywidget
import traitlets

_ESM = """
function render({ model, el }) {
  const draw = () => { el.innerHTML = model.get("value"); };
  draw();
  model.on("change:value", draw);
  el.addEventListener("click", (event) => {
    const head = event.target.closest("th[data-column]");
    const row = event.target.closest("tbody tr[data-row]");
    let click = null;
    if (head && el.contains(head)) click = { kind: "header", column: head.dataset.column };
    else if (row && el.contains(row)) click = { kind: "row", row: Number(row.dataset.row) };
    if (!click) return;
    click.n = (model.get("clicked").n || 0) + 1;  // the same click twice is still a change
    model.set("clicked", click);
    model.save_changes();
  });
}
export default { render };
"""


class Grid(anywidget.AnyWidget):
    """``value``: the table's HTML (``views.html.html_table``: headers carry
    ``data-column``, rows ``data-row``). ``clicked``: the last click, ``{"kind": "header",
    "column": name}`` or ``{"kind": "row", "row": index on the page}``, with a counter."""

    _esm = _ESM
    value = traitlets.Unicode("").tag(sync=True)
    clicked = traitlets.Dict().tag(sync=True)
