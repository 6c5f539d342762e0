"""Lambda entry point: an SQS batch of S3 notifications in, the records worth retrying out."""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import Any

from app import backoff, records, relay
from app.aws import clients, mailer, notices, storage, visibility
from app.aws.incidents import Incidents
from app.aws.markers import Markers
from app.aws.recipients_config import RecipientsConfig
from app.aws.storage import LinkSigner
from app.config import Settings, load_settings
from app.outcomes import Outcome
from app.ports import Ports

DEADLINE_RESERVE_MS = 30_000  # stop starting mails this close to the timeout; they are retried instead

logging.getLogger("iot_mail_relay").setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper())


log = logging.getLogger("iot_mail_relay")


@cache
def _warn_if_open(settings: Settings) -> None:
    """Once per container: an operator reading the logs must learn that the relay is open."""
    if settings.is_open:
        log.warning(
            "ALLOWED_SENDERS and ALLOWED_RECIPIENTS are both empty: anyone who knows the receiving "
            "address can make this relay send any text and any file to anyone"
        )


@cache
def _ports(settings: Settings) -> Ports:
    """The adapters, once per container: the link keys and the recipients document they cache live
    as long as the container does."""
    return build_ports(settings)


def build_ports(settings: Settings) -> Ports:
    """The production adapters for `settings` (tests replace single ports, such as the clock)."""
    return Ports(
        storage=storage,
        mailer=mailer,
        notices=notices,
        markers=Markers(settings.incoming_bucket),
        signer=LinkSigner(settings.download_base_url, settings.link_key_secret_arn),
        directory=RecipientsConfig(settings.recipients_config).directory,
        incidents=Incidents(settings.folding.table) if settings.folding else None,
    )


def reset() -> None:
    """Forget what a container keeps between invocations: settings, clients, adapters (tests start a
    fresh account and environment each time)."""
    for cached in (_warn_if_open, _ports, load_settings):
        cached.cache_clear()
    clients.reset()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    settings = load_settings()
    _warn_if_open(settings)
    ports = _ports(settings)
    failures: list[dict[str, str]] = []
    for record in event.get("Records", []):
        if context is not None and context.get_remaining_time_in_millis() < DEADLINE_RESERVE_MS:
            outcomes = [Outcome.RETRY]
        else:
            items = records.items(record, settings.incoming_bucket)
            outcomes = [relay.process(item, settings, ports) for item in items]
        if Outcome.RETRY in outcomes:
            visibility.postpone(record, backoff.delay(backoff.receive_count(record)))
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
