"""Snapshots under a memory limit: refused before they start, with one line that says why,
and the process (the kernel) lives on with its stored snapshots. Each case runs in its own
process under a real ``RLIMIT_AS`` (Linux)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import subprocess_env

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS as Linux has it")

LIMITED = """
import json, resource, psutil
import jupyter_memsnap, jupyter_memsnap.api  # everything a snapshot imports, before the limit
data = [[i] for i in range(1_000_000)]  # ~1 M objects: a snapshot needs ~60 MB
def limit(headroom):
    vms = psutil.Process().memory_info().vms
    resource.setrlimit(resource.RLIMIT_AS, (vms + headroom, resource.RLIM_INFINITY))
"""


def run(code: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LIMITED) + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_take_is_refused_under_the_address_space_limit_and_the_process_lives_on() -> None:
    result = run(
        """
        import jupyter_memsnap
        from jupyter_memsnap.capture import guard
        limit(40_000_000)
        try:
            jupyter_memsnap.take()
            outcome = "taken"
        except jupyter_memsnap.NotEnoughMemory as e:
            outcome = str(e)
        alive = sum(len(x) for x in data)
        print(json.dumps({"outcome": outcome, "alive": alive, "room": guard.room().limit}))
        """
    )
    assert result["room"] == "RLIMIT_AS"
    outcome = str(result["outcome"])
    assert outcome.startswith("not enough memory for a snapshot") and "RLIMIT_AS" in outcome
    assert "\n" not in outcome and "--force" in outcome
    assert result["alive"] == 1_000_000


def test_forced_take_under_the_limit_fails_cleanly_or_succeeds() -> None:
    # The walk itself meets the limit: every allocation it makes is checked.
    result = run(
        """
        import jupyter_memsnap
        limit(25_000_000)
        try:
            outcome = f"taken: {len(jupyter_memsnap.take(force=True)):,} objects"
        except MemoryError as e:
            outcome = f"{type(e).__name__}: {e}"
        print(json.dumps({"outcome": outcome, "alive": sum(len(x) for x in data)}))
        """
    )
    outcome = str(result["outcome"])
    assert outcome.startswith(("taken", "NotEnoughMemory: ran out of memory")), outcome
    assert result["alive"] == 1_000_000


def test_the_magic_refuses_in_one_line_and_keeps_the_stored_snapshots() -> None:
    result = run(
        """
        from IPython.core.error import UsageError
        from IPython.core.interactiveshell import InteractiveShell
        from IPython.utils.capture import capture_output
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "jupyter_memsnap")
        with capture_output():
            ip.run_line_magic("memsnap", "take -l before")
        limit(30_000_000)
        errors = []
        for line in ("take", "vars", "why --type list"):
            try:
                with capture_output():
                    ip.run_line_magic("memsnap", line)
                errors.append("")
            except UsageError as e:
                errors.append(str(e))
        magics = ip.magics_manager.registry["MemsnapMagics"]
        print(json.dumps({"errors": errors, "stored": [s.label for _, s in magics.store]}))
        """
    )
    for error in result["errors"]:  # type: ignore[union-attr]
        assert "not enough memory" in error and "\n" not in error, error
    assert result["stored"] == ["before"]
