"""redrive: move the dead-letter queue's messages back to the inbound queue after a fix.

SQS's own message move task is used where the endpoint offers it (AWS does; moto does not). Otherwise,
or with `--max`, messages are received, sent to the inbound queue and deleted from the DLQ only after
the send succeeded: an interruption can leave a copy in both queues (the function's idempotency
markers make the second delivery harmless), never in neither.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from relayctl.aws import Aws, CommandError, describe, error_code
from relayctl.report import Report
from relayctl.resources import Resources

# What an endpoint without the move task answers (moto's server: a bare 500).
UNSUPPORTED = {
    "500",
    "501",
    "InvalidAction",
    "NotImplemented",
    "InternalFailure",
    "UnsupportedOperation",
    "AWS.SimpleQueueService.UnsupportedOperation",
}
POLL_SECONDS = 2.0
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
        dlq_arn = _arn(sqs, dlq)
        # One attempt: an endpoint without the task answers 500, and the fallback is safe anyway.
        handle = start_move_task(aws.client("sqs", attempts=1), dlq_arn, _arn(sqs, inbound))
        if handle is not None:
            return _follow_task(sqs, dlq_arn, handle, base, args)
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


def start_move_task(sqs: Any, source_arn: str, destination_arn: str) -> str | None:
    """The task handle, or None when the endpoint has no message move task."""
    try:
        response = sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn)
    except NotImplementedError:  # moto in process
        return None
    except ClientError as e:
        if error_code(e) in UNSUPPORTED:
            return None
        raise CommandError(f"starting the message move task: {describe(e)}") from e
    return str(response["TaskHandle"])


def _follow_task(
    sqs: Any,
    source_arn: str,
    handle: str,
    base: dict[str, Any],
    args: argparse.Namespace,
) -> Report:
    data: dict[str, Any] = {**base, "method": "message-move-task", "task_handle": handle}
    if args.no_wait:
        return Report(data, [f"started message move task {handle}; `relayctl status` shows the DLQ draining"])
    deadline = time.monotonic() + args.timeout
    task: dict[str, Any] = {}
    while True:
        try:
            tasks = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1).get("Results", [])
        except ClientError as e:
            raise CommandError(f"reading the message move task: {describe(e)}") from e
        task = tasks[0] if tasks else {}
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
        line += f"; still running after {args.timeout} s"
    return Report(data, [line], ok=status in {"COMPLETED", "RUNNING"})


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
