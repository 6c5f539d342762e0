"""The alarm clock: a scheduled function (every minute) that finds the alarms due for a tick and puts one
tick each on the inbound queue, where the relay processes it like mail (retries, then the DLQ).

Why a sweep and the queue, rather than a timer per alarm: the alarm table's sparse `due` index is the
one place that says what is due, so a tick lost to a crash is found again by the next sweep, and there
are no per-alarm schedules to create on the mail's path or to clean up. A tick is put on the queue with
the delay left until its time (SQS allows up to 15 minutes), so a digest goes out at its time, not up to
a minute later; the sweep looks LOOKAHEAD ahead to make that possible. A tick for an alarm not yet due
changes nothing, so an early or duplicate tick is harmless; an alarm is ticked at most once per due time
while its tick is in flight (`Incidents.claim_tick`).

Each alarm is claimed and queued on its own: a claim that fails (a throttle, a transaction holding the
alarm) skips that alarm until the next sweep, and a claim whose tick could not be queued is given back,
so one failure neither stops the sweep nor strands the alarms already claimed. The run still fails at
the end when anything was left out, for the function's error metric.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app import records
from app.aws import clients, error_codes, visibility
from app.aws.incidents import Conflict, Due, Incidents, Unavailable
from app.config import load_clock_settings
from app.errors import RetryableError

logging.getLogger("iot_mail_relay").setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper())
log = logging.getLogger("iot_mail_relay")

LOOKAHEAD = timedelta(seconds=60)  # the schedule's period: what falls due before the next sweep
MAX_DELAY_SECONDS = 900  # SQS's longest per-message delay
BATCH = 10  # SendMessageBatch takes at most ten entries
CLAIM_ATTEMPTS = 3  # of one alarm's claim while a transaction holds the alarm


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    settings = load_clock_settings()
    started, now = time.monotonic(), datetime.now(UTC)
    incidents = Incidents(settings.incidents_table)
    found = incidents.due(now + LOOKAHEAD)
    claimed, unclaimed = [], 0
    for due in found:
        try:
            if _claim(incidents, due, now):
                claimed.append(due)
        except (Unavailable, Conflict) as e:
            unclaimed += 1
            log.warning("alarm %s not claimed, left for the next sweep: %s", due.fingerprint, e)
    url = visibility.queue_url(settings.inbound_queue_arn)
    unqueued: list[Due] = []
    for start in range(0, len(claimed), BATCH):
        batch = claimed[start : start + BATCH]
        entries = [
            {
                "Id": str(n),
                "MessageBody": records.tick_body(d.fingerprint, int(d.due_at.timestamp())),
                # rounded up: a tick that arrives before its alarm is due does nothing
                "DelaySeconds": max(0, min(MAX_DELAY_SECONDS, math.ceil((d.due_at - now).total_seconds()))),
            }
            for n, d in enumerate(batch)
        ]
        try:
            failed = clients.client("sqs").send_message_batch(QueueUrl=url, Entries=entries).get("Failed", [])
            lost = [batch[int(f["Id"])] for f in failed]
            if failed:
                log.warning(
                    "%d alarm ticks were not queued: %s", len(failed), [f.get("Code") for f in failed]
                )
        except (ClientError, BotoCoreError) as e:
            lost = batch
            log.warning("%d alarm ticks were not queued: %s", len(batch), error_codes.describe(e))
        unqueued += lost
        for d in lost:  # given back: the next sweep claims and queues them again
            _release(incidents, d, now)
    ticks = len(claimed) - len(unqueued)
    log.info(
        "alarm clock: %d ticks queued",
        ticks,
        extra={
            "ticks": ticks,
            "unclaimed": unclaimed,
            "unqueued": len(unqueued),
            "processing_ms": round((time.monotonic() - started) * 1000, 1),
        },
    )
    if unclaimed or unqueued:
        raise RetryableError(
            f"{unclaimed + len(unqueued)} of {len(found)} due alarms left for the next sweep "
            f"({unclaimed} not claimed, {len(unqueued)} not queued); {ticks} ticks queued"
        )
    return {"ticks": ticks}


def _claim(incidents: Incidents, due: Due, now: datetime) -> bool:
    """Claim the alarm's tick; a transaction holding the alarm right now is waited out a few times."""
    for attempt in range(CLAIM_ATTEMPTS):
        try:
            return incidents.claim_tick(due.fingerprint, due.due_at, now)
        except Conflict:
            if attempt == CLAIM_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not a secret
    raise AssertionError("unreachable: the last attempt returns or raises")


def _release(incidents: Incidents, due: Due, now: datetime) -> None:
    try:
        incidents.release_tick(due.fingerprint, due.due_at, now)
    except Unavailable as e:  # the claim lapses after STALE_TICK instead
        log.warning("alarm %s: its unqueued claim was not given back: %s", due.fingerprint, e)
