"""redrive: every DLQ message reaches the inbound queue once moved, and none is lost when a step fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from relayctl import redrive
from relayctl.aws import Aws
from tests.relayctl.conftest import Relay


def _fill_dlq(relay: Relay, count: int) -> set[str]:
    bodies = {f'{{"Records": [{{"s3": {{"object": {{"key": "incoming/m{i}"}}}}}}]}}' for i in range(count)}
    for body in sorted(bodies):
        relay.sqs.send_message(
            QueueUrl=relay.dlq_url,
            MessageBody=body,
            MessageAttributes={"origin": {"DataType": "String", "StringValue": "test"}},
        )
    return bodies


def _queues(relay: Relay) -> list[str]:
    return ["--queue-url", relay.queue_url, "--dlq-url", relay.dlq_url]


class _Sqs:
    """The real moto client with chosen operations replaced."""

    def __init__(self, real: Any, **overrides: Callable[..., Any]) -> None:
        self._real = real
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        return self._overrides.get(name) or getattr(self._real, name)


def _patch_sqs(monkeypatch: pytest.MonkeyPatch, make: Callable[[Any], Any]) -> None:
    original = Aws.client

    def client(self: Aws, service: str, attempts: int = 5) -> Any:
        real = original(self, service, attempts)
        return make(real) if service == "sqs" else real

    monkeypatch.setattr(Aws, "client", client)


def test_redrive_moves_every_message_with_its_attributes(relay: Relay) -> None:
    bodies = _fill_dlq(relay, 23)

    report = relay.run_json("redrive", *_queues(relay))

    assert report["method"] == "receive-send-delete"  # moto has no message move task
    assert report["moved"] == 23
    assert relay.depth(relay.dlq_url) == 0
    moved = relay.drain(relay.queue_url)
    assert {m["Body"] for m in moved} == bodies
    assert len(moved) == 23
    assert {m["MessageAttributes"]["origin"]["StringValue"] for m in moved} == {"test"}


def test_dry_run_counts_and_moves_nothing(relay: Relay) -> None:
    _fill_dlq(relay, 4)
    code, out, _ = relay.run("redrive", *_queues(relay), "--dry-run")
    assert code == 0
    assert out.startswith("would move 4 message(s)")
    assert relay.depth(relay.dlq_url) == 4
    assert relay.depth(relay.queue_url) == 0


def test_max_moves_at_most_that_many(relay: Relay) -> None:
    _fill_dlq(relay, 12)
    assert relay.run_json("redrive", *_queues(relay), "--max", "5")["moved"] == 5
    assert relay.depth(relay.queue_url) == 5
    assert relay.depth(relay.dlq_url) == 7


def test_an_empty_dlq_is_reported_not_an_error(relay: Relay) -> None:
    code, out, _ = relay.run("redrive", *_queues(relay))
    assert code == 0
    assert "is empty" in out


def test_a_failed_send_keeps_the_messages_in_the_dlq(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> None:
    bodies = _fill_dlq(relay, 23)
    calls = {"n": 0}

    def make(real: Any) -> Any:
        def send_message_batch(**kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 2:
                raise ClientError(
                    {"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, "SendMessageBatch"
                )
            return real.send_message_batch(**kwargs)

        return _Sqs(real, send_message_batch=send_message_batch)

    _patch_sqs(monkeypatch, make)
    code, out, err = relay.run("redrive", *_queues(relay))

    assert code == 1
    assert out == ""
    assert "SendMessageBatch failed: ServiceUnavailable" in err
    assert "moved 10 so far" in err
    in_inbound = relay.drain(relay.queue_url)
    assert len(in_inbound) == 10
    assert relay.depth(relay.dlq_url) == 13  # 10 in flight until their visibility timeout, 3 visible
    assert {m["Body"] for m in in_inbound} < bodies


def test_entries_the_inbound_queue_refused_stay_in_the_dlq(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill_dlq(relay, 3)

    def make(real: Any) -> Any:
        def send_message_batch(QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
            refused, accepted = Entries[0], Entries[1:]
            response = real.send_message_batch(QueueUrl=QueueUrl, Entries=accepted)
            response["Failed"] = [{"Id": refused["Id"], "Code": "InternalError", "SenderFault": False}]
            return response

        return _Sqs(real, send_message_batch=send_message_batch)

    _patch_sqs(monkeypatch, make)
    code, _, _ = relay.run("redrive", *_queues(relay), "--max", "3")

    assert code == 1
    assert relay.depth(relay.queue_url) == 2
    assert relay.depth(relay.dlq_url) == 1


def test_an_interruption_before_the_delete_duplicates_rather_than_loses(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = _fill_dlq(relay, 15)

    def make(real: Any) -> Any:
        def delete_message_batch(**kwargs: Any) -> Any:
            raise KeyboardInterrupt

        return _Sqs(real, delete_message_batch=delete_message_batch)

    _patch_sqs(monkeypatch, make)
    code, _, err = relay.run("redrive", *_queues(relay))

    assert code == 130
    assert "interrupted" in err
    assert relay.depth(relay.dlq_url) == 15  # all still there: the sent ten come back after the timeout
    assert {m["Body"] for m in relay.drain(relay.queue_url)} <= bodies


def test_the_message_move_task_is_used_where_sqs_offers_it(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill_dlq(relay, 7)
    started: list[dict[str, str]] = []
    statuses = iter(["RUNNING", "COMPLETED"])
    monkeypatch.setattr(redrive, "POLL_SECONDS", 0)

    def make(real: Any) -> Any:
        def start_message_move_task(**kwargs: str) -> dict[str, str]:
            started.append(kwargs)
            return {"TaskHandle": "handle-1"}

        def list_message_move_tasks(**kwargs: Any) -> dict[str, Any]:
            status = next(statuses)
            return {
                "Results": [
                    {"Status": status, "ApproximateNumberOfMessagesMoved": 7 if status == "COMPLETED" else 3}
                ]
            }

        return _Sqs(
            real,
            start_message_move_task=start_message_move_task,
            list_message_move_tasks=list_message_move_tasks,
        )

    _patch_sqs(monkeypatch, make)
    report = relay.run_json("redrive", *_queues(relay))

    arn = relay.sqs.get_queue_attributes(QueueUrl=relay.dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    inbound_arn = relay.sqs.get_queue_attributes(QueueUrl=relay.queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    assert started == [{"SourceArn": arn, "DestinationArn": inbound_arn}]
    assert (report["method"], report["status"], report["moved"]) == ("message-move-task", "COMPLETED", 7)


def test_a_refused_move_task_is_an_error_not_a_silent_fallback(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill_dlq(relay, 2)

    def make(real: Any) -> Any:
        def start_message_move_task(**kwargs: str) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "StartMessageMoveTask")

        return _Sqs(real, start_message_move_task=start_message_move_task)

    _patch_sqs(monkeypatch, make)
    code, _, err = relay.run("redrive", *_queues(relay))
    assert code == 1
    assert "StartMessageMoveTask failed: AccessDenied" in err
    assert relay.depth(relay.dlq_url) == 2
