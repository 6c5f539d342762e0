"""app/mail/sender_alignment.py: DMARC's relaxed alignment, and what `verify` reports of SES's results."""

from __future__ import annotations

import pytest

from app.mail.authres_parser import Result
from app.mail.sender_alignment import aligned, verify
from app.mail.ses_block import SesReport


@pytest.mark.parametrize(
    ("domain", "other", "expected"),
    [
        ("plant.example.com", "plant.example.com", True),
        ("PLANT.example.com.", "plant.example.com", True),
        ("mail.plant.example.com", "plant.example.com", True),
        ("plant.example.com", "example.com", True),
        ("a.example.com", "b.example.com", False),  # siblings: neither is a subdomain of the other
        ("example.com", "example.org", False),
        ("example.co.uk", "other.co.uk", False),
        ("evil-example.com", "example.com", False),
        ("example.com.evil.example", "example.com", False),
        ("", "example.com", False),
    ],
)
def test_relaxed_alignment(domain: str, other: str, expected: bool) -> None:
    assert aligned(domain, other) is expected
    assert aligned(other, domain) is expected


def test_verify_reports_what_ses_said() -> None:
    report = SesReport(
        results=(Result("spf", "pass", {"envelope-from": "x@amazonses.com"}), Result("dkim", "none"))
    )
    verification = verify(report, "plant.example.com")
    assert not verification.authenticated
    assert verification.summary == "spf=pass (amazonses.com), dkim=none"
