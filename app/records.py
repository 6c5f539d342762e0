"""SQS record -> what it asks of the relay: mails to process, alarm ticks, or events to acknowledge and skip.

Each record body is an S3 event notification (keys URL-encoded, `+` for space). S3's `s3:TestEvent` and
the `AMAZON_SES_SETUP_NOTIFICATION` object SES writes when a rule is created are skipped; anything about
another bucket, or a body that is not an S3 notification, is refused: acknowledged, logged, never read.
The alarm clock (app/clock.py) puts its ticks on the same queue, so a due digest is retried and
dead-lettered like mail: `{"alarm_tick": {"fingerprint": ..., "due_at": ...}}`, built by `tick_body`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

SES_SETUP_NOTIFICATION = "AMAZON_SES_SETUP_NOTIFICATION"
TICK = "alarm_tick"
_FINGERPRINT = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class MailRef:
    bucket: str
    key: str
    # When SES stored the mail (the S3 event's eventTime), where RelayLatency starts; not part of the
    # mail's identity (a second event for the same object is the same mail).
    event_time: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Ignored:
    refused: bool  # True: not ours or unreadable (logged as a warning); False: a harmless skip
    why: str
    key: str = ""


@dataclass(frozen=True)
class Tick:
    """The clock's request to look at one alarm (digests due, closings) at or after `due_at`."""

    fingerprint: str
    due_at: int  # Unix seconds


Item = MailRef | Tick | Ignored


def tick_body(fingerprint: str, due_at: int) -> str:
    return json.dumps({TICK: {"fingerprint": fingerprint, "due_at": due_at}})


def items(record: dict[str, Any], incoming_bucket: str) -> list[Item]:
    try:
        body = json.loads(record.get("body") or "")
    except ValueError:
        return [Ignored(refused=True, why="the record body is not JSON")]
    if not isinstance(body, dict):
        return [Ignored(refused=True, why="the record body is not an S3 notification")]
    if body.get("Event") == "s3:TestEvent":
        return [Ignored(refused=False, why="s3:TestEvent")]
    if TICK in body:
        return [_tick(body[TICK])]
    s3_records = body.get("Records")
    if not isinstance(s3_records, list) or not s3_records:
        return [Ignored(refused=True, why="the record body is not an S3 notification")]
    return [_item(s3_record, incoming_bucket) for s3_record in s3_records]


def _item(s3_record: Any, incoming_bucket: str) -> Item:
    try:
        event_name = str(s3_record.get("eventName", ""))
        bucket = str(s3_record["s3"]["bucket"]["name"])
        key = unquote_plus(str(s3_record["s3"]["object"]["key"]))
    except (KeyError, TypeError, AttributeError):
        return Ignored(refused=True, why="an S3 record without bucket or key")
    if bucket != incoming_bucket:
        return Ignored(refused=True, why=f"object in another bucket ({bucket})", key=key)
    if not event_name.startswith("ObjectCreated:"):
        return Ignored(refused=False, why=f"event {event_name or 'without a name'}", key=key)
    if key.rsplit("/", 1)[-1] == SES_SETUP_NOTIFICATION:
        return Ignored(refused=False, why="SES setup notification", key=key)
    return MailRef(bucket=bucket, key=key, event_time=_event_time(s3_record.get("eventTime")))


def _tick(value: Any) -> Item:
    fingerprint = value.get("fingerprint") if isinstance(value, dict) else None
    due_at = value.get("due_at") if isinstance(value, dict) else None
    if not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint) or type(due_at) is not int:
        return Ignored(refused=True, why="an alarm tick without a fingerprint or due time")
    return Tick(fingerprint, due_at)


def _event_time(value: Any) -> datetime | None:
    """S3's ISO 8601 eventTime (`2024-05-01T12:00:00.123Z`); None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
