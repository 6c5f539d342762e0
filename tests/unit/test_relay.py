"""The relay's orchestration against fakes of its ports: what it reads, stores, sends and notifies, and
that a step done once is not done again, without AWS. (tests/integration runs it against moto.)"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pytest

from app import relay
from app.config import Settings
from app.errors import RetryableError, SendRejected
from app.outcomes import Notice, Outcome, Reason
from app.ports import Ports
from app.records import MailRef
from app.routing.document import EMPTY, Directory
from tests.support import fixture_mail

SETTINGS = Settings(
    incoming_bucket="incoming",
    attachments_bucket="attachments",
    sender_email="relay@example.com",
    recipient_email="inbox@relay.example.com",
    fallback_topic_arn="arn:aws:sns:us-east-1:123456789012:fallback",
)
MAIL = MailRef("incoming", "incoming/openssl.eml")


class Storage:
    def __init__(self, objects: dict[tuple[str, str], bytes]) -> None:
        self.objects = dict(objects)
        self.documents: dict[tuple[str, str], dict[str, Any]] = {}
        self.fail_reads = False

    def read_object(self, bucket: str, key: str, max_size: int) -> bytes | None:
        if self.fail_reads:
            raise RetryableError("reading: SlowDown")
        data = self.objects[(bucket, key)]
        return None if len(data) > max_size else data

    def upload(self, bucket: str, key: str, body: io.RawIOBase, extra_args: dict[str, Any]) -> None:
        self.objects[(bucket, key)] = body.read() or b""

    def put_json(self, bucket: str, key: str, document: dict[str, Any]) -> None:
        self.documents[(bucket, key)] = document


class Mailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, ...]] = []
        self.refuse: Exception | None = None

    def send(self, raw: bytes, recipients: Sequence[str], sender: str, configuration_set: str | None) -> str:
        if self.refuse is not None:
            raise self.refuse
        self.sent.append(tuple(recipients))
        return f"ses-{len(self.sent)}"


class Notices:
    def __init__(self) -> None:
        self.published: list[Notice] = []

    def publish(self, topic_arn: str, notice: Notice) -> None:
        self.published.append(notice)


class Markers:
    """Done steps in a dict: the second `once` of a key does nothing, a failed action can run again."""

    def __init__(self) -> None:
        self.done: dict[str, str] = {}

    def once(self, key: str, action: Callable[[], str]) -> None:
        if key not in self.done:
            self.done[key] = action()


class Signer:
    def sign(self, bucket: str, key: str, expires_at: datetime) -> str:
        return f"https://links.example.com/{key}?exp={int(expires_at.timestamp())}"

    def mute_link(self, fingerprint: str, seconds: int, to: str, expires_at: datetime) -> str | None:
        return None  # links to S3: nothing to mute through


def ports(storage: Storage, mailer: Mailer, notices: Notices, markers: Markers) -> Ports:
    directory: Callable[[], Directory] = lambda: EMPTY  # noqa: E731
    return Ports(storage, mailer, notices, markers, Signer(), directory)


@pytest.fixture
def world() -> tuple[Storage, Mailer, Notices, Markers]:
    raw = fixture_mail("openssl-missing-blank-line.eml")
    return Storage({("incoming", MAIL.key): raw}), Mailer(), Notices(), Markers()


def test_a_mail_is_stored_linked_and_sent_once_however_often_it_comes(
    world: tuple[Storage, Mailer, Notices, Markers],
) -> None:
    storage, mailer, notices, markers = world
    for _ in range(3):
        assert relay.process(MAIL, SETTINGS, ports(*world)) is Outcome.DISTRIBUTED
    assert mailer.sent == [("alice@example.com", "bob@example.org", "carol@example.net")]
    assert notices.published == []
    attachments = [k for (b, k) in storage.objects if b == "attachments"]
    assert len(attachments) == 1
    assert storage.objects[("attachments", attachments[0])] == b"content\n"
    (manifest,) = storage.documents.values()
    assert manifest["incoming_key"] == MAIL.key
    assert len(markers.done) == 1


def test_a_mail_without_recipients_becomes_one_notice(
    world: tuple[Storage, Mailer, Notices, Markers],
) -> None:
    storage, mailer, notices, _ = world
    storage.objects[("incoming", MAIL.key)] = (
        b"X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\nFrom: s@plant.example.com\r\n\r\nno code\r\n"
    )
    assert relay.process(MAIL, SETTINGS, ports(*world)) is Outcome.FALLBACK
    assert relay.process(MAIL, SETTINGS, ports(*world)) is Outcome.FALLBACK
    assert mailer.sent == []
    assert [n.reason for n in notices.published] == [Reason.NO_RECIPIENTS]


def test_a_failing_read_is_retried_and_nothing_is_sent(
    world: tuple[Storage, Mailer, Notices, Markers],
) -> None:
    storage, mailer, notices, markers = world
    storage.fail_reads = True
    assert relay.process(MAIL, SETTINGS, ports(*world)) is Outcome.RETRY
    assert (mailer.sent, notices.published, markers.done) == ([], [], {})


def test_a_refused_send_becomes_a_rejected_notice_and_a_throttled_one_a_retry(
    world: tuple[Storage, Mailer, Notices, Markers],
) -> None:
    _, mailer, notices, markers = world
    mailer.refuse = RetryableError("SES send failed: Throttling")
    assert relay.process(MAIL, SETTINGS, ports(*world)) is Outcome.RETRY
    assert markers.done == {}
    assert notices.published == []
    mailer.refuse = SendRejected("SES rejected the mail: MessageRejected")
    assert relay.process(MAIL, SETTINGS, ports(*world)) is Outcome.FALLBACK
    assert [n.reason for n in notices.published] == [Reason.REJECTED]


def test_a_bug_in_an_adapter_is_a_retry_never_a_lost_mail(
    world: tuple[Storage, Mailer, Notices, Markers],
) -> None:
    _, mailer, _, _ = world
    mailer.refuse = KeyError("unexpected")
    assert relay.process(MAIL, SETTINGS, ports(*world)) is Outcome.RETRY
