"""relayctl's tests: the relay's resources as the template declares them (localaws, in process or behind
moto's server), mails stored as the function stores them, and `run` to call relayctl as a user would."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import requests

from app.mail import attachments
from localaws.account import Account, served
from localaws.blueprint import Blueprint
from localaws.template import load
from relayctl.cli import main
from tests.support import TEMPLATE

STACK = "relay"


def blueprint(parameters: Mapping[str, str] | None = None) -> Blueprint:
    """The stack `STACK` of the template with these parameters (read once per set of parameters)."""
    return _blueprint(tuple(sorted((parameters or {}).items())))


@functools.cache
def _blueprint(parameters: tuple[tuple[str, str], ...]) -> Blueprint:
    return load(TEMPLATE, dict(parameters), stack_name=STACK)


def bucket_name(logical_id: str, parameters: Mapping[str, str] | None = None) -> str:
    """The name the template gives the bucket (it depends on BucketNamePrefix, account and region)."""
    return blueprint(parameters).bucket(logical_id).name


@contextmanager
def served_relay(parameters: Mapping[str, str] | None = None) -> Iterator[Account]:
    """The template's account behind moto's server in this process, for relayctl run as a program
    (AWS_ENDPOINT_URL=account.endpoint); its inbound queue empty (S3's test event purged)."""
    with served(blueprint(parameters)) as account:
        assert account.endpoint is not None
        try:
            inbound = account.queue_url(account.blueprint.inbound_queue.logical_id)
            account.client("sqs").purge_queue(QueueUrl=inbound)
            yield account
        finally:
            # moto's state belongs to the process, not the server: the next account starts empty
            requests.post(f"{account.endpoint}/moto-api/reset", timeout=30).raise_for_status()


@dataclass
class StoredMail:
    incoming_key: str
    keys: list[str]
    manifest_key: str


@dataclass
class Relay:
    """The relay's resources in moto, and `run` to call relayctl as a user would."""

    account: Account
    capsys: pytest.CaptureFixture[str]
    blueprint: Blueprint = field(init=False)
    s3: Any = field(init=False)
    sqs: Any = field(init=False)

    def __post_init__(self) -> None:
        self.blueprint = self.account.blueprint
        self.s3 = self.account.client("s3")
        self.sqs = self.account.client("sqs")

    @property
    def region(self) -> str:
        return self.blueprint.region

    @property
    def attachments_bucket(self) -> str:
        return self.blueprint.function.environment["ATTACHMENTS_BUCKET"]

    @property
    def queue_url(self) -> str:
        return str(self.sqs.get_queue_url(QueueName=self.blueprint.inbound_queue.name)["QueueUrl"])

    @property
    def dlq_url(self) -> str:
        dlq = self.blueprint.dead_letter_queue
        assert dlq is not None
        return str(self.sqs.get_queue_url(QueueName=dlq.name)["QueueUrl"])

    @property
    def alarms_topic(self) -> str:
        return self.blueprint.topic("AlarmsTopic").arn

    @property
    def rule_set(self) -> str:
        assert self.blueprint.receipt_rule is not None
        return self.blueprint.receipt_rule.rule_set

    def resource_options(self) -> list[str]:
        return [
            "--attachments-bucket",
            self.attachments_bucket,
            "--queue-url",
            self.queue_url,
            "--dlq-url",
            self.dlq_url,
            "--rule-set",
            self.rule_set,
            "--alarms-topic",
            self.alarms_topic,
        ]

    def run(self, *argv: str) -> tuple[int, str, str]:
        """relayctl's exit status, stdout and stderr."""
        self.capsys.readouterr()
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        return code, out, err

    def run_json(self, *argv: str) -> dict[str, Any]:
        code, out, err = self.run(*argv, "--json")
        assert code == 0, err
        document: dict[str, Any] = json.loads(out)
        return document

    def store_mail(
        self,
        incoming_key: str,
        message_id: str,
        recipients: Sequence[str],
        files: Sequence[tuple[str, bytes]] = (("report.csv", b"t,v\n1,2\n"),),
        created_at: datetime | None = None,
        expiry: timedelta = timedelta(days=1),
    ) -> StoredMail:
        """Attachment objects and manifest.json exactly as the function writes them."""
        created = created_at or datetime.now(UTC)
        keys = []
        entries = []
        for index, (name, body) in enumerate(files, start=1):
            key = attachments.object_key(incoming_key, index, name)
            self.s3.put_object(
                Bucket=self.attachments_bucket,
                Key=key,
                Body=body,
                ContentType="text/csv",
                ContentDisposition=attachments.content_disposition(name),
                Metadata={
                    "incoming-key": quote(incoming_key, safe=""),
                    "message-id": quote(message_id, safe=""),
                },
            )
            keys.append(key)
            entries.append({"key": key, "filename": name, "size": len(body), "content_type": "text/csv"})
        manifest_key = attachments.manifest_key(incoming_key)
        manifest = {
            "incoming_key": incoming_key,
            "message_id": message_id,
            "subject": f"Readings {incoming_key}",
            "created_at": created.isoformat(),
            "expires_at": (created + expiry).isoformat(),
            "recipient_digests": [attachments.recipient_digest(r) for r in recipients],
            "attachments": entries,
        }
        self.s3.put_object(
            Bucket=self.attachments_bucket, Key=manifest_key, Body=json.dumps(manifest).encode()
        )
        return StoredMail(incoming_key, keys, manifest_key)

    def tags(self, key: str) -> dict[str, str]:
        tag_set = self.s3.get_object_tagging(Bucket=self.attachments_bucket, Key=key)["TagSet"]
        return {t["Key"]: t["Value"] for t in tag_set}

    def exists(self, key: str) -> bool:
        listed = self.s3.list_objects_v2(Bucket=self.attachments_bucket, Prefix=key).get("Contents", [])
        return any(o["Key"] == key for o in listed)

    def depth(self, url: str) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attributes[n]) for n in names)

    def drain(self, url: str) -> list[dict[str, Any]]:
        """Every message in the queue (received with a long visibility timeout, so each once)."""
        found: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300, MessageAttributeNames=["All"]
        ).get("Messages", []):
            found.extend(batch)
        return found
