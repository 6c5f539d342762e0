"""Property: whatever header block a sender writes below SES's, the verdicts and the authentication the
relay acts on are SES's. A pure check on the parsed report (many examples, it is cheap) and one through
the handler with senders fenced and authentication required."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.mail.parse import parse
from tests.support.fuzzing import FUZZ, new_key, relay
from tests.support.world import RELAY_ADDRESS as RELAY
from tests.support.world import World, local_world

VERDICTS = ["PASS", "FAIL", "GRAY", "PROCESSING_FAILED"]
RESULTS = {
    "aligned": "amazonses.com;\r\n spf=pass (spfCheck: ok) client-ip=198.51.100.23;"
    " envelope-from=sensor@plant.example.com; helo=mx.plant.example.com;\r\n dkim=pass header.i=@plant.example.com;"
    "\r\n dmarc=pass header.from=plant.example.com;",
    "unaligned": "amazonses.com;\r\n spf=pass (spfCheck: ok) client-ip=54.240.1.1;"
    " envelope-from=0100@eu-west-1.amazonses.com;\r\n dkim=pass header.i=@amazonses.com;\r\n dmarc=none;",
    "nothing": "amazonses.com; spf=none; dkim=none; dmarc=none;",
}
FORGEABLE = [
    "Return-Path",
    "Received",
    "X-SES-Spam-Verdict",
    "X-SES-Virus-Verdict",
    "Received-SPF",
    "Authentication-Results",
    "X-SES-RECEIPT",
    "X-SES-DKIM-SIGNATURE",
    "DKIM-Signature",
    "X-Mailer",
]
FORGED_VALUES = [
    "PASS",
    "pass",
    "FAIL",
    "amazonses.com; dkim=pass header.d=plant.example.com; spf=pass smtp.mailfrom=plant.example.com",
    "amazonses.com; dmarc=pass header.from=plant.example.com",
    RESULTS["aligned"].replace("\r\n", ""),
    "pass client-ip=198.51.100.23; envelope-from=sensor@plant.example.com",
    "from x by inbound-smtp.eu-west-1.amazonaws.com for other@relay.example.com; now",
]
_value_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=80)
forged_headers = st.lists(
    st.tuples(
        st.sampled_from(FORGEABLE).flatmap(lambda name: st.sampled_from([name, name.lower(), name.upper()])),
        st.one_of(st.sampled_from(FORGED_VALUES), _value_text),
    ),
    max_size=12,
)
# SES's block (its verdicts and results) and what the sender wrote below it.
SCENARIOS = {
    "spam": st.sampled_from(VERDICTS),
    "virus": st.sampled_from(VERDICTS),
    "results": st.sampled_from(sorted(RESULTS)),
    "forged": forged_headers,
}
MANY = settings(FUZZ, max_examples=max(FUZZ.max_examples, 1000))  # pure and cheap: always many


def ses_block(spam: str, virus: str, results: str) -> str:
    return (
        "Return-Path: <sensor@plant.example.com>\r\n"
        "Received: from mx.plant.example.com (mx.plant.example.com [198.51.100.23])\r\n"
        f" by inbound-smtp.eu-west-1.amazonaws.com with SMTP id abc for {RELAY};\r\n"
        " Sun, 29 Nov 2026 10:00:00 +0000 (UTC)\r\n"
        f"X-SES-Spam-Verdict: {spam}\r\nX-SES-Virus-Verdict: {virus}\r\n"
        f"Authentication-Results: {RESULTS[results]}\r\nX-SES-RECEIPT: AEFBQUFB\r\n"
    )


def mail(block: str, forged: list[tuple[str, str]]) -> bytes:
    below = "".join(f"{name}: {value}\r\n" for name, value in forged)
    return (
        block + below + f"From: Sensor <sensor@plant.example.com>\r\nTo: {RELAY}\r\nSubject: alarm\r\n"
        "Message-ID: <p@plant.example.com>\r\n\r\nEmail_Rxers_Code:[ops@example.com]:Email_Rxers_Code:\r\n"
    ).encode("utf-8")


@MANY
@given(**SCENARIOS)
def test_the_report_is_ses_s_whatever_the_sender_writes_below(
    spam: str, virus: str, results: str, forged: list[tuple[str, str]]
) -> None:
    block = ses_block(spam, virus, results)
    assert parse(mail(block, forged)).ses == parse(mail(block, [])).ses


@pytest.fixture(scope="module")
def closed_world() -> Iterator[World]:
    with local_world({"AllowedSenders": "@plant.example.com", "RepeatFolding": "off"}) as world:
        yield world


def expected(spam: str, virus: str, results: str) -> str:
    if virus == "FAIL":
        return "virus"
    if virus != "PASS":
        return "unscanned"
    if spam == "FAIL":
        return "spam"
    return "distributed" if results == "aligned" else "sender_not_authenticated"


@FUZZ
@given(**SCENARIOS)
def test_the_relay_acts_on_ses_s_word_only(
    closed_world: World, spam: str, virus: str, results: str, forged: list[tuple[str, str]]
) -> None:
    result = relay(closed_world, new_key(), mail(ses_block(spam, virus, results), forged))
    outcome = result.outcome
    reason = outcome if outcome == "distributed" else result.notices[0]["reason"]
    assert reason == expected(spam, virus, results)
