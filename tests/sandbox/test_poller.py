"""The poller keeps Lambda's SQS contract: batches, partial failures, redelivery and the DLQ."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localaws.events import LambdaContext, sqs_event_record
from sandbox.poller import Poller, failed_ids

IDS = ["a", "b", "c"]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, set(IDS)),  # Lambda: the whole batch failed
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, set(IDS)),
        ({"batchItemFailures": [{"nope": "a"}]}, set(IDS)),
        ("not a dict", set(IDS)),
    ],
)
def test_failed_ids_follow_lambdas_partial_batch_rules(response: Any, failed: set[str]) -> None:
    assert failed_ids(response, IDS, report_failures=True) == failed


@pytest.mark.unit
def test_without_report_batch_item_failures_the_response_is_ignored() -> None:
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "a"}]}, IDS, report_failures=False) == set()


@pytest.mark.unit
def test_records_have_lambdas_shape() -> None:
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "rh",
        "Body": "{}",
        "MD5OfBody": "99914b932bd37a50b983c5e7c90ae93b",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1", "SequenceNumber": "x"},
        "MessageAttributes": {"reason": {"DataType": "String", "StringValue": "virus"}},
    }
    record = sqs_event_record(message, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")
    assert record["messageId"] == "m1"
    assert record["receiptHandle"] == "rh"
    assert record["body"] == "{}"
    assert record["attributes"] == {"ApproximateReceiveCount": "2", "SentTimestamp": "1"}
    assert record["messageAttributes"]["reason"]["stringValue"] == "virus"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":q")


@pytest.mark.unit
def test_the_context_counts_down_from_the_timeout() -> None:
    context = LambdaContext("fn", "arn:aws:lambda:us-east-1:123456789012:function:fn", 512, 180)
    assert 179_000 < context.get_remaining_time_in_millis() <= 180_000
    assert context.memory_limit_in_mb == "512"


@pytest.fixture
def queues(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str, str, str]]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
        url = sqs.create_queue(
            QueueName="in", Attributes={"VisibilityTimeout": "1", "RedrivePolicy": redrive}
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        yield sqs, url, arn, dlq


def _poller(sqs: Any, url: str, arn: str, handler: Any, batch_size: int = 10) -> Poller:
    return Poller(
        sqs,
        url,
        arn,
        "us-east-1",
        lambda: handler,
        lambda: LambdaContext("fn", "arn", 128, 30),
        batch_size,
        0.3,
    )


@pytest.mark.integration
def test_reported_failures_come_back_and_end_in_the_dlq(queues: tuple[Any, str, str, str]) -> None:
    sqs, url, arn, dlq = queues
    for body in ("ok", "bad"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    seen: list[tuple[str, str]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.extend((r["body"], r["attributes"]["ApproximateReceiveCount"]) for r in event["Records"])
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"
            ]
        }

    poller = _poller(sqs, url, arn, handler)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        poller.poll_once()
        if (
            sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
            == "1"
        ):
            break
    assert seen == [
        ("ok", "1"),
        ("bad", "1"),
        ("bad", "2"),
    ]  # acknowledged once; failed until maxReceiveCount
    (dead,) = sqs.receive_message(QueueUrl=dlq)["Messages"]
    assert dead["Body"] == "bad"
    assert poller.stats.acknowledged == 1
    assert poller.stats.reported_failures == 2


@pytest.mark.integration
def test_a_raising_handler_leaves_the_whole_batch(queues: tuple[Any, str, str, str]) -> None:
    sqs, url, arn, _ = queues
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))

    def handler(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("boom")

    poller = _poller(sqs, url, arn, handler)
    assert poller.poll_once() == 3
    assert poller.stats.errors == 1
    assert poller.stats.acknowledged == 0
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "3"


@pytest.mark.integration
def test_batches_are_at_most_the_batch_size(queues: tuple[Any, str, str, str]) -> None:
    sqs, url, arn, _ = queues
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    sizes: list[int] = []
    poller = _poller(sqs, url, arn, lambda event, context: sizes.append(len(event["Records"])), batch_size=2)
    while sum(sizes) < 5:
        poller.poll_once()
    assert max(sizes) == 2
    assert sum(sizes) == 5
