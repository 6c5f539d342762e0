"""Groups and routes: the document, expansion, and the address a mail was received for."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from app.config import Settings
from app.mail.parse import Mail, TextBody
from app.mail.ses_block import SesReport
from app.outcomes import Reason
from app.routing import document
from app.routing.document import Directory, DocumentError
from app.routing.expand import expand, receiving_address
from app.screening import Distribution, Refusal, screen

RELAY = "inbox@relay.example.com"
CAMERA = "cam-lobby-8f2k@relay.example.com"
DOCUMENT = {
    "groups": {
        "Boiler-Oncall": ["Alice@Example.com", "bob@example.org"],
        "lobby-security": ["guard-desk@example.com", "alice@example.com"],
    },
    "routes": {CAMERA: ["lobby-security", "yard-lead@example.com"]},
}


def directory(data: object = DOCUMENT) -> Directory:
    return document.parse(json.dumps(data).encode())


def test_a_valid_document_is_normalised() -> None:
    parsed = directory()
    assert parsed.groups == {
        "boiler-oncall": ("alice@example.com", "bob@example.org"),
        "lobby-security": ("guard-desk@example.com", "alice@example.com"),
    }
    assert parsed.routes == {CAMERA: ("lobby-security", "yard-lead@example.com")}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "must be a JSON object"),
        (json.dumps({"groups": {}, "extra": 1}).encode(), "unknown key 'extra'"),
        (json.dumps({"groups": {"Bad Name": ["a@example.com"]}}).encode(), "group 'Bad Name'"),
        (json.dumps({"groups": {"g": "a@example.com"}}).encode(), "must be a list of strings"),
        (json.dumps({"groups": {"g": ["not an address"]}}).encode(), "'not an address' is not an address"),
        (json.dumps({"groups": {"g": ["other-group"]}}).encode(), "is not an address"),  # no nested groups
        (json.dumps({"groups": {"g": [], "G": []}}).encode(), "defined twice"),
        (json.dumps({"routes": {CAMERA: ["no-such-group"]}}).encode(), "unknown group 'no-such-group'"),
        (json.dumps({"routes": {"not-an-address": []}}).encode(), "not a receiving address"),
        (json.dumps({"routes": []}).encode(), "'routes' must be an object"),
    ],
)
def test_problems_are_named(data: bytes, problem: str) -> None:
    with pytest.raises(DocumentError, match=problem):
        document.parse(data)


def test_check_reports_every_problem() -> None:
    data = json.dumps({"groups": {"a": ["x"], "b": ["y"]}, "routes": {CAMERA: ["c"]}}).encode()
    _, problems = document.check(data)
    assert len(problems) == 3


def test_expansion_dedupes_across_groups_and_addresses_and_drops_our_own_addresses() -> None:
    groups = directory({"groups": {"a": ["x@example.com", CAMERA, "y@example.com"], "b": ["Y@example.com"]}})
    expansion = expand(("x@example.com", "a", "b", "z@example.com"), groups, drop=(RELAY, CAMERA))
    assert expansion.recipients == ("x@example.com", "y@example.com", "z@example.com")
    assert expansion.from_groups == 1  # y came only from a group; x was named directly
    assert expansion.unknown_groups == ()


def test_unknown_groups_are_reported() -> None:
    expansion = expand(("nope", "a@example.com"), directory(), drop=())
    assert expansion.recipients == ("a@example.com",)
    assert expansion.unknown_groups == ("nope",)


@pytest.mark.parametrize(
    ("envelope", "written", "expected"),
    [
        (CAMERA, (), CAMERA),  # SES named the one envelope recipient
        (CAMERA.upper(), (RELAY,), CAMERA),  # SES's word wins over the To the sender wrote
        (None, ("someone@example.com", CAMERA, RELAY), CAMERA),  # several recipients: first of ours in To/Cc
        ("stranger@relay.example.com", (RELAY,), RELAY),  # not one of ours: not trusted as a route key
        (None, ("someone@example.com",), None),
    ],
)
def test_the_receiving_address(envelope: str | None, written: tuple[str, ...], expected: str | None) -> None:
    assert receiving_address(envelope, written, (RELAY, CAMERA)) == expected


SETTINGS = Settings(
    incoming_bucket="in",
    attachments_bucket="att",
    sender_email="relay@example.com",
    recipient_email=RELAY,
    fallback_topic_arn="arn:aws:sns:us-east-1:123456789012:t",
    max_recipients=3,
    additional_recipient_emails=(CAMERA,),
)


def mail(text: str = "", envelope: str | None = RELAY, to: tuple[str, ...] = ()) -> Mail:
    return Mail(
        message_id="<m@x>",
        sender="cam@plant.example.com",
        from_header="cam@plant.example.com",
        subject="s",
        ses=SesReport(spam_verdict="PASS", virus_verdict="PASS", envelope_recipient=envelope),
        bodies=(TextBody("plain", text),) if text else (),
        attachments=(),
        addressed_to=to,
    )


def test_a_code_with_groups_expands() -> None:
    decision = screen(
        mail("Email_Rxers_Code:[boiler-oncall,qa@example.com]:Email_Rxers_Code:"), SETTINGS, directory
    )
    assert decision == Distribution(
        ("alice@example.com", "bob@example.org", "qa@example.com"), (), source="code", from_groups=2
    )


def test_a_mail_without_a_code_follows_the_route_of_its_address() -> None:
    decision = screen(mail(envelope=CAMERA), SETTINGS, directory)
    assert decision == Distribution(
        ("guard-desk@example.com", "alice@example.com", "yard-lead@example.com"),
        (),
        source="route",
        from_groups=2,
    )


def test_with_a_code_the_code_alone_decides() -> None:
    decision = screen(
        mail("Email_Rxers_Code:[qa@example.com]:Email_Rxers_Code:", envelope=CAMERA), SETTINGS, directory
    )
    assert isinstance(decision, Distribution)
    assert decision.recipients == ("qa@example.com",)


def test_no_code_and_no_route_is_no_recipients() -> None:
    decision = screen(mail(envelope=RELAY), SETTINGS, directory)
    assert isinstance(decision, Refusal)
    assert decision.reason is Reason.NO_RECIPIENTS
    assert RELAY not in decision.detail  # the receiving address is a secret


def test_the_directory_is_not_asked_for_a_code_of_addresses() -> None:
    def unreachable() -> Directory:
        raise AssertionError("no group named: the document is not needed")

    assert isinstance(
        screen(mail("Email_Rxers_Code:[qa@example.com]:Email_Rxers_Code:"), SETTINGS, unreachable),
        Distribution,
    )


def test_an_unknown_group_is_an_invalid_entry() -> None:
    decision = screen(mail("Email_Rxers_Code:[qa@example.com,ghosts]:Email_Rxers_Code:"), SETTINGS, directory)
    assert decision == Distribution(("qa@example.com",), ("ghosts (unknown group)",), source="code")


def test_the_fence_and_the_cap_apply_after_expansion() -> None:
    fenced = replace(SETTINGS, allowed_recipients=("@example.com",))
    decision = screen(mail("Email_Rxers_Code:[boiler-oncall]:Email_Rxers_Code:"), fenced, directory)
    assert isinstance(decision, Distribution)
    assert decision.recipients == ("alice@example.com",)
    assert decision.refused == ("bob@example.org",)
    big = directory({"groups": {"all": [f"p{i}@example.com" for i in range(4)]}})
    capped = screen(mail("Email_Rxers_Code:[all]:Email_Rxers_Code:"), SETTINGS, lambda: big)
    assert isinstance(capped, Refusal)
    assert capped.reason is Reason.TOO_MANY_RECIPIENTS
