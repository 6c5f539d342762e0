"""The alarm clock: a scheduled function (every minute) that finds the alarms due for a tick and puts one
tick each on the inbound queue, where the relay processes it like mail (retries, then the DLQ).

Why a sweep and the queue, rather than a timer per alarm: the alarm table's sparse `due` index is the
one place that says what is due, so a tick lost to a crash is found again by the next sweep, and there
are no per-alarm schedules to create on the mail's path or to clean up. A tick is put on the queue with
the delay left until its time (SQS allows up to 15 minutes), so a digest goes out at its time, not up to
a minute later; the sweep looks LOOKAHEAD ahead to make that possible. A tick for an alarm not yet due
changes nothing, so an early or duplicate tick is harmless; an alarm is ticked at most once per due time
while its tick is in flight (`Incidents.claim_tick`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app import records
from app.aws import clients, error_codes, visibility
from app.aws.incidents import Incidents
from app.config import load_clock_settings
from app.errors import RetryableError

logging.getLogger("iot_mail_relay").setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper())
log = logging.getLogger("iot_mail_relay")

LOOKAHEAD = timedelta(seconds=60)  # the schedule's period: what falls due before the next sweep
MAX_DELAY_SECONDS = 900  # SQS's longest per-message delay
BATCH = 10  # SendMessageBatch takes at most ten entries


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    settings = load_clock_settings()
    started, now = time.monotonic(), datetime.now(UTC)
    incidents = Incidents(settings.incidents_table)
    due = [d for d in incidents.due(now + LOOKAHEAD) if incidents.claim_tick(d.fingerprint, d.due_at, now)]
    url = visibility.queue_url(settings.inbound_queue_arn)
    for start in range(0, len(due), BATCH):
        entries = [
            {
                "Id": str(n),
                "MessageBody": records.tick_body(d.fingerprint, int(d.due_at.timestamp())),
                # rounded up: a tick that arrives before its alarm is due does nothing
                "DelaySeconds": max(0, min(MAX_DELAY_SECONDS, math.ceil((d.due_at - now).total_seconds()))),
            }
            for n, d in enumerate(due[start : start + BATCH])
        ]
        try:
            failed = clients.client("sqs").send_message_batch(QueueUrl=url, Entries=entries).get("Failed", [])
        except (ClientError, BotoCoreError) as e:
            raise RetryableError(f"queueing alarm ticks: {error_codes.describe(e)}") from e
        if failed:  # their claims lapse and the next sweeps put them on the queue again
            log.warning("%d alarm ticks were not queued: %s", len(failed), [f.get("Code") for f in failed])
    log.info(
        "alarm clock: %d ticks queued",
        len(due),
        extra={"ticks": len(due), "processing_ms": round((time.monotonic() - started) * 1000, 1)},
    )
    return {"ticks": len(due)}
