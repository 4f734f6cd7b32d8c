"""Helpers for the front-end tests: read back the HTML tables the magics display, and drive
a real ipykernel (started with this interpreter) through jupyter_client."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

# ----------------------------------------------------------------------------- HTML tables


class _TableParser(HTMLParser):
    """Collects the cells of every <tr> of the first <table>, as (tag, text) pairs; a header
    cell that names its column (``data-column``) gives that name, not the text shown."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[str, str]]] = []
        self._row: list[tuple[str, str]] | None = None
        self._cell: tuple[str, list[str]] | None = None
        self._column: str | None = None
        self._tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._tables += 1
        if self._tables != 1:
            return
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = (tag, [])
            self._column = dict(attrs).get("data-column") if tag == "th" else None

    def handle_endtag(self, tag: str) -> None:
        if self._tables != 1:
            return
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            text = self._column or "".join(self._cell[1]).strip()
            self._row.append((self._cell[0], text))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[1].append(data)


def html_table(html: str) -> list[dict[str, str]]:
    """The rows of a pandas ``to_html`` table as dicts (column name -> cell text).

    With an index, pandas starts the header with an empty cell and each row with a <th>
    holding the index label; both are dropped here. Without one (``index=False``) every
    header cell names a column and every body cell is a <td>.
    """
    parser = _TableParser()
    parser.feed(html)
    assert parser.rows, f"no table in {html[:200]!r}"
    header, *body = parser.rows
    columns = [text for _, text in header]
    has_index = (bool(body) and body[0][0][0] == "th") or (bool(columns) and columns[0] == "")
    if has_index:
        columns = columns[1:]
    out = []
    for row in body:
        if [text for _, text in row if text] == ["(no rows)"]:
            continue  # the note an empty table shows across its columns
        cells = [text for _, text in (row[1:] if has_index else row)]
        assert len(cells) == len(columns), (columns, row)
        out.append(dict(zip(columns, cells, strict=True)))
    return out


# ----------------------------------------------------------------------------- kernels


def write_python3_kernelspec(root: Path) -> Path:
    """A ``python3`` kernelspec under ``root/kernels`` that runs *this* interpreter.

    Put ``root`` first on JUPYTER_PATH and ``kernel_name="python3"`` resolves to it, whatever
    other python3 kernelspecs the machine has.
    """
    spec_dir = root / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (jupyter_memsnap tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return root


@dataclass
class Execution:
    """What one execute request produced: the reply and the iopub messages of the cell."""

    reply: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.reply["content"]["status"])

    @property
    def execution_count(self) -> int:
        return int(self.reply["content"]["execution_count"])

    def of_type(self, *msg_types: str) -> list[dict[str, Any]]:
        return [m["content"] for m in self.messages if m["msg_type"] in msg_types]

    @property
    def displays(self) -> list[dict[str, Any]]:
        """The mime bundles of display_data and execute_result messages."""
        return [c["data"] for c in self.of_type("display_data", "execute_result")]

    @property
    def stdout(self) -> str:
        return "".join(c["text"] for c in self.of_type("stream") if c["name"] == "stdout")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.of_type("error")


class KernelSession:
    """A real ipykernel started through jupyter_client, shut down by :meth:`close`."""

    def __init__(self, jupyter_path: Path, workdir: Path, ipython_dir: Path) -> None:
        from jupyter_client.manager import start_new_kernel

        env = dict(os.environ)
        env["JUPYTER_PATH"] = os.pathsep.join(
            [str(jupyter_path), *filter(None, [os.environ.get("JUPYTER_PATH")])]
        )
        env["IPYTHONDIR"] = str(ipython_dir)
        saved = os.environ.get("JUPYTER_PATH")
        # The kernelspec is looked up in this process: JUPYTER_PATH must be set here too.
        os.environ["JUPYTER_PATH"] = env["JUPYTER_PATH"]
        try:
            self.km, self.kc = start_new_kernel(
                startup_timeout=60, kernel_name="python3", env=env, cwd=str(workdir)
            )
        finally:
            if saved is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = saved

    def execute(self, code: str, timeout: float = 60) -> Execution:
        messages: list[dict[str, Any]] = []
        reply = self.kc.execute_interactive(
            code, output_hook=messages.append, timeout=timeout, store_history=True
        )
        return Execution(reply, messages)

    def close(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=True)
