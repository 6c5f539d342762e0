"""An in-process moto account holding the relay's resources, for the demo and the tests.

moto keeps what SES sent and what SNS published in its backends; `World` reads them from there, so a
demo or a test sees exactly what the function handed to AWS.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from app import handler
from app.aws import clients
from app.config import load_settings
from demo import events

REGION = events.REGION
ENVIRONMENT = {
    "INCOMING_BUCKET": "relay-incoming-example",
    "ATTACHMENTS_BUCKET": "relay-attachments-example",
    "SENDER_EMAIL": "relay@example.com",
    "RECIPIENT_EMAIL": "inbox-7f3k9q@relay.example.com",
    "FALLBACK_TOPIC_ARN": f"arn:aws:sns:{REGION}:{DEFAULT_ACCOUNT_ID}:relay-fallback",
    "URL_EXPIRY_SECONDS": "86400",
}
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


@dataclass(frozen=True)
class SentMail:
    destinations: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        if not isinstance(parsed, EmailMessage):
            raise TypeError("expected an EmailMessage")
        return parsed


class World:
    """The relay's buckets, sender identity and fallback topic in a moto account."""

    def __init__(self, environment: Mapping[str, str]) -> None:
        self.environment = dict(environment)
        self.s3: Any = boto3.client("s3", region_name=REGION)
        self.incoming = self.environment["INCOMING_BUCKET"]
        self.attachments = self.environment["ATTACHMENTS_BUCKET"]
        self.topic_arn = self.environment["FALLBACK_TOPIC_ARN"]

    def create(self) -> World:
        self.s3.create_bucket(Bucket=self.incoming)
        self.s3.create_bucket(Bucket=self.attachments)
        boto3.client("sesv2", region_name=REGION).create_email_identity(
            EmailIdentity=self.environment["SENDER_EMAIL"]
        )
        boto3.client("sns", region_name=REGION).create_topic(Name=self.topic_arn.rsplit(":", 1)[-1])
        return self

    def put_mail(self, key: str, raw: bytes) -> None:
        self.s3.put_object(Bucket=self.incoming, Key=key, Body=raw)

    def sent(self) -> list[SentMail]:
        backend = ses_backends[DEFAULT_ACCOUNT_ID][REGION]
        return [
            SentMail(tuple(message.destinations), message.raw_data.encode())
            for message in backend.sent_messages
        ]

    def notices(self) -> list[dict[str, Any]]:
        topic = sns_backends[DEFAULT_ACCOUNT_ID][REGION].topics[self.topic_arn]
        return [
            {"title": subject, **json.loads(message)}
            for _, message, subject, _, _ in topic.sent_notifications
        ]

    def download(self, url: str) -> bytes:
        """The object a link points at (moto does not check link signatures, so read it directly)."""
        parts = urlsplit(url)
        host_bucket = parts.netloc.split(".s3", 1)[0]
        path = unquote(parts.path).lstrip("/")
        if host_bucket == self.attachments:
            key = path
        else:
            bucket, _, key = path.partition("/")
            if bucket != self.attachments:
                raise ValueError(f"not a link into {self.attachments}: {url}")
        return bytes(self.s3.get_object(Bucket=self.attachments, Key=key)["Body"].read())

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        response = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for item in response.get("Contents", [])]


def sqs_event(*keys: str, bucket: str | None = None, first_id: int = 1) -> dict[str, Any]:
    """An SQS event for objects of the incoming bucket (another bucket when given)."""
    return events.sqs_event(*keys, bucket=bucket or ENVIRONMENT["INCOMING_BUCKET"], first_id=first_id)


@contextmanager
def moto_world(environment: Mapping[str, str] = ENVIRONMENT) -> Iterator[World]:
    """Set the function's environment and credentials, start moto, create the resources."""
    saved = {name: os.environ.get(name) for name in [*environment, *CREDENTIALS, "AWS_ENDPOINT_URL"]}
    os.environ.update({**CREDENTIALS, **environment})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    load_settings.cache_clear()
    clients.reset()
    handler.reset()
    try:
        with mock_aws():
            yield World(environment).create()
    finally:
        clients.reset()
        handler.reset()
        load_settings.cache_clear()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
