"""The life of one alarm (one fingerprint): relay the first mail, fold the repeats into digests, relay
the recovery, close when quiet, notice flapping, obey a mute. Pure functions over frozen dataclasses.

Why a state machine with the time passed in: the relay decides a mail in one Lambda invocation and a
scheduled tick decides a due digest in another, possibly late or twice; both must agree, and a test must
be able to run a day of storm in a second. So every function takes the state, the time and the policy
and returns the new state and what to do; nothing here reads a clock or talks to AWS. The storage
adapter keeps one `State` per fingerprint as one item (`to_dict`), writes it conditionally, and keeps
the folded mails as separate rows (`Row`, keyed by fingerprint and `seq`).

The rules (Policy holds the numbers):
- A mail with no open incident opens one and is relayed (RELAY_FIRST). Its redelivery is relayed again
  (the send markers keep that exactly-once), never folded.
- A mail while the incident is open is folded (FOLD): the caller records the returned `Row`. Folded
  rows are numbered `seq` 1, 2, 3... per fingerprint; a digest lists the rows after `listed_through` up
  to `folded_through`, so every folded mail is listed in exactly one digest.
- The first digest is due `digest_after` after the incident opened, the next ones at doubling intervals
  capped at `digest_max_interval`, each only when something was folded since the last one.
- A recovery closes the incident and is relayed at once (RELAY_RECOVERY) with the facts for its added
  line (`Recovery`). Repeats not yet in a digest go out in a last digest queued just before the
  recovery: the recovery mail stays the sender's mail plus one line, and digests have one form.
- No mail for `quiet`: the incident closes by itself, after a last digest of what is not yet listed.
- The `flap_transitions`-th opening within `flap_window` makes the alarm flapping: that mail is folded
  and a FLAPPING notice listing it is queued instead of relaying it; from then on every mail (recoveries
  too) is folded into digests every `flap_window`, until `flap_window` passes without a transition
  (problem <-> recovery); then a STABLE digest closes it and the next mail starts afresh.
- A mute folds everything but recoveries, for all recipients, until it ends (a new mute extends it); it
  suspends the digests, and its end (or `unmute`) queues one MUTE_END digest of all that is pending.
  Incidents open and close underneath as usual, silently. The state keeps its last MUTE_LOG_MAX mutes
  and unmutes (who, when, until, from where: `State.mute_log`), written with the change they record.

What the relay sends on its own (digests and notices) is queued in `State.outbox` as a `Digest` with an
id unique to it: the caller commits the state, sends each outbox entry under a send marker named by its
id, then acknowledges it with `delivered`. A crash in between leaves the entry queued and `due_at` brings
a tick that sends it again, and the marker keeps it exactly-once. A redelivered mail (the same incoming
key) is answered with the decision it got the first time and changes nothing: the state remembers the
last SEEN_MAX decisions (and its incident's first mail), and for older ones the storage keeps each new
mail's `Step.seen` under its incoming key, written only if absent together with the state, and passes
it back; that conditional write is also what keeps a repeat redelivered late from counting twice.
A tick before `due_at` changes nothing, so stale and duplicate ticks are harmless.

Times are UTC and kept to the second (stored as Unix seconds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from app.mail.header_text import one_line

if TYPE_CHECKING:  # at run time only its attributes are read: relayctl reads states without flanker
    from app.alarms.fingerprint import Identity

SEEN_MAX = 32  # mails remembered per fingerprint for redeliveries
MUTE_LOG_MAX = 20  # mutes and unmutes remembered per fingerprint: their audit trail
SUBJECT_CHARS = 300  # of a subject kept in the state and rows
OUTBOX_RETRY = timedelta(minutes=2)  # an unacknowledged digest is due again this long after it was queued
FORMAT = 1  # of to_dict; from_dict refuses others


class Decision(StrEnum):
    RELAY_FIRST = "first"  # relay as today; the incident opened with it
    FOLD = "fold"  # do not send; record the row, offload and link its attachments
    RELAY_RECOVERY = "recovery"  # relay with the line of Step.recovery added
    RELAY_PLAIN = "plain"  # relay as today; not part of an incident
    FLAPPING = "flapping"  # do not send; record the row; the outbox has the flapping notice listing it


class DigestKind(StrEnum):
    REPEATS = "repeats"  # what was folded while the incident is open (every flap_window while flapping)
    LAST = "last"  # the incident closed (quiet, or just before its recovery is relayed)
    FLAPPING = "flapping"  # the alarm started flapping; lists the mail that tipped it
    STABLE = "stable"  # the alarm stopped flapping
    MUTE_END = "mute_end"  # a mute ended: everything folded during it (and before it, if not yet listed)


class Closing(StrEnum):
    RECOVERY = "recovery"
    QUIET = "quiet"
    STABLE = "stable"  # a flapping incident after flap_window without a transition


class Kind(StrEnum):
    PROBLEM = "problem"
    RECOVERY = "recovery"


@dataclass(frozen=True)
class Policy:
    digest_after: timedelta = timedelta(minutes=10)
    digest_max_interval: timedelta = timedelta(minutes=240)
    quiet: timedelta = timedelta(minutes=30)
    flap_transitions: int = 5
    flap_window: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        for name in ("digest_after", "digest_max_interval", "quiet", "flap_window"):
            if getattr(self, name) < timedelta(minutes=1):
                raise ValueError(f"{name} must be at least one minute")
        if self.digest_max_interval < self.digest_after:
            raise ValueError("digest_max_interval must not be shorter than digest_after")
        if self.flap_transitions < 2:
            raise ValueError("flap_transitions must be at least 2")


@dataclass(frozen=True)
class Attachment:
    """An attachment of a folded mail, offloaded like any other; its link is signed when listed."""

    name: str
    size: int
    content_type: str
    key: str  # object key in the attachments bucket


@dataclass(frozen=True)
class Arrival:
    """What the timeline needs of an arriving mail."""

    key: str  # the incoming object key: a redelivery has the same one
    subject: str
    attachments: tuple[Attachment, ...] = ()
    links_expire_at: datetime | None = None  # when its attachments' objects expire


@dataclass(frozen=True)
class Row:
    """A folded mail, stored apart from the state (one item each) and listed by one digest."""

    fingerprint: str
    seq: int
    incident: str
    incoming_key: str
    received_at: datetime
    subject: str
    attachments: tuple[Attachment, ...] = ()
    links_expire_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "seq": self.seq,
            "incident": self.incident,
            "incoming_key": self.incoming_key,
            "received_at": _t(self.received_at),
            "subject": self.subject,
            "attachments": [[a.name, a.size, a.content_type, a.key] for a in self.attachments],
            "links_expire_at": _t(self.links_expire_at),
        }

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> Row:
        return cls(
            fingerprint=item["fingerprint"],
            seq=int(item["seq"]),
            incident=item["incident"],
            incoming_key=item["incoming_key"],
            received_at=_at(item["received_at"]),
            subject=item["subject"],
            attachments=tuple(Attachment(n, int(s), c, k) for n, s, c, k in item["attachments"]),
            links_expire_at=_maybe_at(item["links_expire_at"]),
        )


@dataclass(frozen=True)
class Incident:
    id: str
    subject: str  # of the mail that opened it
    opened_at: datetime
    first_key: str  # the incoming key of the mail relayed as its first ("" if that mail was folded)
    first_seq: int  # folded_through when it opened: its folded mails have a larger seq
    closes_at: datetime  # quiet close, or for a flapping incident the end of flapping
    interval: int  # seconds from the last digest (or the opening) to the next one
    last_digest_at: datetime | None = None
    next_digest_at: datetime | None = None  # set while something folded waits for a digest
    flapping: bool = False


@dataclass(frozen=True)
class Mute:
    by: str  # who muted first (the recipient named in the link, or the operator)
    at: datetime
    until: datetime
    first_seq: int  # folded_through when it began
    last_by: str  # the latest request, which may have extended it
    last_at: datetime


@dataclass(frozen=True)
class MuteChange:
    """One mute or unmute as it was asked for: an entry of the alarm's audit trail (`State.mute_log`)."""

    action: str  # "mute" or "unmute"
    by: str
    at: datetime
    until: datetime | None  # the mute's end after the change; None: not muted
    source: str  # where it came from ("mute link from <ip>", "relayctl as <arn>"); "" when not said
    nonce: str = ""  # a mute page's POST: a digest of the page's nonce, so that it mutes once

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "by": self.by,
            "at": _t(self.at),
            "until": _t(self.until),
            "source": self.source,
            "nonce": self.nonce,
        }

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> MuteChange:
        return cls(
            item["action"],
            item["by"],
            _at(item["at"]),
            _maybe_at(item["until"]),
            item["source"],
            item["nonce"],
        )


def logged(state: State, change: MuteChange) -> State:
    """The state with `change` at the end of its mute log (the oldest entries beyond MUTE_LOG_MAX go)."""
    return replace(state, mute_log=(*state.mute_log, change)[-MUTE_LOG_MAX:])


@dataclass(frozen=True)
class MuteEnd:
    """The facts the mute-end digest states."""

    by: str
    at: datetime
    until: datetime
    last_by: str
    last_at: datetime
    ended_by: str | None  # who unmuted it; None when it ran out
    folded: int  # mails folded while it lasted


@dataclass(frozen=True)
class Digest:
    """A mail the relay sends on its own, queued in the outbox until acknowledged."""

    id: str  # unique: the name of its send marker
    kind: DigestKind
    fingerprint: str
    sender: str
    recipients: tuple[str, ...]
    subject: str  # the alarm's subject
    incident: str | None
    after: int  # it lists the rows with after < seq <= through
    through: int
    first_at: datetime | None  # of the rows it lists
    last_at: datetime | None
    created_at: datetime
    opened_at: datetime | None = None  # of its incident
    flapping: bool = False
    cycles: int = 0  # FLAPPING: openings within `window`
    window: int = 0  # seconds: FLAPPING and STABLE the flap_window, LAST after a quiet close the quiet
    closing: Closing | None = None  # LAST and STABLE: how the incident closed
    mute: MuteEnd | None = None  # MUTE_END

    @property
    def count(self) -> int:
        return self.through - self.after

    def to_dict(self) -> dict[str, Any]:
        return _digest_dict(self)

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> Digest:
        return _digest_from(item)


@dataclass(frozen=True)
class Recovery:
    """The facts for the line added to a relayed recovery."""

    incident: str
    opened_at: datetime
    closed_at: datetime
    folded: int  # repeats folded while the incident was open
    in_last_digest: int  # of those, listed in the last digest queued just before the recovery
    held: int  # of those, still pending for the digest at the end of a mute

    @property
    def lasted(self) -> timedelta:
        return self.closed_at - self.opened_at


@dataclass(frozen=True)
class Closed:
    """An incident that closed (for its history record and the metrics)."""

    incident: str
    opened_at: datetime
    closed_at: datetime
    how: Closing
    folded: int
    flapping: bool


@dataclass(frozen=True)
class Seen:
    """The decision a mail got, kept for its redeliveries."""

    key: str  # the incoming key
    fingerprint: str  # of the state it was decided against
    decision: Decision
    incident: str | None
    recovery: Recovery | None = None

    def to_dict(self) -> dict[str, Any]:
        found = self.recovery
        return {
            "key": self.key,
            "fingerprint": self.fingerprint,
            "decision": str(self.decision),
            "incident": self.incident,
            "recovery": None
            if found is None
            else [
                found.incident,
                _t(found.opened_at),
                _t(found.closed_at),
                found.folded,
                found.in_last_digest,
                found.held,
            ],
        }

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> Seen:
        found = item["recovery"]
        recovery = None
        if found is not None:
            incident, opened, closed, folded, in_last, held = found
            recovery = Recovery(incident, _at(opened), _at(closed), int(folded), int(in_last), int(held))
        return cls(item["key"], item["fingerprint"], Decision(item["decision"]), item["incident"], recovery)


@dataclass(frozen=True)
class State:
    """One fingerprint's alarm: stored as one item; the rows are stored apart."""

    fingerprint: str
    group: str  # sender + recipients, for pairing a recovery with no incident of its own
    sender: str
    recipients: tuple[str, ...]
    subject: str = ""  # of the latest mail
    folded_through: int = 0  # seq of the last row recorded
    listed_through: int = 0  # seq of the last row listed in a digest
    pending_first_at: datetime | None = None  # of the rows not yet listed
    pending_last_at: datetime | None = None
    incident: Incident | None = None
    mute: Mute | None = None
    openings: tuple[datetime, ...] = ()  # recent incident openings, for flapping
    last_kind: Kind | None = None
    digests: int = 0  # digests queued so far
    outbox: tuple[Digest, ...] = ()
    seen: tuple[Seen, ...] = ()
    mute_log: tuple[MuteChange, ...] = ()  # the last MUTE_LOG_MAX mutes and unmutes, oldest first

    @property
    def pending(self) -> int:
        """Folded mails not yet listed in a digest."""
        return self.folded_through - self.listed_through

    @property
    def due_at(self) -> datetime | None:
        """The earliest time a tick must look at this state: an unacknowledged digest, the end of the
        mute, the next digest, or the incident's closing; None when nothing will ever be due."""
        times = []
        if self.outbox:
            times.append(min(d.created_at for d in self.outbox) + OUTBOX_RETRY)
        if self.mute is not None:
            times.append(self.mute.until)
        if self.incident is not None:
            times.append(self.incident.closes_at)
            if self.incident.next_digest_at is not None:
                times.append(self.incident.next_digest_at)
        return min(times) if times else None

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON types; `due_at` is included (Unix seconds) for an index on it."""
        return {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "group": self.group,
            "sender": self.sender,
            "recipients": list(self.recipients),
            "subject": self.subject,
            "folded_through": self.folded_through,
            "listed_through": self.listed_through,
            "pending_first_at": _t(self.pending_first_at),
            "pending_last_at": _t(self.pending_last_at),
            "incident": _incident_dict(self.incident),
            "mute": _mute_dict(self.mute),
            "openings": [_t(t) for t in self.openings],
            "last_kind": str(self.last_kind) if self.last_kind else None,
            "digests": self.digests,
            "outbox": [_digest_dict(d) for d in self.outbox],
            "seen": [s.to_dict() for s in self.seen],
            "mute_log": [c.to_dict() for c in self.mute_log],
            "due_at": _t(self.due_at),
        }

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> State:
        if item.get("format") != FORMAT:
            raise ValueError(f"alarm state format {item.get('format')!r}, expected {FORMAT}")
        return cls(
            fingerprint=item["fingerprint"],
            group=item["group"],
            sender=item["sender"],
            recipients=tuple(item["recipients"]),
            subject=item["subject"],
            folded_through=int(item["folded_through"]),
            listed_through=int(item["listed_through"]),
            pending_first_at=_maybe_at(item["pending_first_at"]),
            pending_last_at=_maybe_at(item["pending_last_at"]),
            incident=_incident_from(item["incident"]),
            mute=_mute_from(item["mute"]),
            openings=tuple(_at(t) for t in item["openings"]),
            last_kind=Kind(item["last_kind"]) if item["last_kind"] else None,
            digests=int(item["digests"]),
            outbox=tuple(_digest_from(d) for d in item["outbox"]),
            seen=tuple(Seen.from_dict(s) for s in item["seen"]),
            mute_log=tuple(MuteChange.from_dict(c) for c in item.get("mute_log", ())),  # absent before
        )


@dataclass(frozen=True)
class Step:
    """What one mail, tick or mute did: the new state to commit, and what the caller does with it."""

    state: State
    decision: Decision | None = None  # for a mail
    row: Row | None = None  # record it (once: conditionally on its incoming key) with the state
    incident: str | None = None  # the incident the mail belongs to
    recovery: Recovery | None = None  # RELAY_RECOVERY: the facts of its added line
    closed: tuple[Closed, ...] = ()
    replay: bool = False  # a redelivered mail: nothing changed; relay it again if the decision says so
    seen: Seen | None = None  # a new mail's decision, to keep for its redeliveries (see on_mail)
    send: tuple[Digest, ...] = ()  # send each now under the send marker of its id, then `delivered`


def new_state(identity: Identity) -> State:
    return State(identity.fingerprint, identity.group, identity.sender, identity.recipients)


def pair(
    identity: Identity, key: str, own: State | None, group: Iterable[State], seen: Seen | None = None
) -> State | None:
    """The state a mail is decided against: its fingerprint's (`own`), except a recovery when its own
    has no open incident: then the one state of its sender group (`group`: the states with the same
    sender and recipients) that has an open incident, if there is exactly one. A redelivered mail (in a
    state's memory, or `seen` kept by the storage) is decided where it was decided the first time."""
    if not identity.recovery:
        return own
    others = [s for s in group if s.group == identity.group and s.fingerprint != identity.fingerprint]
    for state in ([own] if own is not None else []) + others:
        if _seen(state, key) is not None or (seen is not None and seen.fingerprint == state.fingerprint):
            return state
    if own is not None and own.incident is not None:
        return own
    open_elsewhere = [s for s in others if s.incident is not None]
    return open_elsewhere[0] if len(open_elsewhere) == 1 else own


def on_mail(
    state: State | None,
    identity: Identity,
    mail: Arrival,
    now: datetime,
    policy: Policy,
    seen: Seen | None = None,
) -> Step:
    """Decide one mail of the alarm `identity`, against `state` (as `pair` chose it). The state
    remembers the last SEEN_MAX decisions; `seen` is the decision the storage kept for this incoming
    key beyond them (Step.seen of its first delivery), if any: either makes the step a replay."""
    now = _second(now)
    state = state if state is not None else new_state(identity)
    paired = identity.recovery and state.group == identity.group
    if state.fingerprint != identity.fingerprint and not paired:
        raise ValueError("the mail belongs to another alarm")
    seen = seen if seen is not None and seen.key == mail.key else _seen(state, mail.key)
    if seen is not None:
        replayed = Step(state, seen.decision, incident=seen.incident, recovery=seen.recovery, replay=True)
        return _sending(replayed)
    if state.incident is not None and state.incident.first_key == mail.key:
        return _sending(Step(state, Decision.RELAY_FIRST, incident=state.incident.id, replay=True))

    state, closed = _advance(state, now, policy)
    kind = Kind.RECOVERY if identity.recovery else Kind.PROBLEM
    transition = state.last_kind is not None and state.last_kind is not kind
    state = replace(state, subject=_subject(mail.subject), last_kind=kind)
    incident = state.incident
    if incident is not None and (incident.flapping or not identity.recovery):
        step = _fold(state, incident, mail, now, policy, transition)
    elif incident is not None:
        step = _recover(state, incident, now)
    elif identity.recovery:
        step = Step(state, Decision.RELAY_PLAIN)
    else:
        step = _open(state, mail, now, policy)
    decision = step.decision or Decision.RELAY_PLAIN
    remembered = Seen(mail.key, state.fingerprint, decision, step.incident, step.recovery)
    state = replace(step.state, seen=(*step.state.seen, remembered)[-SEEN_MAX:])
    return _sending(replace(step, state=state, closed=closed + step.closed, seen=remembered))


def on_tick(state: State, now: datetime, policy: Policy) -> Step:
    """Do what is due by `now`: digests, closings, the end of a mute or of flapping. Before `due_at`
    nothing changes. `Step.send` lists the outbox, including entries not yet acknowledged."""
    now = _second(now)
    due = state.due_at
    if due is None or now < due:
        return Step(state)
    state, closed = _advance(state, now, policy)
    return _sending(Step(state, closed=closed))


def mute(state: State, until: datetime, by: str, now: datetime, policy: Policy) -> Step:
    """Fold every mail of the alarm but its recoveries, for all its recipients, until `until`; muting
    again extends (a shorter new mute leaves the longer one)."""
    now, until = _second(now), _second(until)
    if until <= now:
        raise ValueError("a mute must end after it begins")
    state, closed = _advance(state, now, policy)
    if state.mute is None:
        muted = Mute(by=by, at=now, until=until, first_seq=state.folded_through, last_by=by, last_at=now)
    else:
        muted = replace(state.mute, until=max(state.mute.until, until), last_by=by, last_at=now)
    incident = replace(state.incident, next_digest_at=None) if state.incident is not None else None
    return _sending(Step(replace(state, mute=muted, incident=incident), closed=closed))


def unmute(state: State, by: str, now: datetime, policy: Policy) -> Step:
    """End the mute at once; its digest is queued now."""
    now = _second(now)
    state, closed = _advance(state, now, policy)
    if state.mute is None:
        return _sending(Step(state, closed=closed))
    return _sending(Step(_end_mute(state, state.mute, now, ended_by=by), closed=closed))


def delivered(state: State, digest_id: str) -> State:
    """Acknowledge a digest sent (or refused for good): it leaves the outbox."""
    return replace(state, outbox=tuple(d for d in state.outbox if d.id != digest_id))


def _sending(step: Step) -> Step:
    return replace(step, send=step.state.outbox)


# --- mails ---------------------------------------------------------------------------------------


def _open(state: State, mail: Arrival, now: datetime, policy: Policy) -> Step:
    window_start = now - policy.flap_window
    openings = (*(t for t in state.openings if t > window_start), now)
    flapping = len(openings) >= policy.flap_transitions
    relayed = not flapping and state.mute is None
    same_second = sum(1 for t in state.openings if t == now)
    incident = Incident(
        id=f"{state.fingerprint}-{int(now.timestamp())}" + (f"-{same_second}" if same_second else ""),
        subject=_subject(mail.subject),
        opened_at=now,
        first_key=mail.key if relayed else "",
        first_seq=state.folded_through,
        closes_at=now + (policy.flap_window if flapping else policy.quiet),
        interval=int((policy.flap_window if flapping else policy.digest_after).total_seconds()),
        flapping=flapping,
    )
    state = replace(state, incident=incident, openings=openings[-policy.flap_transitions :])
    if relayed:
        return Step(state, Decision.RELAY_FIRST, incident=incident.id)
    if not flapping:  # muted: the incident opens silently
        return _fold(state, incident, mail, now, policy, transition=False)
    state, row = _record(state, incident, mail, now)
    if state.mute is not None:
        return Step(state, Decision.FOLD, row=row, incident=incident.id)
    window = int(policy.flap_window.total_seconds())
    state = _queue(state, DigestKind.FLAPPING, now, cycles=len(openings), window=window)
    return Step(state, Decision.FLAPPING, row=row, incident=incident.id)


def _fold(
    state: State, incident: Incident, mail: Arrival, now: datetime, policy: Policy, transition: bool
) -> Step:
    state, row = _record(state, incident, mail, now)
    if incident.flapping:
        closes_at = now + policy.flap_window if transition else incident.closes_at
    else:
        closes_at = now + policy.quiet
    next_digest_at = incident.next_digest_at
    if next_digest_at is None and state.mute is None:
        since = incident.last_digest_at or incident.opened_at
        next_digest_at = max(since + timedelta(seconds=incident.interval), now)
    incident = replace(incident, closes_at=closes_at, next_digest_at=next_digest_at)
    return Step(replace(state, incident=incident), Decision.FOLD, row=row, incident=incident.id)


def _recover(state: State, incident: Incident, now: datetime) -> Step:
    unlisted = state.folded_through - max(state.listed_through, incident.first_seq)
    in_last = held = 0
    if unlisted and state.mute is None:
        state = _queue(state, DigestKind.LAST, now, closing=Closing.RECOVERY)
        in_last = unlisted
    elif unlisted:
        held = unlisted
    folded = state.folded_through - incident.first_seq
    recovery = Recovery(incident.id, incident.opened_at, now, folded, in_last, held)
    closed = Closed(incident.id, incident.opened_at, now, Closing.RECOVERY, folded, incident.flapping)
    return Step(
        replace(state, incident=None),
        Decision.RELAY_RECOVERY,
        incident=incident.id,
        recovery=recovery,
        closed=(closed,),
    )


def _record(state: State, incident: Incident, mail: Arrival, now: datetime) -> tuple[State, Row]:
    seq = state.folded_through + 1
    row = Row(
        fingerprint=state.fingerprint,
        seq=seq,
        incident=incident.id,
        incoming_key=mail.key,
        received_at=now,
        subject=_subject(mail.subject),
        attachments=mail.attachments,
        links_expire_at=_second(mail.links_expire_at) if mail.links_expire_at else None,
    )
    state = replace(
        state, folded_through=seq, pending_first_at=state.pending_first_at or now, pending_last_at=now
    )
    return state, row


# --- time ----------------------------------------------------------------------------------------


def _advance(state: State, now: datetime, policy: Policy) -> tuple[State, tuple[Closed, ...]]:
    """Handle, in time order, every event due by `now` (at most a mute end, a digest and a closing)."""
    closed: list[Closed] = []
    for _ in range(4):
        events = []
        muted, incident = state.mute, state.incident
        if muted is not None and muted.until <= now:
            events.append((muted.until, 0, "mute"))
        if incident is not None and incident.closes_at <= now:
            events.append((incident.closes_at, 1, "close"))
        if incident is not None and incident.next_digest_at is not None and incident.next_digest_at <= now:
            events.append((incident.next_digest_at, 2, "digest"))
        if not events:
            return state, tuple(closed)
        at, _, what = min(events)
        if what == "mute" and muted is not None:
            state = _end_mute(state, muted, at, ended_by=None)
        elif what == "digest" and incident is not None:
            state = _digest_due(state, incident, at, policy)
        elif incident is not None:
            state, done = _close(state, incident, at, policy)
            closed.append(done)
    raise AssertionError("alarm state events did not settle")  # each handler clears its own deadline


def _digest_due(state: State, incident: Incident, at: datetime, policy: Policy) -> State:
    if not state.pending or state.mute is not None:
        return replace(state, incident=replace(incident, next_digest_at=None))
    state = _queue(state, DigestKind.REPEATS, at)
    interval = incident.interval
    if not incident.flapping:
        interval = min(interval * 2, int(policy.digest_max_interval.total_seconds()))
    incident = replace(incident, last_digest_at=at, next_digest_at=None, interval=interval)
    return replace(state, incident=incident)


def _close(state: State, incident: Incident, at: datetime, policy: Policy) -> tuple[State, Closed]:
    how = Closing.STABLE if incident.flapping else Closing.QUIET
    if state.mute is None and (incident.flapping or state.pending):
        kind = DigestKind.STABLE if incident.flapping else DigestKind.LAST
        window = policy.flap_window if incident.flapping else policy.quiet
        state = _queue(state, kind, at, closing=how, window=int(window.total_seconds()))
    folded = state.folded_through - incident.first_seq
    done = Closed(incident.id, incident.opened_at, at, how, folded, incident.flapping)
    if incident.flapping:  # the next mail starts afresh
        return replace(state, incident=None, openings=(), last_kind=None), done
    return replace(state, incident=None), done


def _end_mute(state: State, muted: Mute, at: datetime, ended_by: str | None) -> State:
    facts = MuteEnd(
        by=muted.by,
        at=muted.at,
        until=muted.until,
        last_by=muted.last_by,
        last_at=muted.last_at,
        ended_by=ended_by,
        folded=state.folded_through - muted.first_seq,
    )
    state = _queue(replace(state, mute=None), DigestKind.MUTE_END, at, mute=facts)
    if state.incident is not None:
        state = replace(state, incident=replace(state.incident, last_digest_at=at, next_digest_at=None))
    return state


def _queue(
    state: State,
    kind: DigestKind,
    at: datetime,
    *,
    cycles: int = 0,
    window: int = 0,
    closing: Closing | None = None,
    mute: MuteEnd | None = None,
) -> State:
    """Queue a digest of everything pending; it is listed from now on."""
    number = state.digests + 1
    incident = state.incident
    digest = Digest(
        id=f"{state.fingerprint}-{int(at.timestamp())}-{number}",
        kind=kind,
        fingerprint=state.fingerprint,
        sender=state.sender,
        recipients=state.recipients,
        subject=incident.subject if incident is not None else state.subject,
        incident=incident.id if incident is not None else None,
        after=state.listed_through,
        through=state.folded_through,
        first_at=state.pending_first_at,
        last_at=state.pending_last_at,
        created_at=at,
        opened_at=incident.opened_at if incident is not None else None,
        flapping=incident.flapping if incident is not None else False,
        cycles=cycles,
        window=window,
        closing=closing,
        mute=mute,
    )
    return replace(
        state,
        listed_through=state.folded_through,
        pending_first_at=None,
        pending_last_at=None,
        digests=number,
        outbox=(*state.outbox, digest),
    )


def _seen(state: State, key: str) -> Seen | None:
    return next((s for s in reversed(state.seen) if s.key == key), None)


def _subject(subject: str) -> str:
    return one_line(subject)[:SUBJECT_CHARS]


def _second(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0)


# --- the dict form -------------------------------------------------------------------------------


def _t(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def _maybe_at(seconds: int | None) -> datetime | None:
    return None if seconds is None else _at(seconds)


def _incident_dict(incident: Incident | None) -> dict[str, Any] | None:
    if incident is None:
        return None
    return {
        "id": incident.id,
        "subject": incident.subject,
        "opened_at": _t(incident.opened_at),
        "first_key": incident.first_key,
        "first_seq": incident.first_seq,
        "closes_at": _t(incident.closes_at),
        "interval": incident.interval,
        "last_digest_at": _t(incident.last_digest_at),
        "next_digest_at": _t(incident.next_digest_at),
        "flapping": incident.flapping,
    }


def _incident_from(item: dict[str, Any] | None) -> Incident | None:
    if item is None:
        return None
    return Incident(
        id=item["id"],
        subject=item["subject"],
        opened_at=_at(item["opened_at"]),
        first_key=item["first_key"],
        first_seq=int(item["first_seq"]),
        closes_at=_at(item["closes_at"]),
        interval=int(item["interval"]),
        last_digest_at=_maybe_at(item["last_digest_at"]),
        next_digest_at=_maybe_at(item["next_digest_at"]),
        flapping=bool(item["flapping"]),
    )


def _mute_dict(muted: Mute | None) -> dict[str, Any] | None:
    if muted is None:
        return None
    return {
        "by": muted.by,
        "at": _t(muted.at),
        "until": _t(muted.until),
        "first_seq": muted.first_seq,
        "last_by": muted.last_by,
        "last_at": _t(muted.last_at),
    }


def _mute_from(item: dict[str, Any] | None) -> Mute | None:
    if item is None:
        return None
    return Mute(
        by=item["by"],
        at=_at(item["at"]),
        until=_at(item["until"]),
        first_seq=int(item["first_seq"]),
        last_by=item["last_by"],
        last_at=_at(item["last_at"]),
    )


def _digest_dict(digest: Digest) -> dict[str, Any]:
    ended = digest.mute
    return {
        "id": digest.id,
        "kind": str(digest.kind),
        "fingerprint": digest.fingerprint,
        "sender": digest.sender,
        "recipients": list(digest.recipients),
        "subject": digest.subject,
        "incident": digest.incident,
        "after": digest.after,
        "through": digest.through,
        "first_at": _t(digest.first_at),
        "last_at": _t(digest.last_at),
        "created_at": _t(digest.created_at),
        "opened_at": _t(digest.opened_at),
        "flapping": digest.flapping,
        "cycles": digest.cycles,
        "window": digest.window,
        "closing": str(digest.closing) if digest.closing else None,
        "mute": None
        if ended is None
        else {
            "by": ended.by,
            "at": _t(ended.at),
            "until": _t(ended.until),
            "last_by": ended.last_by,
            "last_at": _t(ended.last_at),
            "ended_by": ended.ended_by,
            "folded": ended.folded,
        },
    }


def _digest_from(item: dict[str, Any]) -> Digest:
    ended = item["mute"]
    return Digest(
        id=item["id"],
        kind=DigestKind(item["kind"]),
        fingerprint=item["fingerprint"],
        sender=item["sender"],
        recipients=tuple(item["recipients"]),
        subject=item["subject"],
        incident=item["incident"],
        after=int(item["after"]),
        through=int(item["through"]),
        first_at=_maybe_at(item["first_at"]),
        last_at=_maybe_at(item["last_at"]),
        created_at=_at(item["created_at"]),
        opened_at=_maybe_at(item["opened_at"]),
        flapping=bool(item["flapping"]),
        cycles=int(item["cycles"]),
        window=int(item["window"]),
        closing=Closing(item["closing"]) if item["closing"] else None,
        mute=None
        if ended is None
        else MuteEnd(
            by=ended["by"],
            at=_at(ended["at"]),
            until=_at(ended["until"]),
            last_by=ended["last_by"],
            last_at=_at(ended["last_at"]),
            ended_by=ended["ended_by"],
            folded=int(ended["folded"]),
        ),
    )
