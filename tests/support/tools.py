"""The programs the end-to-end tests drive: Debian's Chromium and its driver, swaks, jq, curl and openssl.

`make browser` (part of `make test`, so of CI) installs them with apt-get when one is missing. So where
apt-get exists a missing program is a broken set-up and fails the test, naming it; only where there is no
apt-get (the machine `make browser` could not set up, and said so) does the test skip, saying why.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")  # a fixed path: Selenium Manager never downloads a driver
APT = {str(CHROMIUM): "chromium", str(CHROMEDRIVER): "chromium-driver"}  # program -> Debian package


def missing(*programs: str) -> list[str]:
    """The programs (names on PATH, or absolute paths) that are not there to run."""
    return [program for program in programs if shutil.which(program) is None]


def require(*programs: str) -> None:
    """Return when every program is there; else fail where apt-get could have installed them, or skip."""
    absent = missing(*programs)
    if not absent:
        return
    packages = " ".join(APT.get(program, program) for program in absent)
    if shutil.which("apt-get") is not None:
        pytest.fail(f"not installed: {', '.join(absent)} (`make browser` installs {packages} with apt-get)")
    pytest.skip(f"not installed and no apt-get to install them: {', '.join(absent)} ({packages})")
