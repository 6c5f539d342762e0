"""The policy for the programs the end-to-end tests drive (tests/support/tools.py): a missing one fails
the test where apt-get could have installed it (CI runs `make browser`), and skips it only without apt-get."""

from __future__ import annotations

import pytest

from tests.support import tools

pytestmark = pytest.mark.unit


def _machine(monkeypatch: pytest.MonkeyPatch, *present: str) -> None:
    monkeypatch.setattr(tools.shutil, "which", lambda program: program if program in present else None)


def test_present_programs_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, "swaks", "jq")
    tools.require("swaks", "jq")
    assert tools.missing("swaks", "openssl") == ["openssl"]


def test_a_missing_program_fails_loudly_where_apt_get_could_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _machine(monkeypatch, "apt-get", "jq")
    with pytest.raises(pytest.fail.Exception, match=r"not installed: swaks, /usr/bin/chromedriver") as failed:
        tools.require("swaks", "jq", str(tools.CHROMEDRIVER))
    assert "`make browser` installs swaks chromium-driver with apt-get" in str(failed.value)


def test_a_missing_program_skips_only_without_apt_get(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, "jq")
    with pytest.raises(pytest.skip.Exception, match="no apt-get to install them: openssl"):
        tools.require("jq", "openssl")
