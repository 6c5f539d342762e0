"""What the sandbox's end-to-end tests share: mails a sensor would send, and what came out the other end
(the outbox index, the notices). Starting and stopping the sandbox is `sandbox.launch`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from sandbox.launch import ROOT, Running
from sandbox.outbox import Outbox, ses_sent_messages
from sandbox.web import data
from tests.support.world import World

SENDER = "sensor@plant.example.com"
SETTLE_TIMEOUT = 60


def mail(
    message_id: str, body: str, attachment: bytes | None = None, to: str = "", sender: str = SENDER
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = f"reading {message_id}"
    message["Message-ID"] = f"<{message_id}@plant.example.com>"
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(
            attachment, maintype="application", subtype="octet-stream", filename="reading.bin"
        )
    return message


def outbox(data: Path) -> list[dict[str, Any]]:
    """The outbox's index: one entry per mail SES sent, in order."""
    index = data / "outbox" / "index.jsonl"
    if not index.exists():
        return []
    return [json.loads(line) for line in index.read_text("utf-8").splitlines() if line]


def wait_for_outbox(
    data: Path, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float
) -> list[dict[str, Any]]:
    """The outbox's index once `predicate` holds for it; the test fails naming what went out if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = outbox(data)
        if predicate(entries):
            return entries
        time.sleep(0.02)
    pytest.fail(f"not in the outbox after {timeout} s: {[e['subject'] for e in outbox(data)]}")


def alarm(running: Running, name: str, subject: str, body: str) -> EmailMessage:
    """A sensor's alarm mail with this subject, to the address the sandbox's SMTP server accepts."""
    message = mail(name, body, None, running.state["smtp"]["recipients"][0])
    message.replace_header("Subject", subject)
    return message


def notices(data: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text("utf-8")) for p in sorted((data / "notices").glob("*.json"))]


def relayctl(running: Running, *argv: str) -> str:
    """relayctl against the running sandbox, as the README's "Against the sandbox" runs it."""
    environment = {
        **os.environ,
        "AWS_ENDPOINT_URL": running.state["endpoint"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": running.state["region"],
    }
    environment.pop("AWS_PROFILE", None)
    result = subprocess.run(
        [sys.executable, "-m", "relayctl", *argv],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


class NoNotices:
    """A notice queue that never holds a notice, for an outbox that only collects what SES sent."""

    def receive_message(self, **_: Any) -> dict[str, Any]:
        return {}


def view_over(world: World, data_dir: Path, **extra: Any) -> tuple[Outbox, data.Sources]:
    """An outbox collecting what SES sent in the world's account, and the web view's sources over it and
    the incoming bucket, with no queues; `extra` adds what a test's pages need (links, alarm_table)."""
    b = world.blueprint
    endpoint = b.download_url or ""
    outbox = Outbox(
        data_dir,
        NoNotices(),
        "notices-url",
        lambda: ses_sent_messages(b.account_id, b.region),
        lambda line: None,
        link_base=endpoint,
    )
    sources = data.Sources(
        s3=world.s3,
        sqs=None,
        bucket=world.incoming,
        prefix="incoming/",
        data_dir=data_dir,
        endpoint=endpoint,
        account_id=b.account_id,
        region=b.region,
        inbound_queue="",
        inbound_url="",
        dead_letter_queue=None,
        dead_letter_url=None,
        status=lambda: None,  # type: ignore[arg-type, return-value]
        outbox=outbox,
        **extra,
    )
    return outbox, sources
