"""app/mail/ses_block.py: SES's block is read, and nothing a sender wrote below it; the envelope recipient is
SES's alone."""

from __future__ import annotations

from app.mail.sender_alignment import verify
from app.mail.ses_block import read, ses_block
from tests.support.ses import SES_BLOCK


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
