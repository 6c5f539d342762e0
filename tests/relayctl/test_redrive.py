"""redrive: every DLQ message reaches the inbound queue once moved, and none is lost when a step fails."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff
from moto.core.botocore_stubber import BotocoreStubber

from relayctl import redrive
from relayctl.aws import Aws
from tests.support.relayctl import Relay


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


def _arns(relay: Relay) -> tuple[str, str]:
    def arn(url: str) -> str:
        attributes = relay.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    return arn(relay.dlq_url), arn(relay.queue_url)


def _fake_move_tasks(
    monkeypatch: pytest.MonkeyPatch, listings: list[list[dict[str, Any]]], started: list[dict[str, str]]
) -> None:
    """SQS's move task calls answered from `listings` (one per ListMessageMoveTasks call, newest
    task first, as SQS orders them); the other SQS calls reach moto."""
    calls = iter(listings)

    def make(real: Any) -> Any:
        def start_message_move_task(**kwargs: str) -> dict[str, str]:
            started.append(kwargs)
            return {"TaskHandle": "handle-mine"}

        def list_message_move_tasks(**kwargs: Any) -> dict[str, Any]:
            return {"Results": next(calls)}

        return _Sqs(
            real,
            start_message_move_task=start_message_move_task,
            list_message_move_tasks=list_message_move_tasks,
        )

    _patch_sqs(monkeypatch, make)
    monkeypatch.setattr(redrive, "POLL_SECONDS", 0)


OLD = {"Status": "COMPLETED", "StartedTimestamp": 1_000, "ApproximateNumberOfMessagesMoved": 40}


def test_the_message_move_task_is_used_and_its_own_task_followed(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill_dlq(relay, 7)
    started: list[dict[str, str]] = []
    mine_running = {
        "TaskHandle": "handle-mine",
        "Status": "RUNNING",
        "StartedTimestamp": 2_000,
        "ApproximateNumberOfMessagesMoved": 3,
    }
    # SQS reports TaskHandle only while a task runs: once ours has finished, the newest task is one
    # somebody started after it; ours is known by the start time seen with its handle.
    mine_done = {"Status": "COMPLETED", "StartedTimestamp": 2_000, "ApproximateNumberOfMessagesMoved": 7}
    theirs = {"TaskHandle": "handle-theirs", "Status": "RUNNING", "StartedTimestamp": 3_000}
    _fake_move_tasks(monkeypatch, [[OLD], [mine_running, OLD], [theirs, mine_done, OLD]], started)

    report = relay.run_json("redrive", *_queues(relay))

    dlq_arn, inbound_arn = _arns(relay)
    assert started == [{"SourceArn": dlq_arn, "DestinationArn": inbound_arn}]
    assert report["task_handle"] == "handle-mine"
    assert (report["method"], report["status"], report["moved"]) == ("message-move-task", "COMPLETED", 7)


def test_a_task_that_finished_before_the_first_look_is_the_new_one(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill_dlq(relay, 7)
    failed_before = {**OLD, "Status": "FAILED", "FailureReason": "AccessDenied"}
    mine = {"Status": "COMPLETED", "StartedTimestamp": 2_000, "ApproximateNumberOfMessagesMoved": 7}
    _fake_move_tasks(monkeypatch, [[failed_before], [mine, failed_before]], [])

    report = relay.run_json("redrive", *_queues(relay))

    assert (report["status"], report["moved"], report["failure_reason"]) == ("COMPLETED", 7, None)


def test_a_refused_move_task_is_an_error_not_a_silent_fallback(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill_dlq(relay, 2)

    def make(real: Any) -> Any:
        def start_message_move_task(**kwargs: str) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "StartMessageMoveTask")

        return _Sqs(
            real,
            list_message_move_tasks=lambda **kwargs: {"Results": []},
            start_message_move_task=start_message_move_task,
        )

    _patch_sqs(monkeypatch, make)
    code, _, err = relay.run("redrive", *_queues(relay))
    assert code == 1
    assert "StartMessageMoveTask failed: AccessDenied" in err
    assert relay.depth(relay.dlq_url) == 2


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **kwargs: Any) -> Any:
        yield self._body


def _answer_move_tasks_over_http(
    monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[tuple[int, dict[str, str], dict[str, Any]]]]
) -> dict[str, int]:
    """Answer the move task operations with these HTTP responses (status, headers, JSON body), in
    order, below botocore's parsing and retries (a before-send hook, ahead of moto's); the count of
    requests each operation made is returned."""
    sent: dict[str, int] = {}
    original = Aws.client
    hooked: set[int] = set()

    def client(self: Aws, service: str, attempts: int = 5) -> Any:
        real = original(self, service, attempts)
        if service != "sqs" or id(real) in hooked:
            return real
        hooked.add(id(real))
        for operation, responses in answers.items():
            queue = iter(responses)

            def respond(request: Any, operation: str = operation, queue: Any = queue, **kwargs: Any) -> Any:
                sent[operation] = sent.get(operation, 0) + 1
                status, headers, body = next(queue)
                return AWSResponse(request.url, status, headers, _Raw(json.dumps(body).encode()))

            real.meta.events.register_first(f"before-send.sqs.{operation}", respond)
        return real

    moto_answer = BotocoreStubber.__call__

    def moto_unless_answered(stubber: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        # botocore calls every before-send handler; moto's would raise NotImplementedError here.
        if event_name.rsplit(".", 1)[-1] in answers:
            return None
        return moto_answer(stubber, event_name, request, **kwargs)

    monkeypatch.setattr(Aws, "client", client)
    monkeypatch.setattr(BotocoreStubber, "__call__", moto_unless_answered)
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    return sent


def _error(
    status: int, shape: str, query_code: str | None = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    if query_code:
        headers["x-amzn-query-error"] = f"{query_code};Sender"
    return status, headers, {"__type": f"com.amazonaws.sqs#{shape}", "message": "no"}


_OK = {"Content-Type": "application/x-amz-json-1.0"}


@pytest.mark.parametrize(
    "answer",
    [
        _error(400, "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation"),
        _error(400, "UnsupportedOperation"),
        _error(400, "UnknownOperationException"),
        _error(400, "InvalidAction"),
    ],
    ids=["query-compatible", "json", "unknown-operation", "invalid-action"],
)
def test_only_a_not_implemented_answer_means_no_move_task(
    relay: Relay, monkeypatch: pytest.MonkeyPatch, answer: tuple[int, dict[str, str], dict[str, Any]]
) -> None:
    _fill_dlq(relay, 3)
    sent = _answer_move_tasks_over_http(monkeypatch, {"ListMessageMoveTasks": [answer]})

    report = relay.run_json("redrive", *_queues(relay))

    assert sent == {"ListMessageMoveTasks": 1}  # a 400 is not retried
    assert (report["method"], report["moved"]) == ("receive-send-delete", 3)


def test_a_server_error_is_retried_and_the_move_task_still_used(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill_dlq(relay, 3)
    running = {
        "TaskHandle": "h-1",
        "Status": "RUNNING",
        "StartedTimestamp": 5,
        "ApproximateNumberOfMessagesMoved": 0,
    }
    done = {"Status": "COMPLETED", "StartedTimestamp": 5, "ApproximateNumberOfMessagesMoved": 3}
    sent = _answer_move_tasks_over_http(
        monkeypatch,
        {
            "StartMessageMoveTask": [
                _error(500, "InternalFailure"),
                _error(503, "ServiceUnavailable"),
                (200, _OK, {"TaskHandle": "h-1"}),
            ],
            "ListMessageMoveTasks": [
                (200, _OK, {"Results": []}),
                (200, _OK, {"Results": [running]}),
                (200, _OK, {"Results": [done]}),
            ],
        },
    )
    monkeypatch.setattr(redrive, "POLL_SECONDS", 0)

    report = relay.run_json("redrive", *_queues(relay))

    assert sent["StartMessageMoveTask"] == 3
    assert (report["method"], report["status"], report["moved"]) == ("message-move-task", "COMPLETED", 3)
    assert relay.depth(relay.dlq_url) == 3  # the fake task moved nothing in moto: no second method ran


def test_a_lasting_server_error_fails_without_switching_method(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill_dlq(relay, 3)
    sent = _answer_move_tasks_over_http(
        monkeypatch,
        {
            "ListMessageMoveTasks": [(200, _OK, {"Results": []})],
            "StartMessageMoveTask": [_error(500, "InternalFailure")] * 6,
        },
    )

    code, out, err = relay.run("redrive", *_queues(relay))

    assert code == 1
    assert out == ""
    assert sent["StartMessageMoveTask"] == 6  # the first attempt and botocore's 5 retries
    assert "StartMessageMoveTask failed: InternalFailure" in err
    assert "after 6 attempts; nothing was moved" in err
    assert "--no-move-task" in err
    assert relay.depth(relay.dlq_url) == 3
    assert relay.depth(relay.queue_url) == 0
