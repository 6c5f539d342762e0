"""Hides a failed SQS record for the backoff's delay before the function reports it failed.

Lambda's event source mapping leaves a reported record on the queue untouched, so it reappears when
its visibility timeout ends; `ChangeMessageVisibility` on the record's receipt handle sets that end
(`sqs:ChangeMessageVisibility` on the inbound queue). The call only shortens the wait: when it fails
the record is still reported and comes back after the queue's own timeout, so nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.aws import clients, error_codes

log = logging.getLogger("iot_mail_relay")


def queue_url(event_source_arn: str) -> str:
    """arn:aws:sqs:<region>:<account>:<name> -> the queue's URL at the SQS endpoint the client uses."""
    parts = event_source_arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError(f"not an SQS queue ARN: {event_source_arn!r}")
    account, name = parts[4], parts[5]
    endpoint = str(clients.client("sqs").meta.endpoint_url).rstrip("/")
    return f"{endpoint}/{account}/{name}"


def postpone(record: Mapping[str, Any], seconds: int) -> bool:
    """Make the record visible again in `seconds`; False (and a warning) when that was not possible."""
    arn, handle = record.get("eventSourceARN"), record.get("receiptHandle")
    if not arn or not handle:
        return False  # not from a queue (a hand-written test event): nothing to postpone
    try:
        clients.client("sqs").change_message_visibility(
            QueueUrl=queue_url(str(arn)), ReceiptHandle=str(handle), VisibilityTimeout=seconds
        )
        return True
    except ClientError as e:
        reason = error_codes.code(e)
    except (BotoCoreError, ValueError) as e:
        reason = type(e).__name__
    log.warning(
        "record %s keeps the queue's visibility timeout: %s",
        record.get("messageId"),
        reason,
        extra={"retry_in": seconds},
    )
    return False
