"""The post-mortem directory of ``%memsnap auto on --save DIR``: the census after the last
cell that finished (``latest.memsnap``) and a marker naming the cell that was running
(``running.json``), both replaced atomically, so disk use stays bounded and a kernel killed
by the out-of-memory killer leaves a readable record."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass

LATEST = "latest.memsnap"
MARKER = "running.json"


@dataclass(frozen=True)
class RunningCell:
    """The cell that had started when the marker was written."""

    cell: int
    started: dt.datetime
    code: str  # its first line


def write_marker(directory: str, cell: int, code: str) -> None:
    """Record, atomically, that ``cell`` is starting."""
    first = next((line for line in code.splitlines() if line.strip()), "")[:200]
    payload = {"cell": cell, "started": dt.datetime.now().isoformat(), "code": first}
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".running-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f)
        os.replace(tmp, os.path.join(directory, MARKER))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_marker(directory: str) -> RunningCell | None:
    """The marker, or None when there is none or it cannot be read."""
    try:
        with open(os.path.join(directory, MARKER)) as f:
            data = json.load(f)
        return RunningCell(
            int(data["cell"]), dt.datetime.fromisoformat(data["started"]), str(data["code"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
