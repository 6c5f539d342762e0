from __future__ import annotations

import os

import pytest

from app.mail import decode
from app.mail.parse import MalformedMail, parse
from tests.support import fixture_mail
from tests.support.mails import mail_with_attachment


def decoded(part: object) -> bytes:
    body = part.body  # type: ignore[attr-defined]
    return decode.decode_all(body.view(), body.encoding)


def test_openssl_transcript_without_blank_line_and_closing_boundary() -> None:
    mail = parse(fixture_mail("openssl-missing-blank-line.eml"))
    assert mail.subject == "Demo from openssl"
    assert [body.subtype for body in mail.bodies] == ["plain"]
    [attachment] = mail.attachments
    assert attachment.original_name == "demo64.txt"
    assert decoded(attachment) == b"content\n"


def test_camera_parts_named_only_by_content_type_are_attachments() -> None:
    mail = parse(fixture_mail("camera-jpeg-name-param-no-disposition.eml"))
    assert [a.original_name for a in mail.attachments] == [
        "ch04_20261129101500.jpg",
        "ch04_20261129101501.jpg",
    ]
    assert all(
        decoded(a).startswith(b"\xff\xd8") or decoded(a).endswith(b"\xd8\xff") for a in mail.attachments
    )


def test_rfc2231_and_encoded_word_names_are_decoded() -> None:
    mail = parse(fixture_mail("rfc2231-and-encoded-word-filenames.eml"))
    assert [a.original_name for a in mail.attachments] == ["€ Tagesbericht März.csv", "übersicht.pdf"]


def test_nested_alternative_inline_image_and_forwarded_message() -> None:
    mail = parse(fixture_mail("nested-alternative-forwarded-message.eml"))
    assert mail.subject == "Störung: Pumpe 3"
    assert [body.subtype for body in mail.bodies] == ["plain", "html"]
    assert "gestört" in mail.bodies[0].text
    assert [a.content_type for a in mail.attachments] == ["image/gif", "message/rfc822"]
    assert decoded(mail.attachments[1]).startswith(b"From: old@nord.example.com")


def test_unknown_charset_8bit_text_and_binary_part_survive() -> None:
    mail = parse(fixture_mail("unknown-charset-and-binary-part.eml"))
    assert "überschritten" in mail.bodies[0].text
    [dump] = mail.attachments
    assert decoded(dump) == bytes(b for b in range(256) if b not in (10, 13)) * 4


def test_verdicts_sender_and_message_id() -> None:
    mail = parse(fixture_mail("camera-jpeg-name-param-no-disposition.eml"))
    assert (mail.spam_verdict, mail.virus_verdict) == ("PASS", "PASS")
    assert mail.sender == "nvr@cameras.example.com"
    assert mail.message_id == "<nvr-0001@cameras.example.com>"


def test_large_attachment_is_found_through_the_skeleton() -> None:
    data = os.urandom(300_000)
    mail = parse(mail_with_attachment(data))
    [attachment] = mail.attachments
    assert attachment.original_name == "x.bin"
    assert decoded(attachment) == data
    assert mail.bodies[0].text.strip() == "hello"


@pytest.mark.parametrize("raw", [b"", b"   \r\n", os.urandom(2048), b"\x00\x01binary\xff" * 100])
def test_what_is_not_a_mail_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedMail):
        parse(raw)


def test_parse_reads_the_first_from_and_the_ses_block() -> None:
    raw = (
        b"X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: FAIL\r\n"
        b"From: mallory@attacker.example\r\nFrom: sensor@plant.example.com\r\n"
        b"X-SES-Virus-Verdict: PASS\r\nSubject: s\r\n\r\nbody\r\n"
    )
    mail = parse(raw)
    assert mail.virus_verdict == "FAIL"
    assert mail.sender is None
    assert mail.from_count == 2
    assert mail.from_header == "mallory@attacker.example, sensor@plant.example.com"


@pytest.mark.parametrize(
    ("from_header", "sender"),
    [
        ("Sensor <Sensor@Plant.Example.com>", "sensor@plant.example.com"),
        ('"sensor@plant.example.com" <mallory@attacker.example>', "mallory@attacker.example"),
        ("a@plant.example.com, b@plant.example.com", None),
        ("Group: a@plant.example.com;", None),
        ("not an address", None),
    ],
)
def test_the_sender_is_the_one_address_of_the_one_from(from_header: str, sender: str | None) -> None:
    raw = f"X-SES-Virus-Verdict: PASS\r\nFrom: {from_header}\r\nSubject: s\r\n\r\nbody\r\n".encode()
    assert parse(raw).sender == sender
