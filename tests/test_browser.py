"""The explorer in a real JupyterLab, driven through headless Chromium by Playwright.

JupyterLab runs on loopback in a temporary root; a notebook loads the extension, builds some
data between two snapshots and displays the explorer. The test runs all cells, waits for the
widgets to render, types in the filter, changes the grouping and the baseline, picks a row,
and reads the table from the DOM each time. Screenshots go to ``test-output/``
(``MEMSNAP_DOCS_SCREENSHOT=1`` also copies the explorer's to ``docs/explorer.png``).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from browser_utils import (
    CHROMIUM,
    copy_for_docs,
    jupyter_lab,
    missing_requirements,
    output_dir,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CELLS = [
    "%load_ext jupyter_memsnap\nimport numpy as np\nimport pandas as pd\nimport jupyter_memsnap.ui",
    "%memsnap take -l start",
    "frame = pd.DataFrame({'value': np.random.default_rng(0).normal(size=300_000),\n"
    "                      'label': [f'row-{i}' for i in range(300_000)]})\n"
    "matrix = np.ones((1000, 1000))\n"
    "records = [{'id': i, 'name': f'user-{i}'} for i in range(50_000)]",
    "%memsnap take -l loaded",
    "display(jupyter_memsnap.ui.browse())",
]

EXPLORER = ".memsnap-explorer:not(.memsnap-static)"
TABLE_ROWS = f"{EXPLORER} .memsnap-table table.memsnap-grid tbody tr"
KERNEL_IDLE = """() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session
    && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle';
}"""
COLUMN_TEXTS = """([selector, column]) => {
  const table = document.querySelector(selector);
  if (!table) return null;
  const heads = [...table.querySelectorAll('thead th')].map(th => th.dataset.column || '');
  const k = heads.indexOf(column);
  if (k < 0) return null;
  return [...table.querySelectorAll('tbody tr')].map(tr => tr.children[k].textContent);
}"""
GRID = f"{EXPLORER} .memsnap-table table.memsnap-grid"
CONTRAST = """(selector) => {
  const parse = c => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(',').map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const lum = ({r, g, b}) => {
    const f = v => (v /= 255) <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {  // every ancestor's background, composited over white
    const layers = [];
    for (let e = el; e; e = e.parentElement) layers.push(getComputedStyle(e).backgroundColor);
    let c = {r: 255, g: 255, b: 255};
    for (const layer of layers.reverse()) {
      const p = parse(layer);
      if (!p || p.a === 0) continue;
      c = {r: p.r * p.a + c.r * (1 - p.a), g: p.g * p.a + c.g * (1 - p.a),
           b: p.b * p.a + c.b * (1 - p.a)};
    }
    return c;
  };
  const cells = [...document.querySelectorAll(`${selector} td.up, ${selector} td.down`)];
  const ratios = cells.map(td => {
    const [hi, lo] = [lum(parse(getComputedStyle(td).color)), lum(background(td))]
      .sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  });
  return ratios.length ? Math.min(...ratios) : null;
}"""


@pytest.fixture(scope="module")
def requirements() -> None:
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)


def test_explorer_in_jupyterlab(requirements: None, tmp_path: Path) -> None:
    from playwright.sync_api import Page, sync_playwright

    started = time.monotonic()

    def phase(name: str) -> None:
        """Printed with the time since the start: pytest shows it when the test fails."""
        print(f"{time.monotonic() - started:6.1f} s  {name}")

    root = tmp_path / "root"
    root.mkdir()
    write_notebook(root / "explorer.ipynb", CELLS)
    out = output_dir()

    def column(page: Page, name: str) -> list[str]:
        texts: list[str] | None = page.evaluate(COLUMN_TEXTS, [GRID, name])
        assert texts is not None, f"no column {name!r} in the table"
        return texts

    def wait_column(page: Page, name: str, predicate: str) -> list[str]:
        """Wait until every cell of the column satisfies ``predicate`` (JS, on ``t``),
        and there is at least one row."""
        page.wait_for_function(
            f"""([selector, column]) => {{
                const texts = ({COLUMN_TEXTS})([selector, column]);
                return !!texts && texts.length > 0 && texts.every(t => {predicate});
            }}""",
            arg=[GRID, name],
            timeout=60_000,
        )
        return column(page, name)

    with jupyter_lab(root, tmp_path) as lab, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 2000})
        try:
            page.set_default_timeout(30_000)
            phase("open the notebook")
            page.goto(f"{lab.url}/lab/tree/explorer.ipynb?reset")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.wait_for_function(KERNEL_IDLE, timeout=60_000)
            page.evaluate("window.jupyterapp.commands.execute('application:toggle-left-area')")
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

            # the widgets render: the summary and a table of types, largest first
            phase("the widgets render")
            page.wait_for_selector(TABLE_ROWS, timeout=60_000)
            summary = page.inner_text(f"{EXPLORER} .memsnap-summary")
            assert "snapshot 2 'loaded'" in summary and "objects" in summary, summary
            types = column(page, "type")
            assert 5 <= len(types) <= 20  # one page, never more
            assert "str" in types

            # type in the filter: only ndarray is left
            phase("type in the filter")
            page.locator(f"{EXPLORER} .memsnap-filter input").press_sequentially("NDARR", delay=30)
            assert wait_column(page, "type", "t === 'ndarray'") == ["ndarray"]

            # group by variable: the table changes to the notebook's variables
            phase("group by variable")
            page.locator(f"{EXPLORER} .memsnap-filter input").fill("")
            page.locator(f"{EXPLORER} .memsnap-group select").select_option(label="variable")
            names = wait_column(page, "name", "['frame', 'matrix', 'records'].includes(t)")
            assert set(names) == {"frame", "matrix", "records"}

            # click the first row: its details, the paths to root name the variable, with
            # the fix, and what it refers to
            phase("click a row")
            page.locator(f"{GRID} tbody tr[data-row='0']").click()
            page.wait_for_selector(f"{EXPLORER} .memsnap-paths table.memsnap-grid tbody tr")
            paths = page.inner_text(f"{EXPLORER} .memsnap-paths")
            assert f"{names[0]} → " in paths and f"del {names[0]}" in paths, paths
            page.wait_for_selector(f"{EXPLORER} .memsnap-contains table.memsnap-grid tbody tr")
            page.screenshot(path=str(out / "explorer-variables-page.png"), full_page=True)

            # click a header: sorted by it, largest first; again: smallest first
            phase("click a header")
            page.locator(f"{GRID} th[data-column='size']").click()
            page.wait_for_selector(f"{GRID} th[data-column='size']:has-text('▼')")
            page.locator(f"{GRID} th[data-column='size']").click()
            page.wait_for_selector(f"{GRID} th[data-column='size']:has-text('▲')")
            assert page.locator(f"{EXPLORER} .memsnap-sort select").input_value() == "size"

            # compare to snapshot 1: a diff by type, growth first and in red
            phase("compare to snapshot 1")
            page.locator(f"{EXPLORER} .memsnap-baseline select").select_option(index=1)
            page.locator(f"{EXPLORER} .memsnap-group select").select_option(label="type")
            page.wait_for_selector(f"{GRID} th[data-column='size_diff']")
            growth = page.locator(f"{GRID} tbody tr td.up")
            assert growth.count() > 0
            assert "compared to snapshot 1 'start'" in page.inner_text(
                f"{EXPLORER} .memsnap-summary"
            )

            # just my code, ten rows a page, the top row's objects and paths: the picture
            phase("just my code, ten rows")
            page.locator(f"{EXPLORER} .memsnap-page-size select").select_option(label="10")
            page.locator(f"{EXPLORER} .memsnap-mine input").check()
            types = wait_column(page, "type", "!['function', 'code', 'module'].includes(t)")
            assert len(types) <= 10 and "ndarray" in types, types
            rows = page.locator(f"{EXPLORER} .memsnap-row select").evaluate(
                "select => [...select.options].map(option => option.value)"  # text has nbsp
            )
            pick = next(i for i, text in enumerate(rows) if "ndarray" in text.split())
            page.locator(f"{EXPLORER} .memsnap-row select").select_option(index=pick)
            page.wait_for_selector(f"{EXPLORER} .memsnap-paths table.memsnap-grid tbody tr")
            paths = page.inner_text(f"{EXPLORER} .memsnap-paths")
            # the largest new array: the object array under frame's strings (or matrix)
            held = re.search(r"\b(frame|matrix)\S* → [^\n]*ndarray", paths)
            assert held and f"del {held.group(1)}" in paths, paths

            explorer = page.locator(EXPLORER)
            assert explorer.count() == 1  # the live widget, not the static fallback
            explorer.scroll_into_view_if_needed()
            shot = out / "explorer.png"
            explorer.screenshot(path=str(shot))
            page.screenshot(path=str(out / "explorer-page.png"), full_page=True)
            copy_for_docs(shot)

            # the plots tab: the timeline and the growth bars, as PNG images
            phase("the plots tab")
            explorer.locator(".lm-TabBar-tab", has_text="Plots").click()
            page.wait_for_function(
                f"""() => [...document.querySelectorAll('{EXPLORER} img')]
                    .filter(img => img.naturalWidth > 300).length === 2"""
            )
            explorer.screenshot(path=str(out / "explorer-plots.png"))

            # growth and shrinkage readable on every row, in the light and the dark theme
            phase("contrast in both themes")
            explorer.locator(".lm-TabBar-tab", has_text="Table").click()
            page.wait_for_selector(f"{GRID} tbody tr td.up")
            light = page.evaluate(CONTRAST, GRID)
            assert light is not None and light >= 4.5, light
            page.evaluate(
                "window.jupyterapp.commands.execute("
                "'apputils:change-theme', {theme: 'JupyterLab Dark'})"
            )
            page.wait_for_selector("body[data-jp-theme-light='false']", state="attached")
            page.wait_for_function(f"() => ({CONTRAST})({GRID!r}) !== {light!r}", timeout=30_000)
            dark = page.evaluate(CONTRAST, GRID)
            assert dark is not None and dark >= 4.5, dark
            explorer.scroll_into_view_if_needed()
            shot = out / "explorer-dark.png"
            explorer.screenshot(path=str(shot))
            copy_for_docs(shot)

            # saved, and reopened after the kernel is gone: the static table, no error
            phase("reopen without the kernel")
            page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
            page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')", timeout=30_000)
            page.evaluate("window.jupyterapp.serviceManager.sessions.shutdownAll()")
            page.goto(f"{lab.url}/lab/tree/explorer.ipynb")
            page.wait_for_selector(".memsnap-fallback .memsnap-static", timeout=60_000)
            page.wait_for_function(KERNEL_IDLE, timeout=60_000)  # a new kernel: no models
            fallback = page.locator(".memsnap-fallback .memsnap-static")
            assert fallback.is_visible()
            assert "snapshot 2 'loaded'" in fallback.inner_text()
            assert page.locator(EXPLORER).count() == 0
            assert not page.get_by_text("model not found").is_visible()
            page.screenshot(path=str(out / "explorer-reopened.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(out / "explorer-failure.png"), full_page=True)
            (out / "explorer-failure.html").write_text(page.content())
            raise
        finally:
            browser.close()
    assert time.monotonic() - started < 150
