from __future__ import annotations

from dataclasses import replace

import pytest

from app.config import Settings
from app.mail.parse import Mail, TextBody
from app.outcomes import Reason
from app.relay import Distribution, Refusal, screen

SETTINGS = Settings(
    incoming_bucket="in",
    attachments_bucket="att",
    sender_email="relay@example.com",
    recipient_email="inbox@relay.example.com",
    fallback_topic_arn="arn:aws:sns:us-east-1:123456789012:t",
    max_recipients=3,
)


def mail(code: str = "Email_Rxers_Code:[a@example.com]:Email_Rxers_Code:", **changes: object) -> Mail:
    base = Mail(
        message_id="<m@x>",
        sender="sensor@plant.example.com",
        from_header="sensor@plant.example.com",
        subject="s",
        spam_verdict="PASS",
        virus_verdict="PASS",
        bodies=(TextBody("plain", code),),
        attachments=(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"virus_verdict": "FAIL"}, Reason.VIRUS),
        ({"spam_verdict": "FAIL"}, Reason.SPAM),
        ({"virus_verdict": "FAIL", "spam_verdict": "FAIL"}, Reason.VIRUS),
    ],
)
def test_verdicts(changes: dict[str, str], reason: Reason) -> None:
    decision = screen(mail(**changes), SETTINGS)
    assert isinstance(decision, Refusal)
    assert decision.reason is reason


def test_gray_or_missing_verdicts_are_not_failures() -> None:
    assert isinstance(screen(mail(spam_verdict="GRAY", virus_verdict=None), SETTINGS), Distribution)


@pytest.mark.parametrize(
    ("allowed", "sender", "ok"),
    [
        (("sensor@plant.example.com",), "sensor@plant.example.com", True),
        (("@plant.example.com",), "sensor@plant.example.com", True),
        (("@plant.example.com",), "sensor@evil.example.com", False),
        (("@plant.example.com",), None, False),
        ((), None, True),
    ],
)
def test_allowed_senders(allowed: tuple[str, ...], sender: str | None, ok: bool) -> None:
    decision = screen(mail(sender=sender), replace(SETTINGS, allowed_senders=allowed))
    if ok:
        assert isinstance(decision, Distribution)
    else:
        assert isinstance(decision, Refusal)
        assert decision.reason is Reason.SENDER_NOT_ALLOWED


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("no code at all", Reason.NO_RECIPIENTS),
        ("Email_Rxers_Code:[]:Email_Rxers_Code:", Reason.NO_RECIPIENTS),
        (
            "Email_Rxers_Code:[inbox@relay.example.com]:Email_Rxers_Code:",
            Reason.NO_RECIPIENTS,
        ),  # a loop, dropped
        ("Email_Rxers_Code:[nope, neither]:Email_Rxers_Code:", Reason.INVALID_RECIPIENTS),
        ("Email_Rxers_Code:[a@x.com,b@x.com,c@x.com,d@x.com]:Email_Rxers_Code:", Reason.TOO_MANY_RECIPIENTS),
    ],
)
def test_recipient_refusals(code: str, reason: Reason) -> None:
    decision = screen(mail(code), SETTINGS)
    assert isinstance(decision, Refusal)
    assert decision.reason is reason


def test_partly_invalid_list_is_distributed_and_keeps_the_rejects() -> None:
    decision = screen(mail("Email_Rxers_Code:[a@x.com, bogus, b@x.com]:Email_Rxers_Code:"), SETTINGS)
    assert decision == Distribution(recipients=("a@x.com", "b@x.com"), invalid=("bogus",))
