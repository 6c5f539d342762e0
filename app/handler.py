"""Lambda entry point: an SQS batch of S3 notifications in, the records worth retrying out."""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import Any

from app import records, relay
from app.aws.storage import LinkSigner
from app.config import load_settings
from app.outcomes import Outcome

DEADLINE_RESERVE_MS = 30_000  # stop starting mails this close to the timeout; they are retried instead

logging.getLogger("iot_mail_relay").setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper())


@cache
def _signer(download_base_url: str | None, link_key_secret_arn: str | None) -> LinkSigner:
    return LinkSigner(download_base_url, link_key_secret_arn)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    settings = load_settings()
    signer = _signer(settings.download_base_url, settings.link_key_secret_arn)
    failures: list[dict[str, str]] = []
    for record in event.get("Records", []):
        if context is not None and context.get_remaining_time_in_millis() < DEADLINE_RESERVE_MS:
            outcomes = [Outcome.RETRY]
        else:
            items = records.items(record, settings.incoming_bucket)
            outcomes = [relay.process(item, settings, signer) for item in items]
        if Outcome.RETRY in outcomes:
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
