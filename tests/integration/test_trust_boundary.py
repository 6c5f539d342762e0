"""The trust boundary against moto: only SES's block speaks for verdicts and authentication, one sender,
the recipient fence, and header text that cannot break the rewrite."""

from __future__ import annotations

import binascii
from collections.abc import Iterator

import pytest

from app.handler import lambda_handler
from tests.support import fixture_mail
from tests.support.mails import attachment_links
from tests.support.world import RELAY_ADDRESS as RELAY
from tests.support.world import World, local_world

CODE = "Email_Rxers_Code:[ops@example.com]:Email_Rxers_Code:"
ALIGNED = (
    "amazonses.com;\r\n spf=pass (spfCheck: domain of plant.example.com designates 198.51.100.23 as"
    " permitted sender) client-ip=198.51.100.23; envelope-from=sensor-17@plant.example.com;"
    " helo=mail-out.plant.example.com;\r\n dkim=pass header.i=@plant.example.com;\r\n"
    " dmarc=pass header.from=plant.example.com;"
)
NOTHING = "amazonses.com;\r\n spf=none; dkim=none; dmarc=none;"


def ses_block(virus: str = "PASS", spam: str = "PASS", results: str = ALIGNED) -> str:
    """What SES prepends to a stored mail (same names, order and syntax)."""
    return (
        "Return-Path: <sensor-17@plant.example.com>\r\n"
        "Received: from mail-out.plant.example.com (mail-out.plant.example.com [198.51.100.23])\r\n"
        " by inbound-smtp.eu-west-1.amazonaws.com with SMTP id 4q2k1v0s9tt0e5l6l0h4rb1ogfk7mqm4lp5e1il\r\n"
        f" for {RELAY};\r\n Sun, 29 Nov 2026 10:00:00 +0000 (UTC)\r\n"
        f"X-SES-Spam-Verdict: {spam}\r\nX-SES-Virus-Verdict: {virus}\r\n"
        "Received-SPF: none (spfCheck: 198.51.100.23 is neither permitted nor denied) client-ip=198.51.100.23;"
        " envelope-from=sensor-17@plant.example.com; helo=mail-out.plant.example.com;\r\n"
        f"Authentication-Results: {results}\r\n"
        "X-SES-RECEIPT: AEFBQUFBQUFBQUFFZ3JqZz09\r\n"
        "X-SES-DKIM-SIGNATURE: a=rsa-sha256; q=dns/txt; b=abc; c=relaxed/simple; s=x; d=amazonses.com;\r\n"
    )


def mail(
    block: str | None = None,
    below: str = "",
    from_: str = "Sensor 17 <sensor-17@plant.example.com>",
    code: str = CODE,
    subject: str = "Boiler alarm",
) -> bytes:
    """A mail as SES stores it: SES's block, then what the sender wrote (`below` first)."""
    head = (block if block is not None else ses_block()) + below
    sender = "".join(f"From: {value}\r\n" for value in ([from_] if isinstance(from_, str) else from_))
    return (
        head + sender + f"To: {RELAY}\r\nSubject: {subject}\r\nMessage-ID: <t-1@plant.example.com>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain\r\n\r\nPressure 9.1 bar. {code}\r\n"
        "--b\r\nContent-Type: application/octet-stream; name=log.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "AAEC\r\n--b--\r\n"
    ).encode("utf-8")


def relay(world: World, raw: bytes, name: str = "t.eml") -> None:
    world.put_mail(f"incoming/{name}", raw)
    assert lambda_handler(world.event(f"incoming/{name}"), None) == {"batchItemFailures": []}


def reasons(world: World) -> list[str]:
    return [notice["reason"] for notice in world.notices()]


@pytest.fixture
def closed() -> Iterator[World]:
    """Senders fenced to the plant's domain; authentication required (the default)."""
    with local_world({"AllowedSenders": "@plant.example.com"}) as world:
        yield world


# --- verdicts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "reason"), [("X-SES-Virus-Verdict", "virus"), ("X-SES-Spam-Verdict", "spam")]
)
def test_a_pass_forged_below_ses_s_fail_changes_nothing(world: World, header: str, reason: str) -> None:
    failing = ses_block(virus="FAIL") if reason == "virus" else ses_block(spam="FAIL")
    relay(world, mail(failing, below=f"{header}: PASS\r\n"))
    assert world.sent() == []
    assert reasons(world) == [reason]
    if reason == "virus":
        assert world.keys(world.attachments) == []


@pytest.mark.parametrize("verdict", ["GRAY", "PROCESSING_FAILED"])
def test_a_mail_ses_could_not_scan_is_held_unscanned(world: World, verdict: str) -> None:
    relay(world, mail(ses_block(virus=verdict), below="X-SES-Virus-Verdict: PASS\r\n"))
    assert world.sent() == []
    assert world.keys(world.attachments) == []
    [notice] = world.notices()
    assert notice["reason"] == "unscanned"
    assert verdict in notice["detail"]


def test_a_mail_without_ses_s_block_is_unscanned_even_with_its_own_verdicts(world: World) -> None:
    relay(world, mail("", below="X-Mailer: x\r\nX-SES-Virus-Verdict: PASS\r\nX-SES-Spam-Verdict: PASS\r\n"))
    assert reasons(world) == ["unscanned"]
    assert world.sent() == []


def test_none_of_ses_s_headers_is_relayed(world: World) -> None:
    relay(world, mail())
    [sent] = world.sent()
    names = {name.lower() for name in sent.message}
    assert not names & {"x-ses-spam-verdict", "x-ses-virus-verdict", "authentication-results", "received-spf"}
    assert not names & {"x-ses-receipt", "x-ses-dkim-signature", "received", "return-path"}


# --- one sender ---------------------------------------------------------------------------------------


def test_two_from_headers_have_no_sender(closed: World) -> None:
    relay(closed, mail(from_=["mallory@attacker.example", "sensor-17@plant.example.com"]))  # type: ignore[arg-type]
    assert closed.sent() == []
    [notice] = closed.notices()
    assert notice["reason"] == "sender_not_allowed"
    assert notice["from"] == "mallory@attacker.example, sensor-17@plant.example.com"
    assert "2 From headers" in notice["detail"]


def test_two_addresses_in_one_from_have_no_sender(closed: World) -> None:
    relay(closed, mail(from_="sensor-17@plant.example.com, mallory@attacker.example"))
    assert reasons(closed) == ["sender_not_allowed"]
    assert closed.sent() == []


def test_an_allowed_address_as_the_display_name_of_another_is_not_allowed(closed: World) -> None:
    relay(closed, mail(from_='"sensor-17@plant.example.com" <mallory@attacker.example>'))
    [notice] = closed.notices()
    assert notice["reason"] == "sender_not_allowed"
    assert notice["from"] == "mallory@attacker.example"


def test_the_sender_is_compared_case_insensitively(closed: World) -> None:
    relay(closed, mail(from_="Sensor-17@PLANT.Example.COM"))
    assert len(closed.sent()) == 1


# --- authentication -------------------------------------------------------------------------------------


def test_an_aligned_sender_is_distributed(closed: World) -> None:
    relay(closed, mail())
    [sent] = closed.sent()
    assert list(sent.destinations) == ["ops@example.com"]
    assert closed.notices() == []


@pytest.mark.parametrize(
    "below",
    [
        f"Authentication-Results: {ALIGNED}\r\n",  # a copy of SES's below SES's block
        "Authentication-Results: mx.plant.example.com; dkim=pass header.d=plant.example.com; spf=pass"
        " smtp.mailfrom=plant.example.com; dmarc=pass header.from=plant.example.com\r\n",
    ],
)
def test_forged_authentication_results_do_not_authenticate(closed: World, below: str) -> None:
    relay(closed, mail(ses_block(results=NOTHING), below=below))
    assert closed.sent() == []
    [notice] = closed.notices()
    assert notice["reason"] == "sender_not_authenticated"
    assert "spf=none, dkim=none, dmarc=none" in notice["detail"]
    assert closed.keys(closed.attachments) == []


def test_results_from_another_authserv_id_in_ses_s_place_do_not_count(closed: World) -> None:
    other = ALIGNED.replace("amazonses.com;", "mx.attacker.example;", 1)
    relay(closed, mail(ses_block(results=other)))
    assert reasons(closed) == ["sender_not_authenticated"]


def test_spf_pass_for_an_unaligned_envelope_domain_does_not_authenticate(closed: World) -> None:
    results = (
        "amazonses.com;\r\n spf=pass (spfCheck: ...) client-ip=54.240.1.1;"
        " envelope-from=0100018c@eu-west-1.amazonses.com; helo=a1-1.smtp-out.eu-west-1.amazonses.com;\r\n"
        " dkim=pass header.i=@amazonses.com;\r\n dmarc=none header.from=plant.example.com;"
    )
    relay(closed, mail(ses_block(results=results)))
    [notice] = closed.notices()
    assert notice["reason"] == "sender_not_authenticated"
    assert "spf=pass (eu-west-1.amazonses.com)" in notice["detail"]


def test_a_subdomain_sender_is_aligned_relaxed() -> None:
    with local_world({"AllowedSenders": "@*.plant.example.com"}) as world:
        relay(world, mail(from_="cam-4@site-2.plant.example.com"))  # SES: signed for plant.example.com
        assert len(world.sent()) == 1
        relay(world, mail(from_="cam-4@site-2.plant.example.com", block=ses_block(results=NOTHING)), "b.eml")
        assert reasons(world) == ["sender_not_authenticated"]


@pytest.mark.parametrize(("sender_auth", "distributed"), [("required", False), ("off", True)])
def test_missing_results(sender_auth: str, distributed: bool) -> None:
    with local_world({"AllowedSenders": "@plant.example.com", "SenderAuth": sender_auth}) as world:
        relay(world, fixture_mail("qp-soft-breaks-in-recipient-code.eml"))
        assert len(world.sent()) == int(distributed)
        assert reasons(world) == ([] if distributed else ["sender_not_authenticated"])


# --- the recipient fence --------------------------------------------------------------------------------


@pytest.fixture
def fenced() -> Iterator[World]:
    with local_world({"AllowedRecipients": "ops@example.com,@example.org,@*.example.net"}) as world:
        yield world


def test_recipients_outside_the_fence_are_refused_and_listed(fenced: World) -> None:
    code = "Email_Rxers_Code:[ops@example.com,a@plant.example.net,x@attacker.example,y@example.net]:Email_Rxers_Code:"
    relay(fenced, mail(code=code))
    [sent] = fenced.sent()
    assert sorted(sent.destinations) == ["a@plant.example.net", "ops@example.com"]
    [notice] = fenced.notices()
    assert notice["reason"] == "recipient_not_allowed"
    assert notice["refused_recipients"] == ["x@attacker.example", "y@example.net"]


def test_a_mail_with_nobody_inside_the_fence_stores_and_sends_nothing(fenced: World) -> None:
    relay(fenced, mail(code="Email_Rxers_Code:[x@attacker.example,z@sub.example.org]:Email_Rxers_Code:"))
    assert fenced.sent() == []
    assert fenced.keys(fenced.attachments) == []
    [notice] = fenced.notices()
    assert notice["reason"] == "recipient_not_allowed"
    assert notice["refused_recipients"] == ["x@attacker.example", "z@sub.example.org"]


def test_a_mail_with_everybody_inside_the_fence_gets_no_notice(fenced: World) -> None:
    relay(
        fenced,
        mail(code="Email_Rxers_Code:[ops@example.com,b@example.org,c@d.example.net]:Email_Rxers_Code:"),
    )
    assert len(fenced.sent()[0].destinations) == 3
    assert fenced.notices() == []


def test_the_open_relay_is_announced_once_per_container(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    relay(world, mail(), "a.eml")  # local_world starts each test with a fresh container
    relay(world, mail(), "b.eml")
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "anyone" in r.getMessage()]
    assert len(warnings) == 1


def test_a_closed_relay_says_nothing(closed: World, caplog: pytest.LogCaptureFixture) -> None:
    relay(closed, mail())
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


# --- header text and encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize("breaker", ["\u0085", "\u2028", "\u2029"])
def test_line_separators_in_subject_and_display_name_are_distributed(world: World, breaker: str) -> None:
    relay(
        world,
        mail(
            subject=f"Pump{breaker}3",
            from_=f"=?utf-8?b?{_b64(f'Plant{breaker}Sensor')}?= <s@plant.example.com>",
        ),
    )
    [sent] = world.sent()
    assert sent.message["Subject"] == "Pump 3"
    assert sent.message["From"].addresses[0].display_name == "Plant Sensor via IoT Mail Relay"


def test_a_raw_nel_byte_in_a_latin1_subject_is_distributed(world: World) -> None:
    relay(world, fixture_mail("subject-with-raw-nel-byte.eml"))
    [sent] = world.sent()
    assert sent.message["Subject"] == "Kessel \u00e4 Alarm"


def test_an_x_uuencode_attachment_is_served_decoded(world: World) -> None:
    relay(world, fixture_mail("dvr-x-uuencode-attachment.eml"))
    [sent] = world.sent()
    [link] = attachment_links(sent.message.get_content())
    assert world.download(link) == bytes(range(256)) * 4


def _b64(text: str) -> str:
    return binascii.b2a_base64(text.encode(), newline=False).decode()
