"""app/mail/authres_parser.py: `Authentication-Results` with SES's quirks, and `Received-SPF`; text inside
comments and quoted strings is never a result."""

from __future__ import annotations

import pytest

from app.mail.authres_parser import Result, parse_authentication_results, parse_received_spf
from tests.support.ses import SES_AR


def test_ses_s_results_are_read_with_ses_s_quirks() -> None:
    header = parse_authentication_results(SES_AR)
    assert header.authserv_id == "amazonses.com"
    assert [(r.method, r.result) for r in header.results] == [
        ("spf", "pass"),
        ("dkim", "pass"),
        ("dmarc", "pass"),
    ]
    assert header.results[0].properties["envelope-from"] == "sensor-17@plant.example.com"
    assert header.results[1].properties == {"header.i": "@plant.example.com"}


@pytest.mark.parametrize(
    "value",
    [
        "amazonses.com; dkim=none (dkim=pass header.d=plant.example.com)",
        'amazonses.com; dkim=none reason="dkim=pass header.d=plant.example.com"',
        'amazonses.com; spf=fail envelope-from="x;dkim=pass header.d=plant.example.com"@evil.example',
        "amazonses.com; dkim=none ((nested) dkim=pass header.d=plant.example.com)",
        'amazonses.com; dkim "=" pass header.d=plant.example.com',
    ],
)
def test_comments_and_quoted_strings_are_never_results(value: str) -> None:
    passing = [r for r in parse_authentication_results(value).results if r.result == "pass"]
    assert passing == []


def test_received_spf() -> None:
    result = parse_received_spf(
        "softfail (spfCheck: comment; with=semicolons) client-ip=192.0.2.1; envelope-from=a@b.example;"
    )
    assert result == Result("spf", "softfail", {"client-ip": "192.0.2.1", "envelope-from": "a@b.example"})
    assert parse_received_spf("client-ip=192.0.2.1") is None
