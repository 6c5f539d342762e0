"""Every message of CPython's own email test corpus (`Lib/test/test_email/data`) through the handler:
defects, odd charsets, broken multiparts and non-MIME mail all end classified, none crashes.

The corpus ships with the interpreter's `test` package where installed (not in every distribution):
when it is absent the test is skipped, not failed.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from tests.support.fuzzing import relay
from tests.support.world import World

CORPUS = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"
MESSAGES = sorted(CORPUS.glob("msg_*.txt")) if CORPUS.is_dir() else []
CODE = b"\nEmail_Rxers_Code:[corpus@example.com]:Email_Rxers_Code:\n"
SES = b"X-SES-Spam-Verdict: PASS\nX-SES-Virus-Verdict: PASS\n"  # as SES prepends them: scanned and clean


@pytest.mark.skipif(not MESSAGES, reason="this Python ships without Lib/test/test_email/data")
@pytest.mark.parametrize("path", MESSAGES, ids=[path.name for path in MESSAGES])
def test_each_corpus_message_is_classified(shared_world: World, path: Path) -> None:
    raw = path.read_bytes()
    as_is = relay(shared_world, f"incoming/corpus/{path.name}", raw)
    assert as_is.outcome in {"distributed", "fallback"}
    # The same message as SES would store it (verdicts above) with a recipient code appended to its last
    # body line: still exactly one outcome, and when it goes out, only to the coded recipient.
    coded = relay(shared_world, f"incoming/corpus-coded/{path.name}", SES + raw + CODE)
    if coded.outcome == "distributed":
        assert {a for sent in coded.sent for a in sent.destinations} <= {"corpus@example.com"}


def test_the_corpus_is_found_where_python_ships_it() -> None:
    """Guards the skip above: a CPython built from source (pyenv, python.org) has the corpus."""
    if not (Path(sysconfig.get_paths()["stdlib"]) / "test" / "__init__.py").exists():
        pytest.skip("this Python ships without its test package")
    assert len(MESSAGES) > 40
