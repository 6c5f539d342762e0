"""The deploy-time link-expiry check (a custom resource with inline code): it answers every request
CloudFormation sends, exactly once, Delete unconditionally; refuses what the relay could not use with
the reason; CloudFormation waits minutes for it, not an hour; and the receipt rule waits for it.

The inline code runs here as Lambda runs it, with `cfnresponse` (which CloudFormation supplies to
inline Python code) replaced by a recorder that has its documented signature (CloudFormation User
Guide, "cfn-response module": send(event, context, responseStatus, responseData, physicalResourceId,
noEcho, reason)).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.cloudformation import ref_name, resources_of

CHECKED = (
    "UrlExpirySeconds",
    "AttachmentRetentionDays",
    "MaxRecipients",
    "DigestAfterMinutes",
    "DigestMaxIntervalMinutes",
    "IncidentQuietMinutes",
    "FlapTransitions",
)
DAY = 86400


@dataclass
class Sent:
    status: str
    physical_id: str | None
    reason: str | None


class _Response:
    """cfnresponse as CloudFormation supplies it, recording instead of PUTting to the response URL."""

    SUCCESS, FAILED = "SUCCESS", "FAILED"

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    def send(
        self,
        event: Any,
        context: Any,
        responseStatus: str,
        responseData: Any,
        physicalResourceId: str | None = None,
        noEcho: bool = False,
        reason: str | None = None,
    ) -> None:
        assert responseData == {}
        self.sent.append(Sent(responseStatus, physicalResourceId, reason))


@pytest.fixture(scope="module")
def check(source: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(logical id, custom resource, its function) as the template declares them."""
    ((name, resource),) = resources_of(source, "Custom::LinkExpiryWithinRetention").items()
    function = source["Resources"][ref_name(resource["Properties"]["ServiceToken"])]
    return name, resource, function


@pytest.fixture(scope="module")
def handler(check: tuple[str, dict[str, Any], dict[str, Any]]) -> Any:
    """A function running the inline code: the responses it sent for one event."""
    name, _, function = check
    code = compile(function["Properties"]["InlineCode"], name, "exec")

    def run(event: dict[str, Any]) -> list[Sent]:
        response = _Response()
        namespace: dict[str, Any] = {}
        with mock.patch.dict(sys.modules, {"cfnresponse": response}):
            exec(code, namespace)  # noqa: S102 - the template's own inline code
            namespace["handler"](event, None)
        return response.sent

    return run


def _event(request: str, **properties: Any) -> dict[str, Any]:
    return {
        "RequestType": request,
        "ResponseURL": "https://cloudformation-custom-resource-response.example/presigned",
        "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/relay/guid",
        "RequestId": "request-1",
        "LogicalResourceId": "LinkExpiryWithinRetention",
        "ResourceType": "Custom::LinkExpiryWithinRetention",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:...", **properties},
    }


def _props(
    expiry: Any = DAY, days: Any = 7, recipients: Any = 50, first: Any = 10, longest: Any = 240
) -> dict[str, Any]:
    return {
        "UrlExpirySeconds": expiry,
        "AttachmentRetentionDays": days,
        "MaxRecipients": recipients,
        "DigestAfterMinutes": first,
        "DigestMaxIntervalMinutes": longest,
        "IncidentQuietMinutes": 30,
        "FlapTransitions": 5,
    }


def test_the_check_reads_the_parameters_the_relay_reads(
    check: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    _, resource, function = check
    props = resource["Properties"]
    assert {name: props[name] for name in CHECKED} == {name: {"Ref": name} for name in CHECKED}
    assert function["Properties"]["Runtime"].startswith("python3")
    assert "import cfnresponse" in function["Properties"]["InlineCode"]  # exactly this, or none is supplied


def test_the_longest_expiry_is_the_longest_retention(source: dict[str, Any]) -> None:
    parameters = source["Parameters"]
    assert int(parameters["UrlExpirySeconds"]["MaxValue"]) == 3650 * DAY
    assert int(parameters["AttachmentRetentionDays"]["MaxValue"]) * DAY == 3650 * DAY


@pytest.mark.parametrize(
    ("properties", "status"),
    [
        (_props(DAY, 7), "SUCCESS"),
        (_props(7 * DAY, 7), "SUCCESS"),
        (_props("86400", "7", "50"), "SUCCESS"),  # CloudFormation passes every property as a string
        (_props(7 * DAY + 1, 7), "FAILED"),
        (_props("86400.0", 7), "FAILED"),  # a Number parameter accepts decimals; the relay does not
        (_props(DAY, "7.5"), "FAILED"),
        (_props(DAY, 7, "50.0"), "FAILED"),
        (_props(DAY, 7, "1e3"), "FAILED"),
        (_props(DAY, 7, 50, 10, 10), "SUCCESS"),
        (_props(DAY, 7, 50, 10, 9), "FAILED"),  # digests would come closer together
        (_props(DAY, 7, 50, "10.5"), "FAILED"),
        ({"UrlExpirySeconds": DAY}, "FAILED"),
    ],
)
@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_succeed_only_for_whole_numbers_that_fit(
    handler: Any, request_type: str, properties: dict[str, Any], status: str
) -> None:
    (sent,) = handler(_event(request_type, **properties))
    assert sent.status == status
    assert sent.physical_id == "link-expiry-check"  # the same on every update: never a replacement
    assert (sent.reason is not None) == (status == "FAILED")


def test_the_reason_names_the_parameter_and_the_limit(handler: Any) -> None:
    (sent,) = handler(_event("Create", **_props(7 * DAY + 1, 7)))
    assert sent.reason is not None
    assert "UrlExpirySeconds=604801" in sent.reason
    assert "AttachmentRetentionDays=7 (604800 s)" in sent.reason
    (sent,) = handler(_event("Update", **_props("86400.0", 7)))
    assert sent.reason == "UrlExpirySeconds='86400.0' must be a whole number"
    (sent,) = handler(_event("Create", **_props(DAY, 7, 50, 20, 15)))
    assert sent.reason is not None
    assert "DigestMaxIntervalMinutes=15 is shorter than DigestAfterMinutes=20" in sent.reason


def test_delete_is_answered_first_whatever_the_properties(handler: Any) -> None:
    for event in (
        _event("Delete", **_props("86400.0", "x")),
        _event("Delete", **_props(30 * DAY, 7)),
        {"RequestType": "Delete"},  # nothing else: still answered, never raised on
    ):
        (sent,) = handler(event)
        assert sent.status == "SUCCESS"


_any = st.one_of(
    st.none(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
_events = st.fixed_dictionaries(
    {"RequestType": st.one_of(st.sampled_from(["Create", "Update", "Delete"]), st.text(max_size=8))},
    optional={
        "ResourceProperties": st.one_of(
            st.none(),
            st.dictionaries(st.sampled_from(CHECKED), _any),
            st.fixed_dictionaries({name: st.integers(min_value=0, max_value=10**13) for name in CHECKED}),
        )
    },
)


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")), deadline=None, database=None)
@given(event=_events)
def test_every_request_gets_exactly_one_answer_and_never_an_exception(
    handler: Any, event: dict[str, Any]
) -> None:
    sent = handler(event)
    assert len(sent) == 1
    (answer,) = sent
    if event["RequestType"] == "Delete":
        assert answer.status == "SUCCESS"
    elif answer.status == "FAILED":
        assert answer.reason
    else:
        props = event["ResourceProperties"]
        assert all(isinstance(props[n], int) and props[n] >= 0 for n in CHECKED)
        assert props["UrlExpirySeconds"] <= props["AttachmentRetentionDays"] * DAY
        assert props["DigestAfterMinutes"] <= props["DigestMaxIntervalMinutes"]


def test_cloudformation_waits_minutes_for_the_answer_not_an_hour(
    check: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    _, resource, function = check
    timeout = resource["Properties"]["ServiceTimeout"]
    # AWS::CloudFormation::CustomResource: an integer from 1 to 3600, default 3600.
    assert isinstance(timeout, int)
    assert 60 <= timeout <= 180
    assert timeout > 2 * function["Properties"]["Timeout"]  # room for a cold start and a retry


def test_the_receipt_rule_waits_for_the_checks_verdict(
    cfn: dict[str, Any], check: tuple[str, dict[str, Any], dict[str, Any]]
) -> None:
    name, _, _ = check
    (rule,) = resources_of(cfn, "AWS::SES::ReceiptRule").values()
    depends = rule["DependsOn"]
    assert name in (depends if isinstance(depends, list) else [depends])
