from __future__ import annotations

import pytest

from app.mail.attachments import (
    ATTACHMENTS_PREFIX,
    MAX_NAME_LENGTH,
    content_disposition,
    object_key,
    safe_filename,
)


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Windows\\System32\\evil.exe", "evil.exe"),
        ("..", "attachment-7.bin"),
        ("", "attachment-7.bin"),
        ("bell\x07and\nnewline\u202e.txt", "bellandnewline.txt"),
        ('q"uo<te>s|?.txt', "q_uo_te_s__.txt"),
        ("€ Tagesbericht März.csv", "€ Tagesbericht März.csv"),
    ],
)
def test_safe_filename(original: str, expected: str) -> None:
    assert safe_filename(original, "application/octet-stream", 7) == expected


def test_names_are_bounded_and_keep_their_extension() -> None:
    name = safe_filename("y" * 500 + ".jpeg", "image/jpeg", 1)
    assert len(name) == MAX_NAME_LENGTH
    assert name.endswith(".jpeg")


def test_missing_names_come_from_the_content_type() -> None:
    assert safe_filename("", "image/png", 4) == "attachment-4.png"
    assert safe_filename("", "message/rfc822", 5) == "attachment-5.eml"
    assert safe_filename("forwarded", "message/rfc822", 5) == "forwarded.eml"


def test_keys_are_deterministic_distinct_and_stay_under_the_prefix() -> None:
    first = object_key("incoming/abc", 2, "report.txt")
    assert first == object_key("incoming/abc", 2, "report.txt")
    assert first != object_key("incoming/abc", 3, "report.txt")
    assert first != object_key("incoming/abd", 2, "report.txt")
    hostile = object_key("incoming/../../x", 2, safe_filename("../../../../x", "text/plain", 2))
    assert hostile.startswith(ATTACHMENTS_PREFIX)
    assert ".." not in hostile.split("/")
    assert len(hostile.split("/")) == 4


def test_content_disposition_carries_ascii_fallback_and_utf8_name() -> None:
    value = content_disposition('Übersicht "1".pdf')
    assert value.startswith('attachment; filename="_bersicht _1_.pdf"')
    assert "filename*=UTF-8''%C3%9Cbersicht%20%221%22.pdf" in value
    assert value.isascii()
