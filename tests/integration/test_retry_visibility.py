"""A failed record is hidden for the backoff's delay, growing with its receive count, before it is
reported; against moto's SQS, with records shaped as Lambda (and the sandbox's poller) hand them over."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from moto.sqs.models import sqs_backends

from app import backoff
from app.handler import lambda_handler
from localaws.events import sqs_event_record
from tests.support.world import World

MISSING = "incoming/not-there-yet.eml"  # a mail that is not (yet) in the bucket: retried every time


@pytest.fixture
def queue(world: World) -> tuple[Any, str, str, str]:
    """The template's inbound queue and its DLQ (visibility timeout, maxReceiveCount)."""
    sqs = world.account.client("sqs")
    inbound, dlq = world.blueprint.inbound_queue, world.blueprint.dead_letter_queue
    assert dlq is not None
    url = world.account.queue_url(inbound.logical_id)
    sqs.purge_queue(QueueUrl=url)  # S3's s3:TestEvent from setting up the bucket's notification
    return sqs, url, inbound.arn, world.account.queue_url(dlq.logical_id)


def body(world: World, key: str) -> str:
    return str(world.event(key)["Records"][0]["body"])


def _visible_in(world: World) -> float:
    """Seconds until moto offers the inbound queue's only message again."""
    b = world.blueprint
    (message,) = sqs_backends[b.account_id][b.region].queues[b.inbound_queue.name]._messages
    return message.visible_at / 1000 - time.time()


def test_receive_counts_one_to_five_get_the_schedules_timeouts(
    world: World, queue: tuple[Any, str, str, str]
) -> None:
    sqs, url, arn, dlq = queue
    sqs.send_message(QueueUrl=url, MessageBody=body(world, MISSING))
    max_receive_count = world.blueprint.inbound_queue.max_receive_count
    assert max_receive_count == 5
    waited = []
    for count in range(1, max_receive_count + 1):
        (message,) = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"])["Messages"]
        assert message["Attributes"]["ApproximateReceiveCount"] == str(count)
        record = sqs_event_record(message, arn, world.blueprint.region)
        assert lambda_handler({"Records": [record]}, None) == {
            "batchItemFailures": [{"itemIdentifier": message["MessageId"]}]
        }
        hidden = _visible_in(world)
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
    world: World, queue: tuple[Any, str, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    sqs, url, arn, _ = queue
    sqs.send_message(QueueUrl=url, MessageBody=body(world, MISSING))
    (message,) = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"])["Messages"]
    gone = sqs_event_record(message, arn.rsplit(":", 1)[0] + ":deleted-queue", world.blueprint.region)
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
    # The bucket's notification put the mail's S3 event on the queue, as the template wires it.
    (message,) = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"])["Messages"]
    record = sqs_event_record(message, arn, world.blueprint.region)
    assert lambda_handler({"Records": [record]}, None) == {"batchItemFailures": []}
    assert _visible_in(world) > backoff.SCHEDULE[-1]  # still the queue's own 1200 s


def test_the_sandbox_poller_honours_the_functions_delay(world: World) -> None:
    """The poller leaves a reported record to SQS (moto): the delay the function set holds, not the
    queue's own (here 1 s) timeout."""
    from app.aws import visibility
    from localaws.events import LambdaContext
    from sandbox.poller import Poller

    sqs = world.account.client("sqs")
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
    poller = Poller(sqs, url, arn, world.blueprint.region, lambda: handler, context, 10, 0)
    deadline = time.monotonic() + delay + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        poller.poll_once()
    assert len(seen) == 2
    assert seen[1] - seen[0] >= delay - 0.5  # not after the queue's 1 s
    assert poller.stats.acknowledged == 1
