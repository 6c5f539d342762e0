"""status: queue depths and the age of their oldest message, the relay's alarms, the active rule set.

The oldest message's age comes from CloudWatch (`ApproximateAgeOfOldestMessage`, what the alarm
watches). Where CloudWatch has no figure (the sandbox, a quiet queue) `--sample` receives a few messages
and puts them straight back; that counts as a receive towards the inbound queue's maxReceiveCount, so it
is not done by default. The relay's alarms are those watching its queues and, when the alarms topic is
known (`--alarms-topic` or the stack's output), every alarm that notifies it: the function's errors, SES's
reputation and rejected mail have no queue to recognise them by.

A part that cannot be read (a queue, the age figure, the alarms, the rule set: no permission, a
throttled or failing endpoint) is shown as `unavailable` with the error, the other parts are still
shown, and the exit status is 1. "No figure" (CloudWatch has no data point yet) is not an error: the
age is then `unknown`. Missing credentials or region fail the whole command as usual.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from relayctl.aws import Aws, describe
from relayctl.command import Command
from relayctl.report import Report
from relayctl.resources import Resources

COUNTS = {
    "visible": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}


def run(args: argparse.Namespace, aws: Aws) -> Report:
    resources = Resources.from_args(args, aws)
    queues = {"inbound": resources.require("queue_url"), "dead_letter": resources.require("dlq_url")}
    rule_set = resources.get("rule_set")
    sqs, cloudwatch = aws.client("sqs"), aws.client("cloudwatch")
    now = datetime.now(UTC)
    report = Report({"queues": {}, "alarms": [], "receipt_rule_set": {}})
    for role, url in queues.items():
        figures = _queue(sqs, cloudwatch, url, now, args.sample)
        report.data["queues"][role] = figures
        label = f"{role.replace('_', '-') + ' queue':<18}"
        if figures.get("error"):
            report.ok = False
            report.lines.append(f"{label} unavailable: {figures['error']}  [{figures['name']}]")
            continue
        age = figures["oldest_age_seconds"]
        source = figures["age_source"]
        if source == "unavailable":
            report.ok = False
            age_text = f"unavailable ({figures['age_error']})"
        elif age is None:
            age_text = "unknown (no CloudWatch data; --sample reads a few messages)"
        else:
            age_text = f"{age} s" + (" (sampled, at least)" if source == "sample" else "")
        report.lines.append(
            f"{label} {figures['visible']} waiting,"
            f" {figures['in_flight']} in flight, {figures['delayed']} delayed; oldest {age_text}"
            f"  [{figures['name']}]"
        )
    try:
        queue_names = {q["name"] for q in report.data["queues"].values()}
        alarms = _alarms(cloudwatch, queue_names, resources.get("alarms_topic"))
        report.data["alarms"] = alarms
        if not alarms:
            report.lines.append("alarms             none watch these queues")
        for alarm in alarms:
            report.lines.append(
                f"alarm              {alarm['state']:<17} {alarm['name']} ({alarm['metric']})"
            )
    except PART_ERRORS as e:
        _reraise_setup_errors(e)
        report.ok = False
        report.data["alarms"] = None
        report.lines.append(f"alarms             unavailable: {_reason(e)}")
    try:
        active = active_rule_set(aws.client("ses"))
        report.data["receipt_rule_set"] = {
            "active": active,
            "stack": rule_set,
            "is_active": active == rule_set,
        }
        text = active or "none (no mail is received)"
        if rule_set and active != rule_set:
            if resources.rule_set_owned():
                text += f"; the stack's {rule_set} is NOT active (relayctl activate)"
            else:
                text += f"; {rule_set}, which holds the stack's rule, is NOT active (activate it)"
        report.lines.append(f"active rule set    {text}")
    except PART_ERRORS as e:
        _reraise_setup_errors(e)
        report.ok = False
        report.data["receipt_rule_set"] = None
        report.lines.append(f"active rule set    unavailable: {_reason(e)}")
    return report


def active_rule_set(ses: Any) -> str | None:
    metadata = ses.describe_active_receipt_rule_set().get("Metadata") or {}
    return str(metadata["Name"]) if metadata.get("Name") else None


def _queue(sqs: Any, cloudwatch: Any, url: str, now: datetime, sample: bool) -> dict[str, Any]:
    """The queue's counts and oldest age; `error` set when the counts could not be read, `age_error`
    when the counts could but the age could not."""
    figures: dict[str, Any] = {"url": url, "name": url.rstrip("/").rsplit("/", 1)[-1]}
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(COUNTS.values()))[
            "Attributes"
        ]
    except PART_ERRORS as e:
        _reraise_setup_errors(e)
        figures.update(dict.fromkeys(COUNTS), oldest_age_seconds=None, age_source="unavailable")
        figures["error"] = _reason(e)
        return figures
    figures.update({k: int(attributes.get(v, 0)) for k, v in COUNTS.items()})
    age: int | None = None
    source = "empty"
    if figures["visible"] + figures["in_flight"] + figures["delayed"] > 0:
        try:
            age, source = _cloudwatch_age(cloudwatch, figures["name"], now), "cloudwatch"
            if age is None and sample:
                age, source = _sampled_age(sqs, url, now), "sample"
        except PART_ERRORS as e:
            _reraise_setup_errors(e)
            age, source = None, "unavailable"
            figures["age_error"] = _reason(e)
        if age is None and source != "unavailable":
            source = "unknown"
    else:
        age = 0
    figures.update(oldest_age_seconds=age, age_source=source)
    return figures


def _cloudwatch_age(cloudwatch: Any, queue_name: str, now: datetime) -> int | None:
    """The latest figure of the last 15 minutes, None when CloudWatch has none (errors propagate)."""
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": queue_name}],
        StartTime=now - timedelta(minutes=15),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    if not points:
        return None
    return int(max(points, key=lambda p: p["Timestamp"])["Maximum"])


def _sampled_age(sqs: Any, url: str, now: datetime) -> int | None:
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, AttributeNames=["SentTimestamp"]
    ).get("Messages", [])
    if not messages:
        return None
    sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages)
        ],
    )
    oldest = min(int(m["Attributes"]["SentTimestamp"]) for m in messages) / 1000
    return max(0, int(now.timestamp() - oldest))


def _alarms(cloudwatch: Any, queue_names: set[str], alarms_topic: str | None) -> list[dict[str, Any]]:
    found = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
        for alarm in page.get("MetricAlarms", []):
            dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
            notifies_topic = alarms_topic is not None and alarms_topic in alarm.get("AlarmActions", [])
            if dimensions.get("QueueName") in queue_names or notifies_topic:
                found.append(
                    {
                        "name": alarm["AlarmName"],
                        "state": alarm.get("StateValue"),
                        "metric": alarm.get("MetricName"),
                        "queue": dimensions.get("QueueName"),
                        "reason": alarm.get("StateReason"),
                        "since": alarm.get("StateUpdatedTimestamp"),
                    }
                )
    return sorted(found, key=lambda a: a["name"])


PART_ERRORS = (ClientError, BotoCoreError)


def _reraise_setup_errors(error: Exception) -> None:
    """No credentials or region is not one unreadable part but the whole command failing."""
    if isinstance(error, NoCredentialsError | NoRegionError):
        raise error


def _reason(error: Exception) -> str:
    return describe(error) if isinstance(error, ClientError) else str(error)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sample",
        action="store_true",
        help="without CloudWatch figures, sample message ages (counts as a receive)",
    )


COMMAND = Command(
    "status",
    "Queue depths, oldest message age, DLQ depth, alarm states and the active receipt rule set.",
    run,
    ("queue_url", "dlq_url", "rule_set", "alarms_topic"),
    add_arguments,
)
