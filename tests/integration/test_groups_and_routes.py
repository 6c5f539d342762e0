"""Recipient groups and per-device routes against moto: the document in S3, cached and revalidated."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from app.aws import recipients_config
from app.handler import lambda_handler
from tests.support.mails import attachment_links
from tests.support.world import RELAY_ADDRESS as RELAY
from tests.support.world import World, local_world

CAMERA = "cam-lobby-8f2k@relay.example.com"
KEY = "config/recipients.json"  # where the template's RECIPIENTS_CONFIG points
DOCUMENT = {
    "groups": {
        "boiler-oncall": ["alice@example.com", "bob@example.org"],
        "lobby-security": ["guard@example.com"],
    },
    "routes": {CAMERA: ["lobby-security", "yard-lead@example.com"]},
}
JPEG = b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9"


def camera_mail(to: str = CAMERA, body: str = "") -> bytes:
    """What an IP camera sends: a subject, perhaps no text at all, and a snapshot; as SES stores it."""
    import base64

    text = f"--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n" if body else ""
    return (
        "Return-Path: <cam@cameras.example.com>\r\n"
        "Received: from cam (cam [198.51.100.7])\r\n by inbound-smtp.eu-west-1.amazonaws.com with SMTP id x\r\n"
        f" for {to};\r\n Sun, 29 Nov 2026 10:00:00 +0000 (UTC)\r\n"
        "X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\nX-SES-RECEIPT: AEFB\r\n"
        f"From: Lobby camera <cam@cameras.example.com>\r\nTo: {to}\r\nSubject: Motion lobby\r\n"
        "Message-ID: <cam-1@cameras.example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"{text}--b\r\nContent-Type: image/jpeg; name=snap.jpg\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{base64.b64encode(JPEG).decode()}\r\n--b--\r\n"
    ).encode()


@pytest.fixture
def routed() -> Iterator[World]:
    # The same camera mail again and again, to see each edit of the document: folding would fold the
    # repeats, and routing is the point here.
    with local_world({"AdditionalRecipientEmails": CAMERA, "RepeatFolding": "off"}) as world:
        assert world.environment["RECIPIENTS_CONFIG"] == f"s3://{world.incoming}/{KEY}"
        yield world


def put_document(world: World, document: object) -> None:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    world.s3.put_object(Bucket=world.incoming, Key=KEY, Body=body)


def relay(world: World, raw: bytes, name: str) -> None:
    world.put_mail(f"incoming/{name}", raw)
    assert lambda_handler(world.event(f"incoming/{name}"), None) == {"batchItemFailures": []}


def test_a_camera_mail_without_text_goes_to_its_route_with_the_link(routed: World) -> None:
    put_document(routed, DOCUMENT)
    relay(routed, camera_mail(), "cam.eml")
    [sent] = routed.sent()
    assert sorted(sent.destinations) == ["guard@example.com", "yard-lead@example.com"]
    [link] = attachment_links(sent.message.get_content())
    assert routed.download(link) == JPEG


def test_a_code_with_groups(routed: World) -> None:
    put_document(routed, DOCUMENT)
    relay(
        routed,
        camera_mail(RELAY, "Email_Rxers_Code:[boiler-oncall,qa@example.com]:Email_Rxers_Code:"),
        "c.eml",
    )
    [sent] = routed.sent()
    assert sorted(sent.destinations) == ["alice@example.com", "bob@example.org", "qa@example.com"]


def test_a_code_on_a_routed_address_decides_alone(routed: World) -> None:
    put_document(routed, DOCUMENT)
    relay(routed, camera_mail(CAMERA, "Email_Rxers_Code:[qa@example.com]:Email_Rxers_Code:"), "c.eml")
    assert routed.sent()[0].destinations == ("qa@example.com",)


def test_an_edit_is_picked_up_after_the_cache_interval(
    routed: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(recipients_config, "_now", lambda: now[0])
    put_document(routed, DOCUMENT)
    relay(routed, camera_mail(), "1.eml")
    put_document(
        routed, {**DOCUMENT, "groups": {**DOCUMENT["groups"], "lobby-security": ["night@example.com"]}}
    )  # type: ignore[dict-item]
    now[0] += 30
    relay(routed, camera_mail(), "2.eml")  # within the interval: the cached copy
    now[0] += recipients_config.REVALIDATE_SECONDS
    relay(routed, camera_mail(), "3.eml")
    first, second, third = (sorted(sent.destinations) for sent in routed.sent())
    assert first == second == ["guard@example.com", "yard-lead@example.com"]
    assert third == ["night@example.com", "yard-lead@example.com"]


def test_a_broken_document_keeps_the_last_good_copy_and_is_logged_once(
    routed: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    monkeypatch.setattr(recipients_config, "_now", lambda: now[0])
    put_document(routed, DOCUMENT)
    relay(routed, camera_mail(), "1.eml")
    put_document(routed, b'{"groups": {"lobby-security": ["not an address"]}}')
    for number in range(2, 5):
        now[0] += recipients_config.REVALIDATE_SECONDS + 1
        relay(routed, camera_mail(), f"{number}.eml")
    assert [sorted(s.destinations) for s in routed.sent()] == [
        ["guard@example.com", "yard-lead@example.com"]
    ] * 4
    errors = [
        r for r in caplog.records if r.levelno == logging.ERROR and "recipients document" in r.getMessage()
    ]
    assert len(errors) == 1
    assert "not an address" in errors[0].getMessage()


def test_a_broken_document_on_a_cold_start_falls_back(routed: World) -> None:
    put_document(routed, b"{broken")
    relay(routed, camera_mail(), "1.eml")
    relay(
        routed,
        camera_mail(RELAY, "Email_Rxers_Code:[boiler-oncall,qa@example.com]:Email_Rxers_Code:"),
        "2.eml",
    )
    notices = routed.notices()
    assert [n["reason"] for n in notices] == ["no_recipients", "invalid_recipients"]
    assert notices[1]["invalid_recipients"] == ["boiler-oncall (unknown group)"]
    assert routed.sent()[0].destinations == ("qa@example.com",)


def test_a_missing_document_means_no_groups_and_no_routes(routed: World) -> None:
    relay(routed, camera_mail(), "1.eml")
    assert [n["reason"] for n in routed.notices()] == ["no_recipients"]
    assert routed.sent() == []


def test_the_log_line_says_how_the_recipients_were_found(
    routed: World, caplog: pytest.LogCaptureFixture
) -> None:
    put_document(routed, DOCUMENT)
    with caplog.at_level(logging.INFO, logger="iot_mail_relay"):
        relay(routed, camera_mail(), "1.eml")
    [line] = [r for r in caplog.records if r.getMessage() == "mail distributed"]
    assert line.recipients_source == "route"  # type: ignore[attr-defined]
    assert line.group_recipients == 1  # type: ignore[attr-defined]
    assert "guard@example.com" not in caplog.text
