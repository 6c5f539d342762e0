"""app/mail/header_text.py: a header value stays one harmless line, whatever breaks or tricks it holds."""

from __future__ import annotations

import pytest

from app.mail.header_text import one_line


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Pump\u00853", "Pump 3"),
        ("a\u2028b\u2029c", "a b c"),
        ("a\r\n b", "a  b"),
        ("inv \u202egpj.exe", "inv gpj.exe"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("  Störung ✓ ", "Störung ✓"),
    ],
)
def test_one_line(value: str, expected: str) -> None:
    assert one_line(value) == expected
    assert len(one_line(value).splitlines()) <= 1
