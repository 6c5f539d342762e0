"""SES's block and its authentication results: what the relay reads, and what it must never read."""

from __future__ import annotations

import pytest

from app.mail.authres_parser import Result, parse_authentication_results, parse_received_spf
from app.mail.parse import parse
from app.mail.sender_alignment import aligned, verify
from app.mail.ses_block import SesReport, read, ses_block

SES_AR = (
    "amazonses.com;\r\n spf=pass (spfCheck: domain of plant.example.com designates 198.51.100.23 as permitted"
    " sender) client-ip=198.51.100.23; envelope-from=sensor-17@plant.example.com;"
    " helo=mail-out.plant.example.com;\r\n dkim=pass header.i=@plant.example.com;\r\n"
    " dmarc=pass header.from=plant.example.com;"
)
SES_BLOCK = [
    ("Return-Path", "<sensor-17@plant.example.com>"),
    (
        "Received",
        "from mail-out.plant.example.com (mail-out.plant.example.com [198.51.100.23]) by"
        " inbound-smtp.eu-west-1.amazonaws.com with SMTP id 4q2k1v0s9tt0e5l6 for inbox-7f3k9q@relay.example.com;"
        " Sun, 29 Nov 2026 10:00:00 +0000 (UTC)",
    ),
    ("X-SES-Spam-Verdict", "PASS"),
    ("X-SES-Virus-Verdict", "FAIL"),
    (
        "Received-SPF",
        "pass (spfCheck: ...) client-ip=198.51.100.23; envelope-from=sensor-17@plant.example.com;",
    ),
    ("Authentication-Results", SES_AR),
    ("X-SES-RECEIPT", "AEFBQUFB"),
    ("X-SES-DKIM-SIGNATURE", "a=rsa-sha256; ..."),
]


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


def test_the_block_ends_after_x_ses_receipt_and_its_dkim_signature() -> None:
    sender = [("Authentication-Results", "amazonses.com; dkim=pass header.d=evil.example"), ("From", "a@b.c")]
    assert [name for name, _ in ses_block(SES_BLOCK + sender)] == [name.lower() for name, _ in SES_BLOCK]


def test_without_x_ses_receipt_the_block_is_the_run_of_ses_headers_at_the_top() -> None:
    headers = [
        ("X-SES-Spam-Verdict", "PASS"),
        ("X-SES-Virus-Verdict", "PASS"),
        ("From", "a@b.c"),
        ("X-SES-Virus-Verdict", "FAIL"),
    ]
    assert ses_block(headers) == [("x-ses-spam-verdict", "PASS"), ("x-ses-virus-verdict", "PASS")]


def test_forged_copies_below_ses_s_block_are_ignored() -> None:
    forged = [
        ("From", "sensor-17@plant.example.com"),
        ("X-SES-Virus-Verdict", "PASS"),
        ("X-SES-Spam-Verdict", "PASS"),
        ("Authentication-Results", "amazonses.com; dkim=pass header.d=evil.example"),
    ]
    report = read(SES_BLOCK + forged)
    assert report.virus_verdict == "FAIL"
    assert report.envelope_recipient == "inbox-7f3k9q@relay.example.com"
    assert all("evil.example" not in str(r.properties) for r in report.results)


def test_results_from_another_authserv_id_are_ignored() -> None:
    block = [
        *SES_BLOCK[:5],
        ("Authentication-Results", "mx.evil.example; dkim=pass header.d=plant.example.com"),
        *SES_BLOCK[6:],
    ]
    report = read(block)
    assert [r.method for r in report.results] == ["spf"]  # from SES's Received-SPF only
    assert not verify(report, "other.example").authenticated


def test_received_spf_fills_in_when_ses_s_results_have_no_spf() -> None:
    block = [*SES_BLOCK[:5], ("Authentication-Results", "amazonses.com; dkim=none"), *SES_BLOCK[6:]]
    report = read(block)
    assert ("spf", "pass") in [(r.method, r.result) for r in report.results]
    assert verify(report, "plant.example.com").authenticated


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


def test_the_envelope_recipient_is_ses_s_never_a_forged_received_below() -> None:
    forged = [
        (
            "Received",
            "from evil by inbound-smtp.eu-west-1.amazonaws.com for cam-lobby-8f2k@relay.example.com; now",
        )
    ]
    assert read(SES_BLOCK + forged).envelope_recipient == "inbox-7f3k9q@relay.example.com"


def test_several_envelope_recipients_leave_no_envelope_recipient() -> None:
    several = [
        (
            "Received",
            "from mx (mx [198.51.100.23]) by inbound-smtp.eu-west-1.amazonaws.com with SMTP id x; now",
        ),
        *SES_BLOCK[2:],
    ]
    assert read(several).envelope_recipient is None
    assert read([]).envelope_recipient is None
