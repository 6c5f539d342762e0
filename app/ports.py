"""What the relay reaches the world through, in one small object `handler.py` builds once per container.

The relay decides what to do with a mail; these carry it out: raw mail and attachments in S3
(`storage`), SES (`mailer`), the fallback topic (`notices`), the idempotency markers (`markers`), the
attachment and mute links (`signer`), the recipient groups and routes (`directory`) and the alarm table
(`incidents`, when folding is on), and the time alarm folding decides by (`clock`). In production each is an
adapter of `app.aws` (modules count: a module with these functions satisfies the protocol); tests pass
fakes, so the relay's orchestration is tested without AWS as well as against moto.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from app.aws.incidents import Incidents
from app.outcomes import Notice
from app.routing.document import Directory


class Storage(Protocol):
    def read_object(self, bucket: str, key: str, max_size: int) -> bytes | None: ...

    def upload(self, bucket: str, key: str, body: io.RawIOBase, extra_args: dict[str, Any]) -> None: ...

    def put_json(self, bucket: str, key: str, document: dict[str, Any]) -> None: ...


class Mailer(Protocol):
    def send(
        self, raw: bytes, recipients: Sequence[str], sender: str, configuration_set: str | None
    ) -> str: ...


class Notices(Protocol):
    def publish(self, topic_arn: str, notice: Notice) -> None: ...


class Markers(Protocol):
    def once(self, key: str, action: Callable[[], str]) -> None: ...


class Signer(Protocol):
    def sign(self, bucket: str, key: str, expires_at: datetime) -> str: ...

    def mute_link(self, fingerprint: str, seconds: int, to: str, expires_at: datetime) -> str | None:
        """A link that mutes an alarm (app.links.sign_mute), or None when links do not go to the
        link endpoint (S3 pre-signed links: nothing could serve it)."""
        ...


@dataclass(frozen=True)
class Ports:
    storage: Storage
    mailer: Mailer
    notices: Notices
    markers: Markers
    signer: Signer
    directory: Callable[[], Directory]
    incidents: Incidents | None = None  # the alarm table; None: alarm folding is off
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # tests pass their own
