from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from app.mail.parse import Mail, TextBody, parse
from app.mail.rewrite import Link, Note, build
from app.mail.ses_block import SesReport
from tests.support import fixture_mail

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=1)
URL = "https://bucket.s3.amazonaws.com/attachments/d/2/a%20b.jpg?X-Amz-Expires=86400&X-Amz-Signature=abc"


def rebuilt(mail: Mail, links: list[Link]) -> tuple[bytes, EmailMessage]:
    raw = build(mail, links, EXPIRES, "relay@example.com", NOW)
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return raw, message


def mail(
    *bodies: TextBody, subject: str = "Alarm", from_header: str = "Sensor <s@plant.example.com>"
) -> Mail:
    return Mail(
        message_id="<m1@plant.example.com>",
        sender="s@plant.example.com",
        from_header=from_header,
        subject=subject,
        ses=SesReport(spam_verdict="PASS", virus_verdict="PASS"),
        bodies=bodies,
        attachments=(),
    )


def test_headers_hide_recipients_and_point_replies_at_the_sensor() -> None:
    _, message = rebuilt(mail(TextBody("plain", "hi")), [])
    assert message["From"].addresses[0].addr_spec == "relay@example.com"
    assert "Sensor" in message["From"].addresses[0].display_name
    assert message["Reply-To"].addresses[0].addr_spec == "s@plant.example.com"
    assert str(message["To"]) == "undisclosed-recipients:;"
    assert "Cc" not in message
    assert "Bcc" not in message


def test_result_is_seven_bit_and_keeps_non_ascii_subject_and_text() -> None:
    raw, message = rebuilt(mail(TextBody("plain", "Pumpe gestört 97 °C"), subject="Störung ✓"), [])
    assert raw.isascii()
    assert message["Subject"] == "Störung ✓"
    assert "Pumpe gestört 97 °C" in message.get_content()


def test_code_removed_and_links_listed_with_size_and_expiry() -> None:
    body = TextBody("plain", "Motion. Email_Rxers_Code:[a@example.com]:Email_Rxers_Code: end")
    _, message = rebuilt(mail(body), [Link("a b.jpg", 2048, "image/jpeg", None, URL)])
    text = message.get_content()
    assert "Email_Rxers_Code" not in text
    assert "a@example.com" not in text
    assert "a b.jpg (2.0 KB): " + URL in text
    assert "2026-11-30 10:00 UTC" in text


def test_alternative_parts_both_carry_the_links_and_html_is_escaped() -> None:
    bodies = (
        TextBody("plain", "text"),
        TextBody("html", '<html><body><p>x</p><img src="cid:pic1"></body></html>'),
    )
    links = [Link("<b>evil</b>.png", 10, "image/png", "pic1", URL)]
    _, message = rebuilt(mail(*bodies), links)
    assert message.get_content_type() == "multipart/alternative"
    plain_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    assert plain_part is not None
    assert html_part is not None
    html = html_part.get_content()
    assert URL in plain_part.get_content()
    assert "&lt;b&gt;evil&lt;/b&gt;.png" in html
    assert "<b>evil</b>" not in html
    assert 'src="cid:pic1"' not in html  # the inline image now points at its link
    assert html.index("Attachments") < html.index("</body>")


def test_notes_follow_the_senders_text_and_precede_the_attachments() -> None:
    bodies = (
        TextBody("plain", "Resolved: Pump 3"),
        TextBody("html", "<html><body><p>Resolved: Pump 3</p></body></html>"),
    )
    notes = [Note("Relay: lasted 2 h; 4 repeats folded.", "<p>Relay: lasted 2 h; 4 repeats folded.</p>")]
    raw = build(
        mail(*bodies), [Link("x.txt", 1, "text/plain", None, URL)], EXPIRES, "relay@example.com", NOW, notes
    )
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    plain_part, html_part = message.get_body(("plain",)), message.get_body(("html",))
    assert plain_part is not None
    assert html_part is not None
    text, html = plain_part.get_content(), html_part.get_content()
    assert text.index("Resolved: Pump 3") < text.index("Relay: lasted 2 h") < text.index("Attachments")
    assert html.index("</p>") < html.index("<div><p>Relay: lasted 2 h") < html.index("Attachments")
    assert html.index("Attachments") < html.index("</body>")
    only_notes = build(mail(*bodies), [], EXPIRES, "relay@example.com", NOW, notes)
    assert b"Relay: lasted 2 h" in only_notes


def test_html_only_mail_stays_html() -> None:
    _, message = rebuilt(
        mail(TextBody("html", "<p>only html</p>")), [Link("x.txt", 1, "text/plain", None, URL)]
    )
    assert message.get_content_type() == "text/html"


def test_attachment_only_mail_gets_a_text_body_with_the_links() -> None:
    _, message = rebuilt(mail(), [Link("x.txt", 1, "text/plain", None, URL)])
    assert message.get_content_type() == "text/plain"
    assert URL in message.get_content()


def test_header_values_from_the_mail_cannot_inject_headers() -> None:
    hostile = mail(
        TextBody("plain", "x"), subject="hi\r\nBcc: victim@example.com", from_header="a\r\nX: y <b@c.d>"
    )
    raw, message = rebuilt(hostile, [])
    assert "Bcc" not in message
    assert b"\r\nBcc:" not in raw
    assert b"\r\nX: y" not in raw


@pytest.mark.parametrize("breaker", ["\u0085", "\u2028", "\u2029", "\x0b", "\x1c"])
def test_line_separators_of_any_kind_in_the_subject_and_name_become_spaces(breaker: str) -> None:
    hostile = mail(
        TextBody("plain", "x"),
        subject=f"Pump{breaker}3 alarm",
        from_header=f'"Plant{breaker}Sensor" <s@plant.example.com>',
    )
    raw, message = rebuilt(hostile, [])
    assert message["Subject"] == "Pump 3 alarm"
    assert message["From"].addresses[0].display_name == "Plant Sensor via IoT Mail Relay"
    assert raw.isascii()


def test_bidi_overrides_are_removed_from_the_subject() -> None:
    _, message = rebuilt(mail(TextBody("plain", "x"), subject="invoice \u202egpj.exe"), [])
    assert message["Subject"] == "invoice gpj.exe"


@pytest.mark.parametrize(
    "from_header",
    ['"boss@bank.example" <s@plant.example.com>', '"Boss <boss@bank.example>" <s@plant.example.com>'],
)
def test_a_display_name_that_looks_like_an_address_shows_the_real_sender(from_header: str) -> None:
    _, message = rebuilt(mail(TextBody("plain", "x"), from_header=from_header), [])
    assert message["From"].addresses[0].display_name == "s@plant.example.com via IoT Mail Relay"


def test_a_mail_without_a_single_sender_is_sent_in_the_relay_s_name_without_reply_to() -> None:
    from dataclasses import replace

    hostile = replace(mail(TextBody("plain", "x"), from_header="a@x.example, b@y.example"), sender=None)
    _, message = rebuilt(hostile, [])
    assert message["From"].addresses[0].display_name == "IoT Mail Relay"
    assert "Reply-To" not in message


def test_a_real_mail_end_to_end() -> None:
    parsed = parse(fixture_mail("nested-alternative-forwarded-message.eml"))
    raw, message = rebuilt(parsed, [])
    assert raw.isascii()
    assert message["Subject"] == "Störung: Pumpe 3"
    assert message["Reply-To"].addresses[0].addr_spec == "scada@nord.example.com"
