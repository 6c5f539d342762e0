"""The function's retry backoff fits the queue the template declares, and it may change only that
queue's visibility."""

from __future__ import annotations

from typing import Any

import pytest

from app import backoff
from tests.support.cloudformation import as_list, ref_name, resources_of

pytestmark = pytest.mark.unit


def _inbound(cfn: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    mapping = next(iter(resources_of(cfn, "AWS::Lambda::EventSourceMapping").values()))["Properties"]
    name = ref_name(mapping["EventSourceArn"])
    return name, cfn["Resources"][name]["Properties"]


def test_every_delay_is_shorter_than_the_queues_own_timeout(cfn: dict[str, Any]) -> None:
    _, queue = _inbound(cfn)
    assert max(backoff.SCHEDULE) < queue["VisibilityTimeout"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] <= len(backoff.SCHEDULE)  # each receive has its step


def test_only_the_inbound_queue_may_have_its_visibility_changed(cfn: dict[str, Any]) -> None:
    inbound, _ = _inbound(cfn)
    granted = []
    for role in resources_of(cfn, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if "sqs:ChangeMessageVisibility" in as_list(statement.get("Action", [])):
                    granted.extend(ref_name(r) for r in as_list(statement["Resource"]))
    assert granted == [inbound]
