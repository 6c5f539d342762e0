"""The sandbox as a user runs it: `python -m sandbox` in a subprocess, real SMTP with STARTTLS and AUTH,
and what comes out the other end: the outbox, the notices, the links, and no mail lost or doubled."""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.launch import ROOT, Running, launch
from sandbox.smtp import EICAR
from tests.support import sandbox as seen
from tests.support.sandbox import SETTLE_TIMEOUT, mail, relayctl

pytestmark = pytest.mark.integration

BURST = 200
ATTACHMENT = os.urandom(256 * 1024) + b"end of the reading"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    # Closed, as recommended for production: plant.example.com is the sandbox's default authenticated
    # domain; cameras.example.com is allowed but not authenticated.
    closed = ("--param", "AllowedSenders=@plant.example.com,@cameras.example.com")
    with launch(
        tmp_path_factory.mktemp("sandbox"), "--visibility-timeout", "2", "--batch-window", "0.2", *closed
    ) as started:
        yield started


@pytest.fixture(scope="module")
def delivered(running: Running) -> dict[str, Any]:
    """Send every kind of mail, wait until the pipeline is quiet, and gather what came out."""
    recipient = running.state["smtp"]["recipients"][0]
    sent = {
        "normal": mail(
            "normal",
            "Pump 3 pressure high.\nEmail_Rxers_Code:[alice@example.com,bob@example.org]:Email_Rxers_Code:\n",
            ATTACHMENT,
            recipient,
        ),
        "no-code": mail("no-code", "Nobody is named in this mail.\n", None, recipient),
        "unauthenticated": mail(
            "unauthenticated",
            "Email_Rxers_Code:[alice@example.com]:Email_Rxers_Code:\n",
            None,
            recipient,
            sender="cam-9@cameras.example.com",
        ),
        "virus": mail(
            "virus",
            EICAR.decode() + "\nEmail_Rxers_Code:[alice@example.com]:Email_Rxers_Code:\n",
            None,
            recipient,
        ),
    }
    for i in range(BURST):
        body = f"Burst reading {i}\nEmail_Rxers_Code:[ops@example.com]:Email_Rxers_Code:\n"
        sent[f"burst-{i}"] = mail(f"burst-{i}", body, None, recipient)
    with running.smtp(timeout=30) as client:
        for message in sent.values():
            client.send_message(message)

    sqs = running.client("sqs")
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        outbox = seen.outbox(running.data)
        notices = seen.notices(running.data)
        attributes = sqs.get_queue_attributes(
            QueueUrl=running.state["inbound_queue_url"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        in_queue = int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )
        if len(outbox) + len(notices) >= len(sent) and in_queue == 0:
            break
        if time.monotonic() > deadline:
            pytest.fail(
                f"{len(outbox)} sent + {len(notices)} notices of {len(sent)} mails, {in_queue} still queued:\n"
                + running.output()[-4000:]
            )
        time.sleep(0.25)
    time.sleep(0.5)  # anything late (a doubled send) would show up now
    return {"sent": sent, "outbox": seen.outbox(running.data), "notices": seen.notices(running.data)}


def _bare(message_id: str) -> str:
    return message_id.strip().strip("<>").partition("@")[0]


def test_every_accepted_mail_ends_once_distributed_notified_or_dead_lettered(
    running: Running, delivered: dict[str, Any]
) -> None:
    distributed = [_bare(m["original_message_id"]) for m in delivered["outbox"]]
    notified = [_bare(n["notice"]["message_id"]) for n in delivered["notices"]]
    dlq = running.client("sqs").receive_message(
        QueueUrl=running.state["dead_letter_queue_url"], MaxNumberOfMessages=10
    )
    dead_lettered = [m["MessageId"] for m in dlq.get("Messages", [])]
    ended = Counter(distributed + notified)
    assert {k: v for k, v in ended.items() if v > 1} == {}, "a mail ended twice"
    assert set(ended) == set(delivered["sent"]), f"lost: {set(delivered['sent']) - set(ended)}"
    assert dead_lettered == []
    stored = running.client("s3").list_objects_v2(
        Bucket=running.state["environment"]["INCOMING_BUCKET"], Prefix="incoming/"
    )
    assert stored["KeyCount"] == len(delivered["sent"])


def test_a_normal_mail_is_distributed_with_a_working_link(delivered: dict[str, Any]) -> None:
    (normal,) = [m for m in delivered["outbox"] if _bare(m["original_message_id"]) == "normal"]
    assert sorted(normal["destinations"]) == ["alice@example.com", "bob@example.org"]
    assert normal["subject"] == "reading normal"
    (link,) = normal["links"]
    with urllib.request.urlopen(link, timeout=10) as response:  # noqa: S310 - the sandbox's own endpoint
        assert response.read() == ATTACHMENT


def test_the_link_is_the_download_function_and_answers_revocation_at_once(
    running: Running, delivered: dict[str, Any]
) -> None:
    (normal,) = [m for m in delivered["outbox"] if _bare(m["original_message_id"]) == "normal"]
    (link,) = normal["links"]
    assert link.startswith(running.state["download"]["url"])
    bucket = ["--attachments-bucket", running.state["environment"]["ATTACHMENTS_BUCKET"]]
    relayctl(running, "revoke", *bucket, "--url", link)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(link, timeout=10)  # noqa: S310 - the sandbox's own endpoint
    assert refused.value.code == 410
    assert "withdrawn" in refused.value.read().decode()
    relayctl(running, "unrevoke", *bucket, "--url", link)
    with urllib.request.urlopen(link, timeout=10) as response:  # noqa: S310
        assert response.status == 200
        assert response.read() == ATTACHMENT
    secret = running.state["download"]["link_key_secret_arn"]
    assert "retired  -" in relayctl(running, "rotate-link-key", "--link-key-secret", secret)
    with urllib.request.urlopen(link, timeout=10) as response:  # noqa: S310 - k0 is now the previous key
        assert response.read() == ATTACHMENT
    tampered = link.replace("exp=", "exp=1")
    with pytest.raises(urllib.error.HTTPError) as forbidden:
        urllib.request.urlopen(tampered, timeout=10)  # noqa: S310
    assert forbidden.value.code == 403
    served = [json.loads(line) for line in running.output().splitlines() if '"Downloads"' in line]
    assert [r["Outcome"] for r in served][-5:] == ["served", "revoked", "served", "served", "forbidden"]
    # The function's log lines never carry a signature (the outbox echo shows the link on purpose).
    logged = [line for line in running.output().splitlines() if line.startswith("{")]
    assert logged
    assert not [line for line in logged if link.rpartition("sig=")[2] in line]


def test_the_burst_is_distributed_to_its_recipient(delivered: dict[str, Any]) -> None:
    burst = [m for m in delivered["outbox"] if _bare(m["original_message_id"]).startswith("burst-")]
    assert len(burst) == BURST
    assert all(m["destinations"] == ["ops@example.com"] and m["links"] == [] for m in burst)


def test_no_code_virus_and_unauthenticated_becomenotices(delivered: dict[str, Any]) -> None:
    notices = {_bare(n["notice"]["message_id"]): n["notice"] for n in delivered["notices"]}
    reasons = {name: notice["reason"] for name, notice in notices.items()}
    assert reasons == {
        "no-code": "no_recipients",
        "virus": "virus",
        "unauthenticated": "sender_not_authenticated",
    }
    assert "spf=none, dkim=none, dmarc=none" in notices["unauthenticated"]["detail"]


def test_the_smtp_front_door_refuses_other_recipients(running: Running) -> None:
    with running.smtp(timeout=30) as client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.send_message(mail("stranger", "hello\n", None, "someone-else@relay.example.com"))
    ((code, _),) = refused.value.recipients.values()
    assert code == 550


def test_status_reports_the_queues_and_the_burst_alarm(running: Running, delivered: dict[str, Any]) -> None:
    settled = time.time()
    status_file = running.data / "status.json"
    while json.loads(status_file.read_text("utf-8"))["time"] < settled:  # refreshed every two seconds
        time.sleep(0.2)
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "status", "--data-dir", str(running.data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "0 waiting, 0 in flight" in result.stdout
    assert "dead-letter queue" in result.stdout
    firing = [line for line in result.stdout.splitlines() if "FIRING" in line]
    # The burst is over the template's inbound-rate threshold (180 mails in 5 minutes) and nothing else.
    assert len(firing) == 1
    assert "FIRING (NumberOfMessagesSent = " in firing[0]
    # The same evaluation is set on the alarms in moto, so relayctl status against the sandbox agrees.
    queues = (
        "--queue-url",
        running.state["inbound_queue_url"],
        "--dlq-url",
        running.state["dead_letter_queue_url"],
    )
    shown = relayctl(running, "status", *queues)
    states = {
        name: state for state, name in re.findall(r"^alarm\s+(\S+)\s+sandbox-(\S+) ", shown, re.MULTILINE)
    }
    assert states == {"InboundRateAlarm": "ALARM", "DeadLetterAlarm": "OK", "OldestMessageAlarm": "OK"}, shown
    alarms = running.client("cloudwatch").describe_alarms()["MetricAlarms"]
    reasons = {a["AlarmName"].removeprefix("sandbox-"): (a["StateValue"], a["StateReason"]) for a in alarms}
    assert reasons["BounceRateAlarm"] == (
        "INSUFFICIENT_DATA",
        "sandbox: Reputation.BounceRate is not emulated",
    )
    assert reasons["InboundRateAlarm"][1].startswith(
        "sandbox's evaluation of the current value: NumberOfMessagesSent = "
    )


def test_status_counts_mails_by_outcome_and_reason_from_the_functions_metrics(
    running: Running, delivered: dict[str, Any]
) -> None:
    settled = time.time()
    status_file = running.data / "status.json"
    while json.loads(status_file.read_text("utf-8"))["time"] < settled:
        time.sleep(0.2)
    mails = json.loads(status_file.read_text("utf-8"))["mails"]
    assert mails["outcomes"] == {"distributed": BURST + 1, "fallback": 3}
    assert mails["reasons"] == {"no_recipients": 1, "virus": 1, "sender_not_authenticated": 1}
    assert 0 < mails["relay_latency_median_ms"] < SETTLE_TIMEOUT * 1000
    shown = subprocess.run(
        [sys.executable, "-m", "sandbox", "status", "--data-dir", str(running.data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert (
        f"{BURST + 1} distributed, 3 fallback (no_recipients 1, sender_not_authenticated 1, virus 1), latency median "
        in shown
    )


def test_ctrl_c_stops_it_cleanly_even_with_a_client_connected(
    running: Running, delivered: dict[str, Any]
) -> None:
    idle = running.smtp(timeout=30)
    idle.noop()
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(timeout=15) == 0
    assert running.output().rstrip().endswith("stopped")
    assert not (running.data / "sandbox.json").exists()
