"""status: figures that match what the queues hold, the relay's alarms, the active rule set; a part it
cannot read is shown unavailable and the exit status is 1."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from relayctl.aws import Aws
from tests.support.relayctl import Relay


def test_status_reports_depths_ages_alarms_and_rule_set(relay: Relay) -> None:
    for i in range(3):
        relay.sqs.send_message(QueueUrl=relay.queue_url, MessageBody=f"inbound {i}")
    relay.sqs.receive_message(QueueUrl=relay.queue_url, MaxNumberOfMessages=1, VisibilityTimeout=300)
    for i in range(2):
        relay.sqs.send_message(QueueUrl=relay.dlq_url, MessageBody=f"dead {i}")
    cloudwatch = boto3.client("cloudwatch", region_name=relay.region)
    cloudwatch.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": relay.blueprint.inbound_queue.name}],
                "Value": 420,
                "Unit": "Seconds",
            }
        ],
    )
    dead_letter_alarm = next(a.name for a in relay.blueprint.alarms if a.logical_id == "DeadLetterAlarm")
    cloudwatch.set_alarm_state(AlarmName=dead_letter_alarm, StateValue="ALARM", StateReason="2 > 0")
    cloudwatch.put_metric_alarm(  # someone else's alarm: not listed
        AlarmName="unrelated",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": "other-queue"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )

    report = relay.run_json("status", *relay.resource_options())

    inbound, dead = report["queues"]["inbound"], report["queues"]["dead_letter"]
    assert (inbound["visible"], inbound["in_flight"], inbound["delayed"]) == (2, 1, 0)
    assert (inbound["oldest_age_seconds"], inbound["age_source"]) == (420, "cloudwatch")
    assert (dead["visible"], dead["in_flight"]) == (2, 0)
    assert (dead["oldest_age_seconds"], dead["age_source"]) == (None, "unknown")  # no figure: no error
    states = {a["name"]: a["state"] for a in report["alarms"]}
    assert set(states) == {a.name for a in relay.blueprint.alarms}
    assert states[dead_letter_alarm] == "ALARM"
    assert report["receipt_rule_set"] == {"active": None, "stack": relay.rule_set, "is_active": False}

    code, out, _ = relay.run("status", *relay.resource_options())
    assert code == 0
    assert "2 waiting, 1 in flight, 0 delayed; oldest 420 s" in out
    assert f"the stack's {relay.rule_set} is NOT active" in out


def test_sampling_reads_the_age_and_puts_the_messages_back(relay: Relay) -> None:
    for i in range(2):
        relay.sqs.send_message(QueueUrl=relay.dlq_url, MessageBody=f"dead {i}")

    report = relay.run_json("status", *relay.resource_options(), "--sample")

    dead = report["queues"]["dead_letter"]
    assert dead["age_source"] == "sample"
    assert 0 <= dead["oldest_age_seconds"] < 60
    visible = relay.sqs.get_queue_attributes(
        QueueUrl=relay.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert visible["Attributes"]["ApproximateNumberOfMessages"] == "2"


def test_empty_queues_have_no_age_and_an_active_stack_rule_set_is_reported(relay: Relay) -> None:
    boto3.client("ses", region_name=relay.region).set_active_receipt_rule_set(RuleSetName=relay.rule_set)
    report = relay.run_json("status", *relay.resource_options())
    assert report["queues"]["inbound"]["oldest_age_seconds"] == 0
    assert report["queues"]["dead_letter"]["visible"] == 0
    assert report["receipt_rule_set"]["is_active"] is True


class _Failing:
    """The real moto client with the named operations failing as AWS fails them."""

    def __init__(self, real: Any, code: str, *operations: str) -> None:
        self._real, self._code, self._operations = real, code, operations

    def __getattr__(self, name: str) -> Any:
        if name not in self._operations:
            return getattr(self._real, name)

        def fail(*args: Any, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": self._code, "Message": "no"}}, name)

        return fail


def _fail(monkeypatch: pytest.MonkeyPatch, service: str, code: str, *operations: str) -> None:
    original = Aws.client

    def client(self: Aws, name: str, attempts: int = 5) -> Any:
        real = original(self, name, attempts)
        return _Failing(real, code, *operations) if name == service else real

    monkeypatch.setattr(Aws, "client", client)


def test_an_unreadable_age_is_unavailable_and_exits_1(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> None:
    relay.sqs.send_message(QueueUrl=relay.queue_url, MessageBody="waiting")
    _fail(monkeypatch, "cloudwatch", "AccessDenied", "get_metric_statistics")

    code, out, _ = relay.run("status", *relay.resource_options())

    assert code == 1
    assert "oldest unavailable (get_metric_statistics failed: AccessDenied: no)" in out
    assert "alarm " in out  # the other parts are still shown
    report = json.loads(relay.run("status", *relay.resource_options(), "--json")[1])
    inbound = report["queues"]["inbound"]
    assert (inbound["visible"], inbound["age_source"], inbound["oldest_age_seconds"]) == (
        1,
        "unavailable",
        None,
    )
    assert report["queues"]["dead_letter"]["age_source"] == "empty"


def test_unreadable_alarms_are_unavailable_and_exit_1(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail(monkeypatch, "cloudwatch", "Throttling", "get_paginator")

    code, out, _ = relay.run("status", *relay.resource_options())

    assert code == 1
    assert "alarms             unavailable: get_paginator failed: Throttling" in out
    assert "active rule set    none" in out


def test_an_unreadable_queue_is_unavailable_and_the_rest_still_shown(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = relay.resource_options()
    options[options.index("--dlq-url") + 1] = relay.dlq_url + "-gone"

    code, out, err = relay.run("status", *options)

    assert code == 1
    assert err == ""
    assert "dead-letter queue  unavailable: GetQueueAttributes failed" in out
    assert "inbound queue      0 waiting" in out
    assert "active rule set" in out


def test_missing_credentials_still_fail_the_whole_command(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    code, out, err = relay.run("status", *relay.resource_options())

    assert code == 1
    assert out == ""
    assert "no AWS credentials found" in err
