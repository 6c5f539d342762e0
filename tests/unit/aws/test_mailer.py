"""How SES's answers to a send are classified: retry, or a `rejected` notice naming what is missing."""

from __future__ import annotations

import pytest

from app.aws import mailer

ROLE = "arn:aws:sts::123456789012:assumed-role/iot-mail-relay-RelayRole-1AB/iot-mail-relay-relay"
IDENTITY = "arn:aws:ses:eu-west-1:123456789012:identity/plant.example.com"


@pytest.mark.parametrize(
    ("message", "action", "resource"),
    [
        (
            f"User: {ROLE} is not authorized to perform: ses:SendRawEmail on resource: {IDENTITY} "
            "because no identity-based policy allows the ses:SendRawEmail action",
            "ses:SendRawEmail",
            IDENTITY,
        ),
        (
            f"User: {ROLE} is not authorized to perform: ses:SendRawEmail on resource: "
            "arn:aws:ses:eu-west-1:123456789012:configuration-set/tracking",
            "ses:SendRawEmail",
            "arn:aws:ses:eu-west-1:123456789012:configuration-set/tracking",
        ),
    ],
)
def test_a_denial_names_the_missing_permission(message: str, action: str, resource: str) -> None:
    detail = mailer.denied("AccessDeniedException", message)
    assert f"lacks {action} on {resource}" in detail
    assert "AccessDeniedException" in detail
    assert ROLE not in detail


def test_a_denial_without_iams_wording_still_says_what_to_grant() -> None:
    detail = mailer.denied("AccessDenied", "")
    assert "ses:SendRawEmail" in detail
    assert "configuration set" in detail
