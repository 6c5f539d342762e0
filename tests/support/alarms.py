"""A fake of the relay's alarm stop around the pure timeline, driven by a simulated clock.

It does what the storage adapter and the relay must do with the timeline's answers: pick the state with
`pair`, commit the new state with the new row and the mail's decision (the decision only if none was kept
for its incoming key), send the outbox before relaying the mail, each digest once under a marker named by
its id, then acknowledge it. What reached the recipients is in `sent`.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.alarms.fingerprint import identify
from app.alarms.timeline import (
    Arrival,
    Attachment,
    Decision,
    Digest,
    Policy,
    Row,
    Seen,
    State,
    Step,
    delivered,
    mute,
    on_mail,
    on_tick,
    pair,
    unmute,
)
from app.routing.document import Override

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
SENDER = "plc-7@plant.example.com"
RECIPIENTS = ("ops@example.com", "Alice@Example.com", "bob@example.org")
RELAYED = (Decision.RELAY_FIRST, Decision.RELAY_RECOVERY, Decision.RELAY_PLAIN)


@dataclass(frozen=True)
class Sent:
    """One mail that left: a relayed mail (`key`) or a digest (`digest`, listing `rows`)."""

    at: datetime
    recipients: tuple[str, ...]
    key: str | None = None
    decision: Decision | None = None
    digest: Digest | None = None
    rows: tuple[Row, ...] = ()

    @property
    def kind(self) -> str:
        return str(self.digest.kind) if self.digest else f"relay-{self.decision}"


class Relay:
    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or Policy()
        self.states: dict[str, State] = {}
        self.rows: dict[tuple[str, int], Row] = {}
        self.seen: dict[str, Seen] = {}  # the storage's decision per incoming key
        self.markers: set[str] = set()
        self.sent: list[Sent] = []
        self.received: list[str] = []
        self.steps: list[Step] = []
        self._numbers = itertools.count(1)

    def mail(
        self,
        subject: str,
        at: datetime,
        *,
        key: str | None = None,
        sender: str = SENDER,
        recipients: tuple[str, ...] = RECIPIENTS,
        override: Override | None = None,
        attachments: tuple[Attachment, ...] = (),
    ) -> Step:
        key = key or f"incoming/{next(self._numbers)}/mail.eml"
        if key not in self.received:
            self.received.append(key)
        identity = identify(sender, recipients, subject, override)
        kept = self.seen.get(key)
        own = self.states.get(identity.fingerprint)
        group = [state for state in self.states.values() if state.group == identity.group]
        target = pair(identity, key, own, group, kept)
        step = on_mail(target, identity, Arrival(key, subject, attachments), at, self.policy, kept)
        if not step.replay:
            assert step.seen is not None
            assert key not in self.seen
            self.seen[key] = step.seen
            if step.row is not None:
                slot = (step.row.fingerprint, step.row.seq)
                assert slot not in self.rows, f"row {slot} written twice"
                self.rows[slot] = step.row
            self.states[step.state.fingerprint] = step.state
        self._deliver(step.state.fingerprint, step.send, at)
        if step.decision in RELAYED:
            self._once(f"relay:{key}", Sent(at, identity.recipients, key=key, decision=step.decision))
        self.steps.append(step)
        return step

    def tick(self, at: datetime) -> list[Step]:
        steps = []
        for fingerprint in list(self.states):
            step = on_tick(self.states[fingerprint], at, self.policy)
            self.states[fingerprint] = step.state
            self._deliver(fingerprint, step.send, at)
            steps.append(step)
        return steps

    def ticks(self, start: datetime, end: datetime, every: timedelta = timedelta(minutes=1)) -> None:
        for at in minutes(start, end, every):
            self.tick(at)

    def mute(self, fingerprint: str, until: datetime, by: str, at: datetime) -> Step:
        step = mute(self.states[fingerprint], until, by, at, self.policy)
        self.states[fingerprint] = step.state
        self._deliver(fingerprint, step.send, at)
        return step

    def unmute(self, fingerprint: str, by: str, at: datetime) -> Step:
        step = unmute(self.states[fingerprint], by, at, self.policy)
        self.states[fingerprint] = step.state
        self._deliver(fingerprint, step.send, at)
        return step

    def _deliver(self, fingerprint: str, digests: tuple[Digest, ...], at: datetime) -> None:
        for digest in digests:
            rows = tuple(self.rows[(fingerprint, seq)] for seq in range(digest.after + 1, digest.through + 1))
            self._once(digest.id, Sent(at, digest.recipients, digest=digest, rows=rows))
            self.states[fingerprint] = delivered(self.states[fingerprint], digest.id)

    def _once(self, marker: str, sent: Sent) -> None:
        if marker not in self.markers:
            self.markers.add(marker)
            self.sent.append(sent)

    # --- what reached the recipients -------------------------------------------------------------

    def per_recipient(self) -> Counter[str]:
        return Counter(recipient for sent in self.sent for recipient in sent.recipients)

    def relayed(self) -> list[str]:
        return [sent.key for sent in self.sent if sent.key is not None]

    def listed(self) -> list[str]:
        return [row.incoming_key for sent in self.sent for row in sent.rows]

    def digests(self, kind: str | None = None) -> list[Sent]:
        return [sent for sent in self.sent if sent.digest is not None and (kind is None or sent.kind == kind)]

    def accounted(self) -> Counter[str]:
        """How many times each received mail reached the recipients, relayed or listed."""
        return Counter(self.relayed() + self.listed())


def minutes(start: datetime, end: datetime, every: timedelta = timedelta(minutes=1)) -> Iterator[datetime]:
    at = start
    while at <= end:
        yield at
        at += every
