"""Alarm folding, carried out: the stop between screening and sending, and the scheduled ticks.

The decisions are the pure timeline's (`app.alarms`); this module reads and writes them through the
alarm table (`ports.incidents`) and sends the relay's own mails (digests) through the same mailer and
markers as relayed mail. Its rules:

- **When in doubt, relay.** If the table cannot be read or written before the decision is committed,
  the mail is relayed as without folding and the verdict says `unavailable` (the FoldingUnavailable
  metric; an alarm fires when it persists). Once committed, the decision stands: a digest that cannot be
  sent now stays queued in the alarm's state and the next tick sends it.
- **A tick fails like a mail.** A tick that leaves a digest unsent (after acknowledging those it sent)
  fails its record, so SQS retries it and in the end dead-letters it. The clock's claim does not hold
  the retry back: the record itself comes back, and it sends the outbox whether or not the alarm is due.
- **Exactly once.** Two invocations deciding one alarm at once: the state's conditional write lets one
  win, the other reads again and decides again (the second "first" mail becomes a repeat). A redelivered
  mail gets the decision it got the first time. A digest is sent under markers named by its id.
- **Digests before the mail, but never before a first mail.** What the decision queued (the last digest
  before a recovery) goes out before the mail that closed the incident is relayed. Digests still queued
  when a first mail opens an incident go out after it (`send_queued`): they never delay an alarm.
- **Mute links.** A first mail and every digest carry links that mute the alarm for 1, 8 or 24 hours
  (`MUTE_LINKS`; signed like the download links, expiring with them). One message reaches all the
  recipients of a send, so a link names the recipient only when the alarm has exactly one. When they
  cannot be signed (the link keys unreadable), the mail goes out without them rather than later.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from app import links, metrics, muting, records, tracing
from app.alarms import mails
from app.alarms.fingerprint import identify, override_for
from app.alarms.timeline import (
    Arrival,
    Decision,
    Digest,
    Policy,
    Seen,
    State,
    delivered,
    on_mail,
    on_tick,
    pair,
)
from app.aws.incidents import AlreadyDecided, Conflict, Incidents, Stored, Unavailable
from app.aws.mailer import chunks
from app.aws.markers import marker_key
from app.config import Settings
from app.errors import RetryableError, SendRejected
from app.mail import attachments
from app.mail.parse import Mail
from app.mail.rewrite import Link, Note
from app.outcomes import Notice, Outcome, Reason
from app.ports import Ports
from app.screening import Distribution

log = logging.getLogger("iot_mail_relay")

ATTEMPTS = 6  # reads and conditional writes of one alarm before the record is retried later
RELAYED = frozenset({Decision.RELAY_FIRST, Decision.RELAY_RECOVERY, Decision.RELAY_PLAIN})
_FOLD = {  # the X-Ray annotation `fold`
    Decision.RELAY_FIRST: "first",
    Decision.FOLD: "repeat",
    Decision.RELAY_RECOVERY: "recovery",
    Decision.RELAY_PLAIN: "plain",
    Decision.FLAPPING: "flapping",
}


@dataclass(frozen=True)
class Queued:
    """Digests waiting in the alarm's outbox, for after the mail: the state and version they were read
    with (to acknowledge each) and the time of the decision."""

    state: State
    version: int | None
    digests: tuple[Digest, ...]
    at: datetime


class DigestsUnsent(RetryableError):
    """A tick sent only part of the alarm's outbox: the tick is retried; what it did is kept here."""

    def __init__(self, detail: str, sent: int, closed: int) -> None:
        super().__init__(detail)
        self.sent, self.closed = sent, closed


@dataclass(frozen=True)
class Verdict:
    """What folding decided for one mail. `decision` None: relay it as without folding."""

    decision: Decision | None = None
    incident: str | None = None
    notes: tuple[Note, ...] = ()  # lines added to the relayed mail (the recovery's)
    unavailable: bool = False  # the table failed before a decision: relayed anyway
    digests: int = 0  # digests this mail sent (the last one before a recovery)
    queued: Queued | None = None  # a first mail's: digests to send after it (send_queued)

    @property
    def relay(self) -> bool:
        return self.decision is None or self.decision in RELAYED

    @property
    def fold(self) -> str:
        """first, repeat, recovery, plain, flapping; or off / unavailable when folding did not decide."""
        if self.decision is not None:
            return _FOLD[self.decision]
        return "unavailable" if self.unavailable else "off"


def decide(
    mail: Mail, distribution: Distribution, arrival: Arrival, settings: Settings, ports: Ports, now: datetime
) -> Verdict:
    """Fold or relay one mail that screening would distribute; its attachments are already offloaded."""
    if settings.folding is None or ports.incidents is None:
        return Verdict()
    incidents, policy = ports.incidents, settings.folding.policy
    override = override_for(ports.directory().alarms, distribution.scopes)
    identity = identify(mail.sender or mail.from_header, distribution.recipients, mail.subject, override)
    kept: Seen | None = None
    for attempt in range(ATTEMPTS):
        try:
            own = incidents.load(identity.fingerprint)
            group: list[Stored] = []
            if identity.recovery and (own is None or own.state.incident is None):
                group = incidents.load_group(identity.group)
            candidates = [s for s in (own, *group) if s is not None]
            target = pair(identity, arrival.key, own.state if own else None, [s.state for s in group], kept)
            stored = next((s for s in candidates if s.state is target), None)
            step = on_mail(target, identity, arrival, now, policy, kept)
            version = stored.version if stored else None
            if not step.replay:
                version = incidents.commit(step, version, now)
        except AlreadyDecided:
            kept = _kept(incidents, arrival.key)
            continue
        except Conflict:
            _pause(attempt)
            continue
        except Unavailable as e:
            log.warning("alarm table unavailable, relaying without folding: %s", e)
            return Verdict(unavailable=True)
        queued = None
        if step.decision is Decision.RELAY_FIRST and step.send:
            sent, queued = 0, Queued(step.state, version, step.send, now)  # after the first mail
        else:
            sent = _deliver(incidents, step.state, version, step.send, settings, ports, now)
        notes: tuple[Note, ...] = ()
        if step.recovery is not None:
            notes = (mails.recovery_note(step.recovery),)
        if step.decision is Decision.RELAY_FIRST:
            expires_at = arrival.links_expire_at or now + timedelta(seconds=settings.url_expiry_seconds)
            found = mute_links(identity.fingerprint, identity.recipients, expires_at, settings, ports)
            notes = (mails.mute_note(found),) if found is not None else ()
        return Verdict(step.decision, step.incident, notes, digests=sent, queued=queued)
    raise RetryableError(f"the alarm {identity.fingerprint} kept changing under {ATTEMPTS} attempts")


def send_queued(verdict: Verdict, settings: Settings, ports: Ports) -> Verdict:
    """Send what a first mail's decision left queued, once the mail went out; what fails stays queued
    for the clock's tick. Returns the verdict with the digests counted."""
    queued = verdict.queued
    if queued is None or ports.incidents is None:
        return verdict
    sent = _deliver(ports.incidents, queued.state, queued.version, queued.digests, settings, ports, queued.at)
    return replace(verdict, digests=verdict.digests + sent, queued=None)


@dataclass(frozen=True)
class Muted:
    """An alarm after a mute or an unmute: its state, and the digests that went out (an unmute's)."""

    state: State
    digests: int


def mute(fingerprint: str, until: datetime, by: str, settings: Settings, ports: Ports) -> Muted:
    """Fold every mail of the alarm but its recoveries, for all its recipients, until `until` (muting
    again extends). Raises LookupError for an unknown alarm, Unavailable when the table fails."""
    incidents, policy = _muting(settings, ports)
    changed = muting.mute(incidents, fingerprint, until, by, policy, ports.clock)
    sent = _deliver(incidents, changed.state, changed.version, changed.send, settings, ports, changed.at)
    return Muted(changed.state, sent)


def unmute(fingerprint: str, by: str, settings: Settings, ports: Ports) -> Muted:
    """End the alarm's mute at once; the digest of what it folded goes out now."""
    incidents, policy = _muting(settings, ports)
    changed = muting.unmute(incidents, fingerprint, by, policy, ports.clock)
    sent = _deliver(incidents, changed.state, changed.version, changed.send, settings, ports, changed.at)
    return Muted(changed.state, sent)


def _muting(settings: Settings, ports: Ports) -> tuple[Incidents, Policy]:
    if settings.folding is None or ports.incidents is None:
        raise LookupError("alarm folding is off")
    return ports.incidents, settings.folding.policy


def mute_links(
    fingerprint: str, recipients: Sequence[str], expires_at: datetime, settings: Settings, ports: Ports
) -> mails.MuteLinks | None:
    """The alarm's mute links for a mail to `recipients`, or None: MUTE_LINKS off, links that go to S3
    (no link endpoint to mute through), or keys that cannot be read now (the mail goes without)."""
    if not settings.mute_links:
        return None
    to = recipients[0] if len(recipients) == 1 else links.ANY_RECIPIENT
    try:
        urls = [
            ports.signer.mute_link(fingerprint, seconds, to, expires_at) for seconds in links.MUTE_SECONDS
        ]
    except RetryableError as e:
        log.warning("mute links left out of a mail of %s: %s", fingerprint, e)
        return None
    one_hour, eight_hours, one_day = urls
    if one_hour is None or eight_hours is None or one_day is None:
        return None
    return mails.MuteLinks(one_hour, eight_hours, one_day)


def _kept(incidents: Incidents, incoming_key: str) -> Seen | None:
    try:
        return incidents.load_seen(incoming_key)
    except Unavailable:
        return None  # decided again without it: the state's own memory still catches a recent repeat


def process_tick(tick: records.Tick, settings: Settings, ports: Ports) -> Outcome:
    """A scheduled look at one alarm: digests due, closings, the end of a mute or of flapping. One
    log line with its metrics; never raises (a failure is a retry, and in the end the DLQ)."""
    started = time.monotonic()
    digests, closed, detail, outcome = 0, 0, "", Outcome.TICK
    with tracing.mail_subsegment(f"tick:{tick.fingerprint}") as trace:
        try:
            digests, closed = _tick(tick.fingerprint, settings, ports, ports.clock())
        except DigestsUnsent as e:  # what went out counts; the rest is retried, then the DLQ keeps it
            digests, closed, outcome, detail = e.sent, e.closed, Outcome.RETRY, str(e)
        except RetryableError as e:
            outcome, detail = Outcome.RETRY, str(e)
        except Exception as e:  # a bug must not lose the alarm's digests: retry, then the DLQ keeps it
            log.exception("unexpected error in the tick of %s", tick.fingerprint)
            outcome, detail = Outcome.RETRY, f"unexpected {type(e).__name__}"
        trace.annotate(outcome=str(outcome), fold="digest", fingerprint=tick.fingerprint, digests=digests)
    log.info(
        "alarm %s",
        outcome,
        extra={
            "outcome": str(outcome),
            "detail": detail,
            "fingerprint": tick.fingerprint,
            "digests": digests,
            "closed": closed,
            "processing_ms": round((time.monotonic() - started) * 1000, 1),
            # not a mail: no Mails metric; the digests it sent count in the relay's Digests
            **metrics.counts(settings.metrics_namespace, {"Digests": digests}, datetime.now(UTC)),
        },
    )
    return outcome


def _tick(fingerprint: str, settings: Settings, ports: Ports, now: datetime) -> tuple[int, int]:
    incidents = ports.incidents
    if settings.folding is None or incidents is None:
        return 0, 0  # folding was switched off: the queued tick has nothing to do
    for attempt in range(ATTEMPTS):
        stored = incidents.load(fingerprint)
        if stored is None:
            return 0, 0
        step = on_tick(stored.state, now, settings.folding.policy)
        version: int | None = stored.version
        try:
            if step.state != stored.state:
                version = incidents.commit(step, version, now)
            elif not step.send:  # early (not due yet): give up the clock's claim so it ticks again
                version = incidents.save(stored.state, version, now)
        except Conflict:
            _pause(attempt)
            continue
        # Also what waits in the outbox before its retry is due: the digest an unmute from relayctl or a
        # mute on the link page queued goes out with the tick that asks for it. Its marker keeps it once.
        outbox = step.state.outbox
        sent = _deliver(incidents, step.state, version, outbox, settings, ports, now)
        if sent < len(outbox):
            unsent = f"{len(outbox) - sent} of {len(outbox)} digests of the alarm {fingerprint} not sent"
            raise DigestsUnsent(unsent, sent, len(step.closed))
        return sent, len(step.closed)
    raise RetryableError(f"the alarm {fingerprint} kept changing under {ATTEMPTS} attempts")


def _deliver(
    incidents: Incidents,
    state: State,
    version: int | None,
    digests: Sequence[Digest],
    settings: Settings,
    ports: Ports,
    now: datetime,
) -> int:
    """Send the outbox and acknowledge each digest, in order; what fails (and what follows it) stays
    queued for the next tick. Returns how many were sent and acknowledged."""
    sent = 0
    for digest in digests:
        try:
            _send_digest(incidents, digest, settings, ports, now)
            state, version = _acknowledge(incidents, state, version, digest.id, now)
        except (RetryableError, Conflict) as e:
            log.warning("digest %s stays queued for the next tick: %s", digest.id, e)
            break
        sent += 1
    return sent


def _send_digest(
    incidents: Incidents, digest: Digest, settings: Settings, ports: Ports, now: datetime
) -> None:
    through = min(digest.through, digest.after + mails.MAX_ROWS)
    rows = incidents.rows(digest.fingerprint, digest.after, through)
    listed = []
    for row in rows:
        expires = link_expiry(row.links_expire_at, now, settings.url_expiry_seconds)
        links = tuple(
            Link(
                a.name,
                a.size,
                a.content_type,
                None,
                ports.signer.sign(settings.attachments_bucket, a.key, expires),
            )
            for a in row.attachments
        )
        listed.append(mails.ListedRow(row.received_at, row.subject, links, expires))
    expires_at = now + timedelta(seconds=settings.url_expiry_seconds)
    found = mute_links(digest.fingerprint, digest.recipients, expires_at, settings, ports)
    message = mails.build(digest, listed, settings.sender_email, now, found)
    digest_key = attachments.mail_digest(f"digest:{digest.id}")
    batches = chunks(digest.recipients)
    for number, batch in enumerate(batches, start=1):

        def send(batch: tuple[str, ...] = batch) -> str:
            try:
                return ports.mailer.send(
                    message, batch, settings.sender_email, settings.configuration_set_name
                )
            except SendRejected as e:  # for good: tell the operator, and do not try again every minute
                _notice_rejected(digest, str(e), settings, ports)
                return f"rejected: {e}"

        ports.markers.once(marker_key(digest_key, f"send-{number}-of-{len(batches)}"), send)


def link_expiry(signed_until: datetime | None, now: datetime, url_expiry_seconds: int) -> datetime:
    """When the links of a folded mail listed in a digest sent `now` expire: as long after the digest
    as a relayed mail's links last after it (a digest can come a day after the mail, at a mute's end),
    never earlier than the links the mail itself was signed with. The stack keeps attachments at least
    UrlExpirySeconds; one its retention deleted first answers "no longer available"."""
    fresh = now + timedelta(seconds=url_expiry_seconds)
    return fresh if signed_until is None else max(signed_until, fresh)


def _acknowledge(
    incidents: Incidents, state: State, version: int | None, digest_id: str, now: datetime
) -> tuple[State, int | None]:
    """The digest leaves the outbox; a state changed meanwhile is read again (acknowledging is
    idempotent)."""
    for attempt in range(ATTEMPTS):
        try:
            acknowledged = delivered(state, digest_id)
            return acknowledged, incidents.save(acknowledged, version, now)
        except Conflict:
            _pause(attempt)
            stored = incidents.load(state.fingerprint)
            if stored is None:
                raise
            state, version = stored.state, stored.version
    raise Conflict(state.fingerprint)


def _notice_rejected(digest: Digest, detail: str, settings: Settings, ports: Ports) -> None:
    notice = Notice(
        reason=Reason.REJECTED,
        detail=f"a {digest.kind} digest of {digest.count} folded mails: {detail}",
        bucket=settings.incoming_bucket,
        key=f"digest/{digest.id}",
        sender=digest.sender or None,
        subject=digest.subject,
    )

    def publish() -> str:
        ports.notices.publish(settings.fallback_topic_arn, notice)
        return "published"

    ports.markers.once(marker_key(attachments.mail_digest(f"digest:{digest.id}"), "notice-rejected"), publish)


def _pause(attempt: int) -> None:
    """A short, jittered wait before reading a contended alarm again."""
    time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not a secret
