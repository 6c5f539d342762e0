"""The relay's account built from template.yaml in moto's in-process mock, with the relay's and the
download function's environment in os.environ as Lambda would set it: what the integration tests run
`lambda_handler` against. A test changes the account through template parameters, like a deploy; an
environment override is for values the template cannot produce (a broken deployment, no function URL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any

from app import download, handler
from localaws.account import Account, LinkRefused, SentMail, environ, in_process
from localaws.blueprint import Blueprint
from localaws.events import sqs_event
from localaws.template import EXAMPLE_PARAMETERS, load
from tests.support import TEMPLATE

__all__ = ["RELAY_ADDRESS", "SENDER", "STACK", "LinkRefused", "SentMail", "World", "local_world"]

STACK = "relay"
RELAY_ADDRESS = EXAMPLE_PARAMETERS["RecipientEmail"]  # the secret receiving address
SENDER = EXAMPLE_PARAMETERS["SenderEmail"]  # the relay's verified identity


class World:
    """One test's account: put mail in, run the handler, read what SES sent and SNS published."""

    def __init__(self, account: Account, environment: Mapping[str, str]) -> None:
        self.account = account
        self.blueprint = account.blueprint
        self.environment = dict(environment)
        self.s3: Any = account.client("s3")
        self.incoming = self.environment["INCOMING_BUCKET"]
        self.attachments = self.environment["ATTACHMENTS_BUCKET"]
        self.topic_arn = self.environment["FALLBACK_TOPIC_ARN"]

    def put_mail(self, key: str, raw: bytes) -> None:
        self.s3.put_object(Bucket=self.incoming, Key=key, Body=raw)

    def event(self, *keys: str, first_id: int = 1) -> dict[str, Any]:
        """The SQS event of S3 notifications for these incoming keys."""
        return sqs_event(*keys, bucket=self.incoming, first_id=first_id, region=self.blueprint.region)

    def sent(self) -> list[SentMail]:
        return self.account.sent_mail()

    def notices(self) -> list[dict[str, Any]]:
        return [{"title": p.subject, **json.loads(p.message)} for p in self.account.published(self.topic_arn)]

    def download(self, url: str) -> bytes:
        """What a recipient gets from a link (LinkRefused with the page when it leads nowhere)."""
        return self.account.download(url)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        response = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for item in response.get("Contents", [])]


@cache
def _blueprint(parameters: tuple[tuple[str, str], ...]) -> Blueprint:
    """The SAM translator takes a while: each set of parameters is read once per test session."""
    return load(TEMPLATE, dict(parameters), stack_name=STACK)


def _forget() -> None:
    handler.reset()
    download.reset()


@contextmanager
def local_world(
    parameters: Mapping[str, str] | None = None, environment: Mapping[str, str] | None = None
) -> Iterator[World]:
    """The account of `template.yaml` deployed with `parameters` (as `sam deploy --parameter-overrides`),
    the functions' environment applied, then `environment` on top of it."""
    blueprint = _blueprint(tuple(sorted((parameters or {}).items())))
    with in_process(blueprint) as account:
        values = {**account.environment(), **(environment or {})}
        with environ(values):
            _forget()
            try:
                yield World(account, values)
            finally:
                _forget()
