"""A failed record is hidden for the backoff's delay, growing with its receive count, before it is
reported; against moto's SQS, with records shaped as Lambda (and the sandbox's poller) hand them over."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import boto3
import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from app import backoff
from app.handler import lambda_handler
from demo.world import REGION, World, sqs_event
from sandbox.poller import sqs_event_record
from tests.template.conftest import load_template

MISSING = "incoming/not-there-yet.eml"  # a mail that is not (yet) in the bucket: retried every time


def _inbound_queue_properties() -> dict[str, Any]:
    template = load_template()
    queues = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::SQS::Queue"]
    (inbound,) = [q for q in queues if "RedrivePolicy" in q]
    return inbound


@pytest.fixture
def queue(world: World) -> tuple[Any, str, str, str]:
    """The inbound queue and its DLQ with the template's visibility timeout and maxReceiveCount."""
    props = _inbound_queue_properties()
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="relay-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": props["RedrivePolicy"]["maxReceiveCount"]}
    url = sqs.create_queue(
        QueueName="relay-inbound",
        Attributes={
            "VisibilityTimeout": str(props["VisibilityTimeout"]),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs, url, arn, dlq


def _visible_in(name: str) -> float:
    """Seconds until moto offers the queue's only message again."""
    (message,) = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[name]._messages
    return message.visible_at / 1000 - time.time()


def test_receive_counts_one_to_five_get_the_schedules_timeouts(queue: tuple[Any, str, str, str]) -> None:
    sqs, url, arn, dlq = queue
    sqs.send_message(QueueUrl=url, MessageBody=sqs_event(MISSING)["Records"][0]["body"])
    max_receive_count = _inbound_queue_properties()["RedrivePolicy"]["maxReceiveCount"]
    waited = []
    for count in range(1, max_receive_count + 1):
        (message,) = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"])["Messages"]
        assert message["Attributes"]["ApproximateReceiveCount"] == str(count)
        record = sqs_event_record(message, arn, REGION)
        assert lambda_handler({"Records": [record]}, None) == {
            "batchItemFailures": [{"itemIdentifier": message["MessageId"]}]
        }
        hidden = _visible_in("relay-inbound")
        assert backoff.delay(count) - 2 < hidden <= backoff.delay(count), (count, hidden)
        waited.append(backoff.delay(count))
        assert "Messages" not in sqs.receive_message(QueueUrl=url), "the record must stay hidden"
        # the delay has passed: SQS offers it again
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    assert waited == [10, 30, 120, 300, 600]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)  # the sixth receive moves it to the DLQ
    (dead,) = sqs.receive_message(QueueUrl=dlq)["Messages"]
    assert json.loads(dead["Body"])["Records"][0]["s3"]["object"]["key"] == MISSING


def test_a_failing_visibility_change_still_reports_the_record(
    queue: tuple[Any, str, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    sqs, url, arn, _ = queue
    sqs.send_message(QueueUrl=url, MessageBody=sqs_event(MISSING)["Records"][0]["body"])
    (message,) = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"])["Messages"]
    gone = sqs_event_record(message, arn.replace("relay-inbound", "deleted-queue"), REGION)
    caplog.set_level(logging.WARNING, logger="iot_mail_relay")
    assert lambda_handler({"Records": [gone]}, None) == {
        "batchItemFailures": [{"itemIdentifier": message["MessageId"]}]
    }
    assert "keeps the queue's visibility timeout" in caplog.text
    assert message["ReceiptHandle"] not in caplog.text


def test_acknowledged_records_are_left_to_lambda(queue: tuple[Any, str, str, str], world: World) -> None:
    """Only failures are postponed: a handled record keeps its timeout and Lambda deletes it."""
    sqs, url, arn, _ = queue
    world.put_mail("incoming/empty.eml", b"From: s@plant.example.com\r\n\r\nnothing to do\r\n")
    sqs.send_message(QueueUrl=url, MessageBody=sqs_event("incoming/empty.eml")["Records"][0]["body"])
    (message,) = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"])["Messages"]
    assert lambda_handler({"Records": [sqs_event_record(message, arn, REGION)]}, None) == {
        "batchItemFailures": []
    }
    assert _visible_in("relay-inbound") > backoff.SCHEDULE[-1]  # still the queue's own 1200 s


def test_the_sandbox_poller_honours_the_functions_delay(world: World) -> None:
    """The poller leaves a reported record to SQS (moto): the delay the function set holds, not the
    queue's own (here 1 s) timeout."""
    from app.aws import visibility
    from sandbox.poller import LambdaContext, Poller

    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="short", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message(QueueUrl=url, MessageBody="fails once")
    delay = 3
    seen: list[float] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(time.monotonic())
        (record,) = event["Records"]
        if len(seen) > 1:
            return {"batchItemFailures": []}
        assert visibility.postpone(record, delay)
        return {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}

    context = lambda: LambdaContext("fn", "arn", 128, 30)  # noqa: E731
    poller = Poller(sqs, url, arn, REGION, lambda: handler, context, 10, 0)
    deadline = time.monotonic() + delay + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        poller.poll_once()
    assert len(seen) == 2
    assert seen[1] - seen[0] >= delay - 0.5  # not after the queue's 1 s
    assert poller.stats.acknowledged == 1
