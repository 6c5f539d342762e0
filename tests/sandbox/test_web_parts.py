"""The web view's parts without a browser: escaping and the frame's policy, the POST checks, the outcome
of a mail from what the sandbox keeps, SES's header block, the X-Ray listener, the trace search, the log
journal, and the claim of the web port."""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from sandbox.claim import Unavailable, claim
from sandbox.journal import Journal
from sandbox.smtp import ses_headers
from sandbox.web import data, safety, server, traces
from sandbox.xray import Daemon, Trace, new_trace_id

pytestmark = pytest.mark.unit

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">"quoted" & \'single\''
T0 = 1_790_000_000.0


def _row(subject: str) -> data.MailRow:
    return data.MailRow(
        key="incoming/abc",
        sender=HOSTILE,
        subject=subject,
        message_id="<m@x>",
        size=1234,
        time=datetime.datetime(2026, 11, 29, tzinfo=datetime.UTC),
        outcome=data.Outcome("notice", "notice: virus", HOSTILE),
    )


def test_mail_content_is_escaped_in_every_page_and_the_html_only_reaches_the_frame() -> None:
    env = server.environment()
    rows = env.get_template("rows.html").render(rows=[_row(HOSTILE)])
    assert "<script>" not in rows
    assert "<img" not in rows
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rows
    mail = data.OneMail(
        key="incoming/abc",
        size=1,
        time=datetime.datetime(2026, 11, 29, tzinfo=datetime.UTC),
        sender=HOSTILE,
        subject=HOSTILE,
        message_id=HOSTILE,
        headers=[data.Header("Subject", HOSTILE, False)],
        parts=[data.Part(0, "text/html", HOSTILE, "attachment", 3)],
        outcome=data.Outcome("distributed", "distributed to 1, 0 links"),
        relayed=[data.Relayed("f.eml", [HOSTILE], ["javascript:alert(3)"], HOSTILE, HOSTILE, HOSTILE)],
        notice=HOSTILE,
        log_lines=[HOSTILE],
    )
    page = env.get_template("mail.html").render(
        mail=mail, waterfalls=[], safe_link=lambda url: False, scale=1000, token="t"
    )
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert 'href="javascript:' not in page
    (frame,) = [line for line in page.splitlines() if "<iframe" in line]
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame
    srcdoc = frame.split('srcdoc="', 1)[1].split('"', 1)[0]  # the attribute ends at the first raw quote
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in srcdoc
    assert "&lt;meta http-equiv=&#34;Content-Security-Policy&#34;" in srcdoc


def test_the_frames_policy_forbids_scripts_and_remote_loads() -> None:
    document = safety.srcdoc("<p>hi</p>")
    assert document.index("Content-Security-Policy") < document.index("<p>hi</p>")
    policy = dict(d.strip().split(" ", 1) for d in safety.MAIL_POLICY.split(";"))
    assert policy["default-src"] == "'none'"  # no script-src: scripts fall back to none
    assert "script-src" not in policy
    assert policy["img-src"] == "data:"
    assert "allow-scripts" not in safety.FRAME_SANDBOX
    assert "allow-same-origin" not in safety.FRAME_SANDBOX
    page = dict(d.strip().split(" ", 1) for d in safety.PAGE_POLICY.split(";"))
    assert page["script-src"] == "'self'"
    assert page["frame-ancestors"] == "'none'"


def test_a_post_must_come_from_the_views_origin_with_its_token() -> None:
    host = "127.0.0.1:8025"
    assert safety.same_origin("http://127.0.0.1:8025", None, host)
    assert safety.same_origin(None, "http://127.0.0.1:8025/status", host)
    assert not safety.same_origin("http://evil.example", "http://127.0.0.1:8025/status", host)
    assert not safety.same_origin("null", None, host)
    assert not safety.same_origin(None, None, host)
    token = safety.new_token()
    assert safety.token_ok(token, token)
    assert not safety.token_ok(token, None)
    assert not safety.token_ok(token, token[:-1])


def test_on_loopback_only_its_own_names_are_answered() -> None:
    assert safety.allowed_hosts("127.0.0.1", 8025) == {
        "127.0.0.1:8025",
        "localhost:8025",
        "[::1]:8025",
    }
    assert safety.allowed_hosts("0.0.0.0", 8025) is None  # noqa: S104 - the value under test
    assert safety.safe_link("http://127.0.0.1:4566/bucket/key?sig", "http://127.0.0.1:4566")
    assert not safety.safe_link("http://127.0.0.1:45660/x", "http://127.0.0.1:4566")
    assert not safety.safe_link("javascript:alert(1)", "http://127.0.0.1:4566")


def _facts(**changes: Any) -> data.Known:
    base = data.Known(notices={}, sent={}, dead={}, queued={}, endpoint="http://127.0.0.1:4566/")
    return data.Known(**{**base.__dict__, **changes})


def test_the_outcome_of_a_mail_from_what_the_sandbox_keeps() -> None:
    key, mid = "incoming/abc", "<m@x>"
    link, foreign = "http://127.0.0.1:4566/att/1?sig", "http://remote.example/x.png"
    sent = {
        mid: [
            {"destinations": ["a@x", "b@x"], "links": [link, foreign]},
            {"destinations": ["c@x"], "links": [link]},
        ]
    }
    assert data.outcome_of(key, mid, _facts(sent=sent)) == data.Outcome(
        "distributed", "distributed to 3, 1 link", "a@x, b@x, c@x"
    )
    notice = {key: {"notice": {"reason": "virus", "detail": "SES's virus scan failed the mail"}}}
    assert data.outcome_of(key, mid, _facts(notices=notice)).label == "notice: virus"
    assert data.outcome_of(key, mid, _facts(dead={key: 5})).kind == "dlq"
    assert data.outcome_of(key, mid, _facts(queued={key: 0})).kind == "waiting"
    assert data.outcome_of(key, mid, _facts(queued={key: 2})).label == "retrying (received 2 times)"
    assert data.outcome_of(key, mid, _facts()).kind == "accepted"
    assert (
        data.outcome_of(key, "", _facts(sent={"": sent[mid]})).kind == "accepted"
    )  # no Message-ID: no match


def test_the_keys_an_s3_notification_names_are_decoded() -> None:
    body = json.dumps({"Records": [{"s3": {"object": {"key": "incoming/a+b%2Fc"}}}]})
    assert data.keys_in(body) == ["incoming/a b/c"]
    assert data.keys_in(json.dumps({"Event": "s3:TestEvent"})) == []
    assert data.keys_in("not json") == []


def test_ses_block_is_marked_and_a_senders_lookalike_headers_are_not() -> None:
    block = ses_headers(
        "s@plant.example.com", "in@x", "helo", "127.0.0.1", "id1", "PASS", domain="plant.example.com"
    )
    message = EmailMessage()
    message["From"] = "s@plant.example.com"
    message["X-SES-Virus-Verdict"] = "PASS"  # the sender's own, after SES's block
    message.set_content("hi")
    parsed = data.parse(block + message.as_bytes())
    marked = [(h.name, h.ses) for h in data.headers(parsed)]
    assert [name for name, ses in marked if ses] == [
        "Return-Path",
        "Received",
        "X-SES-Spam-Verdict",
        "X-SES-Virus-Verdict",
        "Received-SPF",
        "Authentication-Results",
        "X-SES-RECEIPT",
        "X-SES-DKIM-SIGNATURE",
    ]
    assert ("X-SES-Virus-Verdict", False) in marked
    assert [p.content_type for p in data.structure(parsed)] == ["text/plain"]


def _segment(trace_id: str, key: str, outcome: str, reason: str = "") -> dict[str, Any]:
    return {
        "trace_id": trace_id,
        "id": "seg1",
        "name": "relay",
        "start_time": T0,
        "end_time": T0 + 1.0,
        "subsegments": [
            {
                "id": f"mail-{key}",
                "name": "relay_mail",
                "start_time": T0 + 0.1,
                "end_time": T0 + 0.9,
                "annotations": {"incoming_key": key, "outcome": outcome, "reason": reason, "recipients": 2},
                "subsegments": [
                    {
                        "id": f"get-{key}",
                        "name": "s3",
                        "namespace": "aws",
                        "start_time": T0 + 0.2,
                        "end_time": T0 + 0.3,
                        "aws": {"operation": "GetObject"},
                        "http": {"response": {"status": 404}},
                        "fault": True,
                    }
                ],
            }
        ],
    }


def _datagram(document: dict[str, Any]) -> bytes:
    return b'{"format": "json", "version": 1}\n' + json.dumps(document).encode()


def test_the_daemon_keeps_segments_by_trace_and_finds_a_mails_invocations_over_udp() -> None:
    daemon = Daemon()
    daemon.start()
    try:
        first, second = new_trace_id(T0), new_trace_id(T0 + 5)
        assert first.startswith(f"1-{int(T0):08x}-")
        assert len(first) == 35
        host, port = daemon.address.split(":")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(_datagram(_segment(first, "incoming/a", "retry")), (host, int(port)))
            client.sendto(_datagram(_segment(second, "incoming/a", "distributed")), (host, int(port)))
            client.sendto(b"garbage", (host, int(port)))
            deadline = time.monotonic() + 5
            while len(daemon.traces()) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        daemon.stop()
    found = daemon.traces_of("incoming/a")
    assert [t.trace_id for t in found] == [first, second]
    assert daemon.traces_of("incoming/other") == []


def test_the_waterfall_places_each_call_and_marks_the_mails_own_rows() -> None:
    trace = Trace("1-x-y", [_segment("1-x-y", "incoming/a", "retry")])
    fall = traces.waterfall(trace, "incoming/a")
    assert [(r.depth, r.name, r.operation) for r in fall.rows] == [
        (0, "relay", ""),
        (1, "relay_mail", ""),
        (2, "s3", "GetObject"),
    ]
    call = fall.rows[2]
    assert (call.x, call.width, call.error, call.status, call.mine) == (200, 100, "fault", "404", True)
    assert round(call.start_ms) == 200
    assert round(call.duration_ms) == 100
    assert not fall.rows[0].mine
    assert round(fall.duration_ms) == 1000


def test_the_search_takes_xray_filter_expressions_over_annotations() -> None:
    daemon = Daemon()
    try:
        daemon.receive(_datagram(_segment("1-a-1", "incoming/virus", "fallback", "virus")))
        daemon.receive(_datagram(_segment("1-a-2", "incoming/none", "fallback", "no_recipients")))
        daemon.receive(_datagram(_segment("1-a-3", "incoming/ok", "distributed")))

        def keys(query: str) -> set[str]:
            return {hit.incoming_key for hit in traces.search(daemon, query)}

        assert keys('annotation.outcome = "fallback" AND annotation.reason = "virus"') == {"incoming/virus"}
        assert keys('annotation.outcome = "fallback" and annotation.reason != "virus"') == {"incoming/none"}
        assert keys("annotation.recipients = 2") == {"incoming/virus", "incoming/none", "incoming/ok"}
        assert keys("no_recip") == {"incoming/none"}
        assert keys("") == {"incoming/virus", "incoming/none", "incoming/ok"}
        with pytest.raises(traces.BadQuery, match=r"annotation\.outcome fallback"):
            traces.search(daemon, "annotation.outcome fallback")
    finally:
        daemon.stop()


def test_the_journal_keeps_the_functions_log_lines_by_mail() -> None:
    journal = Journal("test_web_parts.function")
    journal.attach()
    logger = logging.getLogger("test_web_parts.function")
    logger.setLevel(logging.INFO)
    try:
        logger.info(
            "mail %s", "distributed", extra={"key": "incoming/a", "outcome": "distributed", "recipients": 2}
        )
        logger.info("no key here")
    finally:
        journal.detach()
    logger.info("after", extra={"key": "incoming/a"})
    (line,) = journal.lines("incoming/a")
    document = json.loads(line)
    assert document["message"] == "mail distributed"
    assert (document["level"], document["outcome"], document["recipients"]) == ("INFO", "distributed", 2)
    assert "args" not in document
    assert "msg" not in document


def test_the_web_port_is_claimed_like_the_others(tmp_path: Path) -> None:
    held = claim(tmp_path / "one", "127.0.0.1", 0, 0, 0)
    try:
        assert held.web_port
        with pytest.raises(
            Unavailable, match=rf"port {held.web_port} .* \(--web-port\) is in use by process {os.getpid()} "
        ):
            claim(tmp_path / "two", "127.0.0.1", 0, 0, held.web_port)
        claim(tmp_path / "two", "127.0.0.1", 0, 0, 0).release()  # the refused claim kept nothing
        sock = held.hand_over_web()
        assert held.web is None
        assert sock.getsockname()[1] == held.web_port
        sock.close()
    finally:
        held.release()
    with pytest.raises(Unavailable, match="--aws-port and --web-port are both 8025;"):
        claim(tmp_path, "127.0.0.1", 0, 8025, 8025)
    assert claim(tmp_path, "127.0.0.1", 0, 0).web_port is None
