"""redrive: move the dead-letter queue's messages back to the inbound queue after a fix.

SQS's own message move task is used where the endpoint offers it (AWS does; moto does not). Otherwise,
or with `--max`, messages are received, sent to the inbound queue and deleted from the DLQ only after
the send succeeded: an interruption can leave a copy in both queues (the function's idempotency
markers make the second delivery harmless), never in neither.

Only an answer that says the operation does not exist (`UnsupportedOperation`, an unknown action,
moto's NotImplementedError in process) means "no move task". A 5xx or throttling answer is retried by
the client (standard retry mode); if it persists, the command fails with exit status 1 and moves
nothing: switching method on a server error would hide an outage. Endpoints that answer every unknown
action with a bare 500 (moto's server, the sandbox) therefore need `--no-move-task`.

The task followed is the one this command started: ListMessageMoveTasks reports a task's `TaskHandle`
only while it is RUNNING (SQS API reference, ListMessageMoveTasksResultEntry), so the task is matched
by its handle and then by the `StartedTimestamp` seen with it; a task that finished before the first
look is the one that was not in the list before the start.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from app.aws import error_codes
from relayctl.aws import Aws, CommandError, describe
from relayctl.command import Command, positive
from relayctl.report import Report
from relayctl.resources import Resources

# What an endpoint without the move task answers: the JSON protocol's UnsupportedOperation (botocore
# reports the query-compatible code AWS.SimpleQueueService.UnsupportedOperation when SQS sends the
# x-amzn-query-error header), an unknown action under the JSON or query protocol, or "not implemented".
# Not 5xx or InternalFailure: those are failures of an endpoint that may well have the task.
UNSUPPORTED = {
    "UnsupportedOperation",
    "AWS.SimpleQueueService.UnsupportedOperation",
    "UnknownOperationException",
    "InvalidAction",
    "NotImplemented",
    "501",
}
POLL_SECONDS = 2.0
HISTORY = 10  # ListMessageMoveTasks returns at most the 10 most recent tasks
FINISHED = {"COMPLETED", "CANCELLED", "FAILED"}
_ATTRIBUTE_FIELDS = ("DataType", "StringValue", "BinaryValue")


@dataclass
class Moved:
    moved: int = 0
    not_sent: int = 0  # still in the DLQ, visible again after the visibility timeout
    not_deleted: int = 0  # sent, but also still in the DLQ: will be sent again by the next redrive


def run(args: argparse.Namespace, aws: Aws) -> Report:
    resources = Resources.from_args(args, aws)
    dlq, inbound = resources.require("dlq_url"), resources.require("queue_url")
    sqs = aws.client("sqs")
    waiting = queue_counts(sqs, dlq)
    total = waiting["visible"] + waiting["in_flight"]
    base = {"source": dlq, "destination": inbound, "messages_in_dlq": total}
    if args.dry_run:
        line = f"would move {total} message(s) from {dlq} to {inbound}"
        if waiting["in_flight"]:
            line += f" ({waiting['in_flight']} currently in flight)"
        return Report({**base, "dry_run": True}, [line])
    if total == 0:
        return Report({**base, "method": None, "moved": 0}, [f"{dlq} is empty: nothing to redrive"])
    if not args.no_move_task and args.max is None:
        dlq_arn, inbound_arn = _arn(sqs, dlq), _arn(sqs, inbound)
        before = earlier_tasks(sqs, dlq_arn)
        if before is not None:
            handle = start_move_task(sqs, dlq_arn, inbound_arn)
            if handle is not None:
                return _follow_task(sqs, dlq_arn, handle, before, base, args)
    result = move_by_hand(sqs, dlq, inbound, args.max, args.visibility_timeout)
    lines = [f"moved {result.moved} message(s) from {dlq} to {inbound} (receive, send, delete)"]
    if result.not_sent:
        lines.append(f"{result.not_sent} message(s) could not be sent and stay in the DLQ")
    if result.not_deleted:
        lines.append(f"{result.not_deleted} message(s) were sent but not deleted from the DLQ (duplicates)")
    data = {**base, "method": "receive-send-delete", **result.__dict__}
    return Report(data, lines, ok=result.not_sent == 0)


def queue_counts(sqs: Any, url: str) -> dict[str, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    except ClientError as e:
        raise CommandError(f"reading queue {url}: {describe(e)}") from e
    return {
        "visible": int(attributes.get(names[0], 0)),
        "in_flight": int(attributes.get(names[1], 0)),
    }


def earlier_tasks(sqs: Any, source_arn: str) -> set[int] | None:
    """Start times of the source queue's recent move tasks, so the one started next can be told apart;
    None when the endpoint has no message move task."""
    try:
        results = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=HISTORY).get("Results", [])
    except NotImplementedError:  # moto in process
        return None
    except ClientError as e:
        if error_codes.code(e) in UNSUPPORTED:
            return None
        raise CommandError(_move_task_error("listing message move tasks", e)) from e
    return {int(t["StartedTimestamp"]) for t in results if "StartedTimestamp" in t}


def start_move_task(sqs: Any, source_arn: str, destination_arn: str) -> str | None:
    """The task handle, or None when the endpoint has no message move task."""
    try:
        response = sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn)
    except NotImplementedError:  # moto in process
        return None
    except ClientError as e:
        if error_codes.code(e) in UNSUPPORTED:
            return None
        raise CommandError(_move_task_error("starting the message move task", e)) from e
    return str(response["TaskHandle"])


def _move_task_error(doing: str, error: ClientError) -> str:
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    text = f"{doing}: {describe(error)}"
    if status >= 500 or error_codes.code(error) in {"InternalFailure", "ServiceUnavailable"}:
        attempts = error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        text += (
            f" (after {int(attempts) + 1} attempts; nothing was moved). Try again later, or pass"
            " --no-move-task to move the messages by receive/send/delete (endpoints without the"
            " move task, such as the sandbox, answer this way)"
        )
    return text


def _follow_task(
    sqs: Any,
    source_arn: str,
    handle: str,
    before: set[int],
    base: dict[str, Any],
    args: argparse.Namespace,
) -> Report:
    data: dict[str, Any] = {**base, "method": "message-move-task", "task_handle": handle}
    if args.no_wait:
        return Report(data, [f"started message move task {handle}; `relayctl status` shows the DLQ draining"])
    deadline = time.monotonic() + args.timeout
    started: int | None = None
    task: dict[str, Any] = {}
    while True:
        try:
            tasks = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=HISTORY).get("Results", [])
        except ClientError as e:
            raise CommandError(f"reading the message move task: {describe(e)}") from e
        task = own_task(tasks, handle, started, before) or {}
        if task.get("StartedTimestamp") is not None:
            started = int(task["StartedTimestamp"])
        if task.get("Status") in FINISHED or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    status = task.get("Status", "UNKNOWN")
    moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
    data.update(status=status, moved=moved, failure_reason=task.get("FailureReason"))
    line = f"message move task {status.lower()}: {moved} message(s) moved to {base['destination']}"
    if task.get("FailureReason"):
        line += f" ({task['FailureReason']})"
    if status not in FINISHED:
        line += f"; still running after {args.timeout} s" if task else f"; task {handle} not found"
    return Report(data, [line], ok=status in {"COMPLETED", "RUNNING"})


def own_task(
    tasks: list[dict[str, Any]], handle: str, started: int | None, before: set[int]
) -> dict[str, Any] | None:
    """This command's task among the source queue's recent ones (newest first), not merely the newest."""
    for task in tasks:
        if task.get("TaskHandle") == handle:
            return task
    if started is not None:  # seen running before: the same start time, now finished
        return next((t for t in tasks if t.get("StartedTimestamp") == started), None)
    new = [t for t in tasks if "StartedTimestamp" in t and int(t["StartedTimestamp"]) not in before]
    # Only one task per queue runs at a time and ours was running when the start returned, so the
    # oldest task that was not there before is ours (a later one can only have started after it).
    return min(new, key=lambda t: int(t["StartedTimestamp"])) if new else None


def move_by_hand(sqs: Any, source: str, destination: str, limit: int | None, visibility: int) -> Moved:
    """Receive, send, then delete only what was sent; stops when a receive finds the queue empty."""
    result = Moved()
    while limit is None or result.moved + result.not_sent < limit:
        wanted = 10 if limit is None else min(10, limit - result.moved - result.not_sent)
        try:
            messages = sqs.receive_message(
                QueueUrl=source,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=1,
                VisibilityTimeout=visibility,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        except ClientError as e:
            raise CommandError(f"receiving from {source}: {describe(e)} (moved {result.moved} so far)") from e
        if not messages:
            break
        entries = [_entry(str(i), m) for i, m in enumerate(messages)]
        try:
            response = sqs.send_message_batch(QueueUrl=destination, Entries=entries)
        except ClientError as e:
            raise CommandError(
                f"sending to {destination}: {describe(e)} (moved {result.moved} so far; the "
                f"{len(messages)} received are still in the DLQ)"
            ) from e
        sent = [e["Id"] for e in response.get("Successful", [])]
        result.not_sent += len(messages) - len(sent)
        result.moved += len(sent)
        if sent:
            receipts = [{"Id": i, "ReceiptHandle": messages[int(i)]["ReceiptHandle"]} for i in sent]
            try:
                deleted = sqs.delete_message_batch(QueueUrl=source, Entries=receipts)
                result.not_deleted += len(deleted.get("Failed", []))
            except ClientError:
                result.not_deleted += len(receipts)
    return result


def _entry(entry_id: str, message: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message["Body"]}
    attributes = {
        name: {k: v for k, v in value.items() if k in _ATTRIBUTE_FIELDS}
        for name, value in message.get("MessageAttributes", {}).items()
    }
    if attributes:
        entry["MessageAttributes"] = attributes
    return entry


def _arn(sqs: Any, url: str) -> str:
    try:
        return str(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )
    except ClientError as e:
        raise CommandError(f"reading queue {url}: {describe(e)}") from e


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="only count the messages that would move")
    parser.add_argument(
        "--max", type=positive, metavar="N", help="move at most N messages (receive/send/delete)"
    )
    parser.add_argument(
        "--no-move-task", action="store_true", help="receive/send/delete even where SQS's move task exists"
    )
    parser.add_argument(
        "--visibility-timeout",
        type=positive,
        default=60,
        metavar="SECONDS",
        help="how long a message being moved stays hidden in the DLQ (default 60)",
    )
    parser.add_argument("--no-wait", action="store_true", help="start the move task and return")
    parser.add_argument(
        "--timeout",
        type=positive,
        default=300,
        metavar="SECONDS",
        help="wait at most this for the move task",
    )


COMMAND = Command(
    "redrive",
    "Move the dead-letter queue's messages back to the inbound queue.",
    run,
    ("queue_url", "dlq_url"),
    add_arguments,
)
