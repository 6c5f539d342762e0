"""Drives the handler the way Lambda's SQS event source mapping does.

Batches of up to BatchSize records gathered for at most MaximumBatchingWindowInSeconds; records the
handler reports in `batchItemFailures` (or the whole batch when it raises or answers nonsense) are left
alone, so they reappear after the visibility timeout (the queue's, or the one the function set with
ChangeMessageVisibility) and, after maxReceiveCount receives, SQS (moto) moves them to the DLQ.
Acknowledged records are deleted.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localaws.events import LambdaContext, sqs_event_record

log = logging.getLogger("sandbox.poller")

Handler = Callable[[dict[str, Any], Any], Any]
SQS_MAX_RECEIVE = 10


def failed_ids(response: Any, message_ids: list[str], report_failures: bool) -> set[str]:
    """Which records Lambda would leave on the queue for this handler response.

    Without ReportBatchItemFailures a response is ignored (success). With it, an identifier that is
    missing, empty or not in the batch makes Lambda treat the whole batch as failed.
    """
    if not report_failures or response is None:
        return set()
    if not isinstance(response, dict):
        return set(message_ids)
    failures = response.get("batchItemFailures") or []
    if not isinstance(failures, list):
        return set(message_ids)
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in message_ids:
            return set(message_ids)
        failed.add(identifier)
    return failed


@dataclass
class PollerStats:
    invocations: int = 0
    records: int = 0
    acknowledged: int = 0
    reported_failures: int = 0
    errors: int = 0  # invocations that raised (Lambda's Errors metric)
    error_times: list[float] = field(default_factory=list)
    first_seen: dict[str, float] = field(default_factory=dict)  # message id -> SentTimestamp (s)


class Poller:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        region: str,
        handler: Callable[[], Handler],
        context: Callable[[], LambdaContext],
        batch_size: int,
        window_seconds: float,
        report_failures: bool = True,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.handler = handler
        self.context = context
        self.batch_size = batch_size
        self.window_seconds = window_seconds
        self.report_failures = report_failures
        self.stats = PollerStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sandbox-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        """Finish the batch in hand, then stop (unprocessed records stay on the queue)."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("poller: receive/delete failed; retrying in a second")
                self._stop.wait(1)

    def gather(self) -> list[dict[str, Any]]:
        """Long-poll until a batch is full or the window since the first record has passed."""
        messages: list[dict[str, Any]] = []
        deadline: float | None = None
        while len(messages) < self.batch_size and not self._stop.is_set():
            remaining = 1.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                break
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(SQS_MAX_RECEIVE, self.batch_size - len(messages)),
                WaitTimeSeconds=int(min(1.0, remaining)),
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            messages.extend(received)
            if messages and deadline is None:
                deadline = time.monotonic() + self.window_seconds
                if self.window_seconds <= 0:
                    break
            if deadline is None:
                return []  # nothing yet: let the caller check for stop
            if not received:
                self._stop.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        return messages

    def poll_once(self) -> int:
        """Gather one batch and invoke the handler on it; returns the number of records."""
        messages = self.gather()
        if not messages:
            return 0
        for message in messages:
            sent = message.get("Attributes", {}).get("SentTimestamp")
            if sent:
                self.stats.first_seen.setdefault(message["MessageId"], int(sent) / 1000)
        event = {"Records": [sqs_event_record(m, self.queue_arn, self.region) for m in messages]}
        ids = [m["MessageId"] for m in messages]
        self.stats.invocations += 1
        self.stats.records += len(messages)
        try:
            response = self.handler()(event, self.context())
            failed = failed_ids(response, ids, self.report_failures)
        except Exception:
            self.stats.errors += 1
            self.stats.error_times.append(time.time())
            log.error("handler raised; the whole batch stays on the queue:\n%s", traceback.format_exc())
            failed = set(ids)
        self.stats.reported_failures += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), SQS_MAX_RECEIVE):
            chunk = done[start : start + SQS_MAX_RECEIVE]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        self.stats.acknowledged += len(done)
        return len(messages)
