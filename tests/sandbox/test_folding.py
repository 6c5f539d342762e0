"""Alarm folding end to end: the sandbox started with `--param DigestAfterMinutes=1`, a burst of 20
repeats of one alarm over SMTP, its clock running as EventBridge would run it. Each recipient gets the
first mail at once, one digest listing the 19 repeats within two minutes, and the recovery within a
second."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest

from sandbox.launch import Running, launch
from tests.support.sandbox import alarm, wait_for_outbox

pytestmark = pytest.mark.integration

RECIPIENTS = ("ops@example.com", "alice@example.com", "bob@example.org")
CODE = f"Email_Rxers_Code:[{','.join(RECIPIENTS)}]:Email_Rxers_Code:\n"
BODY = f"Pressure reading.\n{CODE}"
BURST = 20


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    data = tmp_path_factory.mktemp("folding")
    with launch(data, "--param", "DigestAfterMinutes=1", "--batch-window", "0") as started:
        yield started


def test_a_burst_is_one_first_mail_one_digest_and_a_prompt_recovery(running: Running) -> None:
    assert "alarm folding       on: first digest after 1 min" in running.output()
    started = time.monotonic()
    with running.smtp(timeout=30) as client:
        for n in range(BURST):
            client.send_message(alarm(running, f"storm-{n}", f"PROBLEM: Pump 3 pressure 9.{n} bar", BODY))
    digests = wait_for_outbox(
        running.data, lambda entries: any(e["subject"].startswith("Digest") for e in entries), 150
    )
    assert time.monotonic() - started < 120 + 10  # the digest's due time, plus the time to send the burst
    subjects = [e["subject"] for e in digests]
    assert subjects.count("PROBLEM: Pump 3 pressure 9.0 bar") == 1
    (digest,) = [e for e in digests if e["subject"].startswith("Digest")]
    assert digest["subject"] == "Digest, 19 repeats: PROBLEM: Pump 3 pressure 9.0 bar"
    text = (running.data / "outbox" / digest["file"]).read_text("utf-8", errors="replace")
    assert text.count("PROBLEM: Pump 3 pressure 9.") >= BURST  # the 19 rows (and the alarm itself)

    with running.smtp(timeout=30) as client:
        client.send_message(alarm(running, "recovered", "RECOVERY: Pump 3 pressure OK", BODY))
        accepted = time.monotonic()
    entries = wait_for_outbox(
        running.data, lambda entries: any(e["subject"].startswith("RECOVERY") for e in entries), 30
    )
    assert time.monotonic() - accepted <= 1.0  # relayed at once
    counts = Counter(address for e in entries for address in e["destinations"])
    assert counts == dict.fromkeys(RECIPIENTS, 3)  # first, digest, recovery: nothing else
