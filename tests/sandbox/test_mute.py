"""Muting an alarm from its mail, end to end in the sandbox: an alarm over SMTP, its mute link opened over
HTTP at the sandbox's download server (the page, no mute), the page's button pressed (muted), three
repeats folded while nothing goes out, then `relayctl alarms unmute` and the digest that lists them."""

from __future__ import annotations

import email
import email.policy
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sandbox.launch import Running, launch
from tests.support.muting import fingerprint_of, form_of, mute_links, origin_of, retarget
from tests.support.sandbox import alarm, outbox, relayctl, wait_for_outbox

pytestmark = pytest.mark.integration

RECIPIENTS = ("ops@example.com", "alice@example.com", "bob@example.org")
CODE = f"Email_Rxers_Code:[{','.join(RECIPIENTS)}]:Email_Rxers_Code:\n"
BODY = f"Motion in the yard.\n{CODE}"
SUBJECT = "ALARM: camera 4 motion in yard"
USER_AGENT = "Mozilla/5.0 (sandbox test)"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    data = tmp_path_factory.mktemp("mute")
    with launch(data, "--batch-window", "0") as started:
        yield started


def sent_message(data: Path, entry: dict[str, Any]) -> EmailMessage:
    raw = (data / "outbox" / entry["file"]).read_bytes()
    message = email.message_from_bytes(raw, _class=EmailMessage, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def http(
    method: str, url: str, body: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    request = urllib.request.Request(  # noqa: S310 - the sandbox's own download server
        url, data=body.encode() if body is not None else None, method=method, headers=headers or {}
    )
    request.add_header("User-Agent", USER_AGENT)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), response.read().decode("utf-8")
    except urllib.error.HTTPError as refused:
        return int(refused.code), refused.read().decode("utf-8")


def table_options(running: Running) -> list[str]:
    return ["--incidents-table", running.state["environment"]["INCIDENTS_TABLE"]]


def folded_rows(running: Running, fingerprint: str) -> int:
    shown = json.loads(relayctl(running, "alarms", "show", fingerprint, "--json", *table_options(running)))
    return sum(1 for event in shown["timeline"] if event["event"] == "folded")


def test_a_mute_link_in_a_relayed_mail_mutes_from_the_page_and_unmute_sends_the_digest(
    running: Running,
) -> None:
    with running.smtp(timeout=30) as client:
        client.send_message(alarm(running, "yard-1", SUBJECT, BODY))
    (first,) = wait_for_outbox(running.data, lambda entries: len(entries) == 1, 30)
    assert first["subject"] == SUBJECT
    assert first["links"] == []  # the outbox lists attachment links only
    links = mute_links(sent_message(running.data, first))
    assert sorted(links) == [3600, 8 * 3600, 24 * 3600]
    url = links[3600]
    assert url.startswith(running.state["download"]["url"])
    fingerprint = fingerprint_of(url)

    status, page = http("GET", url)  # what a link scanner does: it changes nothing
    assert status == 200
    assert SUBJECT in page
    assert "Mute for 1 hour</button>" in page
    listed = json.loads(relayctl(running, "alarms", "list", "--json", *table_options(running)))
    assert listed["counts"]["muted"] == 0
    assert http("GET", retarget(url, **{"for": 86400}))[0] == 403  # a tampered link
    form = form_of(page)
    target = origin_of(url) + form.action
    form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert http("POST", target, f"issued={form.issued}", {"Origin": origin_of(url)} | form_headers)[0] == 403

    status, done = http("POST", target, form.body(), {"Origin": origin_of(url)} | form_headers)
    assert status == 200, done
    assert "Muted until" in done
    listed = json.loads(relayctl(running, "alarms", "list", "--json", *table_options(running)))
    (muted,) = [a for a in listed["alarms"] if a["fingerprint"] == fingerprint]
    assert muted["muted"]["by"] == "a recipient"

    with running.smtp(timeout=30) as client:
        for n in range(3):
            client.send_message(alarm(running, f"yard-repeat-{n}", SUBJECT, BODY))
    deadline = time.monotonic() + 30
    while folded_rows(running, fingerprint) < 3:
        assert time.monotonic() < deadline, "the repeats were not folded"
        time.sleep(0.2)
    assert len(outbox(running.data)) == 1  # nothing went out for them

    queue = running.state["inbound_queue_url"]
    out = relayctl(running, "alarms", "unmute", fingerprint, *table_options(running), "--queue-url", queue)
    assert "1 digest waiting to be sent: the relay sends it now" in out
    entries = wait_for_outbox(running.data, lambda entries: len(entries) == 2, 30)
    digest = entries[-1]
    assert digest["subject"] == f"Mute ended, 3 mails folded: {SUBJECT}"
    text = sent_message(running.data, digest).get_body(("plain",))
    assert text is not None
    assert "Muted by a recipient at" in text.get_content()
    assert Counter(a for e in entries for a in e["destinations"]) == dict.fromkeys(RECIPIENTS, 2)
    assert urlsplit(url).path == f"/mute/{fingerprint}"
