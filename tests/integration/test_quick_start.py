"""The README's quick start, run as a user runs it, so a renamed module cannot break a target silently.

`make demo` runs here in full. `make sandbox` is `python -m sandbox`, which the sandbox's end-to-end test
runs (tests/sandbox/test_end_to_end.py); this file checks that the target still names that module.
`make test` is what runs this file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)


def make(*arguments: str) -> subprocess.CompletedProcess[str]:
    """`make` with this interpreter's virtualenv as the Makefile's; `-o` keeps make from reinstalling it."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    command = ["make", f"VENV={VENV}", "-o", f"{VENV}/.installed", *arguments]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def quick_start_targets() -> list[str]:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return sorted(set(re.findall(r"`?make (\w[\w-]*)", section)))


def test_the_quick_start_names_only_targets_the_makefile_has() -> None:
    makefile = (ROOT / "Makefile").read_text("utf-8")
    targets = quick_start_targets()
    assert {"demo", "sandbox", "test"} <= set(targets)
    for target in targets:
        assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), target


def test_make_sandbox_runs_the_module_the_end_to_end_test_runs() -> None:
    dry = make("-n", "sandbox")
    assert dry.returncode == 0, dry.stderr
    assert f"{VENV}/bin/python -m sandbox" in dry.stdout


def test_make_demo_replays_every_sample_mail() -> None:
    result = make("demo")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    samples = sorted(p.name for p in (ROOT / "events" / "mails").glob("*.eml"))
    assert samples
    for name in samples:
        assert f"=== incoming/{name}" in result.stdout
    assert "distributed to" in result.stdout
    assert "link works:" in result.stdout
    assert "fallback notice:" in result.stdout
