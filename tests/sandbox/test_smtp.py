"""The SMTP front door: SES's rules (TLS, AUTH, recipients, size) and what it stores for the function."""

from __future__ import annotations

import email
import smtplib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import smtp
from sandbox.runner import free_port

RECIPIENT = "inbox@relay.example.com"
CREDENTIALS = smtp.Credentials("sensor", "s3cret")


@pytest.mark.unit
def test_only_the_eicar_string_fails_the_virus_scan() -> None:
    assert smtp.virus_verdict(b"body " + smtp.EICAR + b" more") == "FAIL"
    assert smtp.virus_verdict(b"X5O!P%@AP and nothing else") == "PASS"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("address", "accepted"),
    [
        ("inbox@relay.example.com", True),
        ("INBOX@Relay.Example.com", True),
        ("other@relay.example.com", False),
        ("anyone@sensors.example.org", True),
        ("x@deep.sensors.example.org", False),
        ("x@sub.fleet.example.net", True),
        ("x@fleet.example.net", False),
    ],
)
def test_receipt_rule_matching_follows_ses(address: str, accepted: bool) -> None:
    rule = ("inbox@relay.example.com", "sensors.example.org", ".fleet.example.net")
    assert smtp.matches_rule(address, rule) is accepted


@pytest.mark.unit
def test_ses_headers_carry_the_verdicts_and_the_envelope() -> None:
    headers = smtp.ses_headers("s@plant.example.com", RECIPIENT, "cam1", "127.0.0.1", "abc", "FAIL")
    message = email.message_from_bytes(headers + b"Subject: x\r\n\r\nbody\r\n")
    assert message["Return-Path"] == "<s@plant.example.com>"
    assert message["X-SES-Spam-Verdict"] == "PASS"
    assert message["X-SES-Virus-Verdict"] == "FAIL"
    assert "for inbox@relay.example.com;" in message["Received"]
    assert message["Subject"] == "x"


@pytest.mark.unit
def test_object_ids_look_like_ses_message_ids() -> None:
    ids = {smtp.object_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 40 and i.isalnum() and i == i.lower() for i in ids)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, dict[str, bytes], Path]]:
    stored: dict[str, bytes] = {}
    handler = smtp.ReceiptRuleHandler((RECIPIENT,), stored.__setitem__, "incoming/")
    port = free_port("127.0.0.1")
    controller = smtp.controller(handler, CREDENTIALS, smtp.tls_context(tmp_path), "127.0.0.1", port)
    controller.start()
    try:
        yield port, stored, tmp_path / "smtp-cert.pem"
    finally:
        controller.stop()


def _tls(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


@pytest.mark.integration
def test_mail_is_refused_before_starttls_and_auth(server: tuple[int, dict[str, bytes], Path]) -> None:
    port, stored, cert = server
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo()
        assert client.mail("s@plant.example.com")[0] == 530  # STARTTLS first
        client.starttls(context=_tls(cert))
        client.ehlo()
        assert client.mail("s@plant.example.com")[0] == 530  # then AUTH
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("sensor", "wrong")
    assert stored == {}


@pytest.mark.integration
def test_an_accepted_mail_is_stored_with_ses_headers(server: tuple[int, dict[str, bytes], Path]) -> None:
    port, stored, cert = server
    body = b"Subject: hi\r\n\r\nline " + smtp.EICAR + b"\r\n"
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.starttls(context=_tls(cert))
        client.login(CREDENTIALS.username, CREDENTIALS.password)
        assert client.has_extn("size")
        assert int(client.esmtp_features["size"]) == smtp.MAX_MESSAGE_BYTES
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("s@plant.example.com", ["other@relay.example.com"], body)
        refused = client.sendmail("s@plant.example.com", [RECIPIENT], body)
        assert refused == {}
        code, _ = client.mail("s@plant.example.com", [f"SIZE={smtp.MAX_MESSAGE_BYTES + 1}"])
        assert code == 552
    ((key, raw),) = stored.items()
    assert key.startswith("incoming/")
    assert len(key) == len("incoming/") + 40
    message = email.message_from_bytes(raw)
    assert message["X-SES-Virus-Verdict"] == "FAIL"
    assert message["Return-Path"] == "<s@plant.example.com>"
    assert raw.endswith(body)  # the mail itself is stored as received
