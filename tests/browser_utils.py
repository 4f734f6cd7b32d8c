"""Helpers for the real-browser tests: a JupyterLab server on loopback in a temporary root,
a notebook written from cell sources, and what the browser needs to be found.

Playwright drives Debian's ``/usr/bin/chromium`` (``executable_path``): it never downloads a
browser of its own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = os.environ.get("MEMSNAP_CHROMIUM", "/usr/bin/chromium")
SERVER_START_TIMEOUT = 60.0

LAB_SETTINGS = {
    # no "would you like to receive news?" toast over the notebook, no update check
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def missing_requirements() -> str | None:
    """Why the browser test cannot run here (None: it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; no `playwright install`)"
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    if importlib.util.find_spec("jupyterlab") is None:
        return "jupyterlab is not installed"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_notebook(path: Path, cells: Sequence[str]) -> None:
    """A notebook of code cells (nbformat 4) with the default Python 3 kernel."""
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"cell-{i}",
                "metadata": {},
                "outputs": [],
                "source": source,
            }
            for i, source in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1))


@dataclass
class Lab:
    """A running JupyterLab: its base URL, root folder and process."""

    url: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextlib.contextmanager
def jupyter_lab(root: Path, home: Path) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 (a free port), no token, no password, serving ``root``;
    its settings, runtime files and workspaces live under ``home``. Stopped on exit, with
    the kernels it started."""
    port = free_port()
    settings = home / "lab-settings"
    for plugin, values in LAB_SETTINGS.items():
        package, name = plugin.rsplit("/", 1)
        target = settings / package / f"{name}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    env = dict(os.environ)
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        PYTHONUNBUFFERED="1",
    )
    log = home / "jupyter-lab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",  # ServerApp.token, deprecated since jupyter_server 2
        "--ServerApp.password=",
        "--ServerApp.allow_root=True",  # CI runs as root
        "--ServerApp.disable_check_xsrf=True",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not _ready(url):
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({process.returncode}):\n{log.read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"jupyter lab did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield Lab(url, root, process, log)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the server then shuts its kernels down), SIGKILL to the group if stuck."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def output_dir() -> Path:
    """``test-output/`` at the repository root (ignored by git)."""
    path = Path(__file__).resolve().parent.parent / "test-output"
    path.mkdir(exist_ok=True)
    return path


def copy_for_docs(screenshot: Path) -> Path | None:
    """With ``MEMSNAP_DOCS_SCREENSHOT=1``, copy the screenshot to ``docs/`` (same name)."""
    if os.environ.get("MEMSNAP_DOCS_SCREENSHOT") != "1":
        return None
    target = Path(__file__).resolve().parent.parent / "docs" / screenshot.name
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(screenshot, target)
    return target
