"""The Alarms page: every alarm's incidents (open, flapping, closed) and its active mute, read from the
alarm table through the relay's own adapter (`sandbox.web.alarmtable`), each incident's timeline (its
first mail, the folded mails, the digests sent, its recovery or closing) and the relay's own mails about
an alarm.

A digest (the flapping notice, the last digest, the end of a mute...) belongs to no received mail, so the
view finds it in the outbox by its `Auto-Submitted: auto-generated` header, which no relayed mail carries,
and ties it to its incident by what it states, as a recipient reads it (`app.alarms.mails`): the alarm's
sender ("From:"), its subject ("Alarm:") and when its incident opened ("Open since:"), sent to recipients
of that alarm. A mute-end digest of an alarm with no open incident names no opening: it belongs to no
incident, and is listed apart with the digests of alarms the table no longer has.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any

from app.alarms.timeline import Closed, Closing, Decision, Mute, Row, State
from app.aws.incidents import Stored, Unavailable
from sandbox.web import data

OPEN_SINCE = "%Y-%m-%d %H:%M:%S UTC"  # how a digest states a time (app.alarms.mails)
_STATED = ("From", "Alarm", "Open since")
_ORDER = {"first": 0, "opened": 0, "folded": 1, "flapping": 1, "digest": 2, "recovery": 3, "closed": 3}


@dataclass(frozen=True)
class Letter:
    """What one outbox file of the relay's own mail states (None for a relayed mail)."""

    message_id: str
    subject: str
    sent_at: datetime.datetime | None
    sender: str
    alarm: str
    opened_at: datetime.datetime | None
    text: str


@dataclass(frozen=True)
class Digest:
    """A mail the relay sent about an alarm: one per Message-ID, its chunks of recipients together."""

    files: tuple[str, ...]  # in the outbox, one per chunk
    recipients: tuple[str, ...]
    letter: Letter

    @property
    def file(self) -> str:
        return self.files[0]

    @property
    def subject(self) -> str:
        return self.letter.subject

    @property
    def sent_at(self) -> datetime.datetime | None:
        return self.letter.sent_at


@dataclass(frozen=True)
class Incident:
    id: str
    fingerprint: str
    subject: str
    sender: str
    recipients: tuple[str, ...]
    opened_at: datetime.datetime
    last_mail_at: datetime.datetime
    folded: int  # repeats folded into it so far
    digests: tuple[Digest, ...]
    flapping: bool
    next_digest_at: datetime.datetime | None = None  # open: when the next digest is due, if one waits
    closes_at: datetime.datetime | None = None  # open: when it closes if no mail comes (flapping ends)
    closed: Closed | None = None
    mute: Mute | None = None  # the alarm's, while it lasts

    @property
    def state(self) -> str:
        if self.closed is not None:
            return "closed"
        return "flapping" if self.flapping else "open"


@dataclass(frozen=True)
class Muting:
    """An alarm's mute: every mail of it but recoveries is folded, for all its recipients, until it ends."""

    fingerprint: str
    subject: str  # its open incident's, else the alarm's latest
    sender: str
    recipients: tuple[str, ...]
    mute: Mute
    folded: int  # mails folded since it began
    incident: str | None  # the alarm's open incident
    over: bool  # its end has passed: the next tick of the clock sends its digest


@dataclass(frozen=True)
class Book:
    """What the Alarms page shows."""

    folding: bool  # False: RepeatFolding=off, no table
    open: tuple[Incident, ...] = ()
    closed: tuple[Incident, ...] = ()
    mutes: tuple[Muting, ...] = ()
    others: tuple[Digest, ...] = ()  # about no incident the table has (a mute's end with none open)
    error: str = ""  # the table did not answer

    @property
    def incidents(self) -> tuple[Incident, ...]:
        return self.open + self.closed

    def find(self, incident_id: str) -> Incident | None:
        return next((i for i in self.incidents if i.id == incident_id), None)


@dataclass(frozen=True)
class Event:
    """A line of an incident's timeline."""

    at: datetime.datetime
    kind: str  # first, opened, folded, flapping, digest, recovery, closed
    subject: str = ""
    key: str = ""  # the mail's incoming key, while the view has the mail
    digest: Digest | None = None
    attachments: int = 0
    detail: str = ""


@dataclass(frozen=True)
class Timeline:
    incident: Incident
    events: tuple[Event, ...]


@dataclass
class _Alarm:
    stored: Stored
    closed: list[Closed]
    rows: list[Row]
    subjects: dict[str, str] = field(default_factory=dict)  # incident -> its first mail's subject

    @property
    def state(self) -> State:
        return self.stored.state

    def openings(self) -> list[tuple[str, datetime.datetime]]:
        found = [(c.incident, c.opened_at) for c in self.closed]
        if self.state.incident is not None:
            found.append((self.state.incident.id, self.state.incident.opened_at))
        return found


# -- the relay's own mails --------------------------------------------------------------------------------
def _stated(text: str) -> dict[str, str]:
    """The facts a digest states in its first lines of the form `Name: value`."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, colon, value = line.partition(": ")
        if colon and name in _STATED and name not in found:
            found[name] = value.strip()
    return found


def _time(text: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.strptime(text, OPEN_SINCE).replace(tzinfo=datetime.UTC)
    except ValueError:
        return None


def letter(raw: bytes) -> Letter | None:
    """What a mail the relay sent on its own states; None for any other mail."""
    message = data.parse(raw)
    if str(message.get("Auto-Submitted", "")).strip().lower() != "auto-generated":
        return None
    text = data.body(message, "plain")
    stated = _stated(text)
    try:
        sent_at: datetime.datetime | None = parsedate_to_datetime(str(message.get("Date", "")))
    except (TypeError, ValueError):
        sent_at = None
    return Letter(
        message_id=str(message.get("Message-ID", "")).strip(),
        subject=" ".join(str(message.get("Subject", "")).split()),  # unfolded: a long one starts folded
        sent_at=sent_at,
        sender=stated.get("From", ""),
        alarm=stated.get("Alarm", ""),
        opened_at=_time(stated.get("Open since", "")),
        text=text,
    )


def _letter(sources: data.Sources, file: str) -> Letter | None:
    """An outbox file's letter, read once (a sent file never changes)."""
    with sources._lock:
        if file in sources._letters:
            kept: Letter | None = sources._letters[file]
            return kept
    try:
        found = letter((sources.data_dir / "outbox" / file).read_bytes())
    except OSError:
        return None
    with sources._lock:
        sources._letters[file] = found
    return found


def digests(sources: data.Sources) -> list[Digest]:
    """The relay's own mails in the outbox, in the order sent."""
    chunks: dict[str, list[tuple[dict[str, Any], Letter]]] = {}
    for entry in data.outbox_index(sources.data_dir):
        found = _letter(sources, str(entry.get("file", "")))
        if found is not None:
            chunks.setdefault(found.message_id or str(entry["file"]), []).append((entry, found))
    return [
        Digest(
            files=tuple(str(entry["file"]) for entry, _ in sent),
            recipients=tuple(str(d) for entry, _ in sent for d in entry.get("destinations", [])),
            letter=sent[0][1],
        )
        for sent in chunks.values()
    ]


def digest_file(sources: data.Sources, file: str) -> bytes | None:
    """The `.eml` of a mail the relay sent about an alarm; only such a file of the outbox."""
    if file not in {f for d in digests(sources) for f in d.files}:
        return None
    try:
        return (sources.data_dir / "outbox" / file).read_bytes()
    except OSError:
        return None


def _owner(digest: Digest, alarms: list[_Alarm]) -> tuple[_Alarm, str | None] | None:
    """The alarm (and incident) a digest is about, by what it states."""
    sent_to = {r.lower() for r in digest.recipients}
    candidates = [
        a
        for a in alarms
        if a.state.sender.lower() == digest.letter.sender.lower()
        and sent_to <= {r.lower() for r in a.state.recipients}
    ]
    stated = digest.letter
    if stated.opened_at is not None:
        hits = [(a, i) for a in candidates for i, opened in a.openings() if opened == stated.opened_at]
        named = [(a, i) for a, i in hits if a.subjects.get(i) == stated.alarm]
        return (named or hits)[0] if hits else None
    alike = [a for a in candidates if a.state.subject == stated.alarm] or candidates
    return (alike[0], None) if len(alike) == 1 else None


# -- the book -------------------------------------------------------------------------------------------
def _subjects(alarm: _Alarm, mails: Iterable[data.MailRow]) -> dict[str, str]:
    """Incident -> the subject of the mail that opened it: the state's for the open one, else its first
    mail's while the view has it, else its first folded mail's."""
    found: dict[str, str] = {}
    for row in alarm.rows:
        found.setdefault(row.incident, row.subject)
    for mail in mails:
        seen = mail.folding
        if seen is not None and seen.decision is Decision.RELAY_FIRST and seen.incident:
            found[seen.incident] = mail.subject
    if alarm.state.incident is not None:
        found[alarm.state.incident.id] = alarm.state.incident.subject
    return found


def _incident(alarm: _Alarm, incident_id: str, opened_at: datetime.datetime, sent: list[Digest]) -> Incident:
    state = alarm.state
    closed = next((c for c in alarm.closed if c.incident == incident_id), None)
    last = [opened_at, *(r.received_at for r in alarm.rows if r.incident == incident_id)]
    if closed is not None and closed.how is Closing.RECOVERY:
        last.append(closed.closed_at)
    shown = Incident(
        id=incident_id,
        fingerprint=state.fingerprint,
        subject=alarm.subjects.get(incident_id, state.subject),
        sender=state.sender,
        recipients=state.recipients,
        opened_at=opened_at,
        last_mail_at=max(last),
        folded=0,
        digests=tuple(sent),
        flapping=False,
        mute=state.mute,
    )
    if closed is not None:
        return replace(shown, folded=closed.folded, flapping=closed.flapping, closed=closed)
    current = state.incident
    if current is None or current.id != incident_id:
        raise ValueError(f"{incident_id} is neither closed nor the alarm's open incident")
    return replace(
        shown,
        folded=state.folded_through - current.first_seq,
        flapping=current.flapping,
        next_digest_at=current.next_digest_at,
        closes_at=current.closes_at,
    )


def _read(sources: data.Sources, mails: list[data.MailRow]) -> tuple[Book, dict[str, _Alarm]]:
    """The book, and each alarm (by fingerprint) as read for it."""
    table = sources.alarm_table
    incidents = table.incidents
    if incidents is None:
        return Book(folding=False), {}
    try:
        now = table.now()
        alarms = [
            _Alarm(
                s,
                incidents.closed(s.state.fingerprint),
                table.rows(s.state.fingerprint, s.state.folded_through),
            )
            for s in incidents.alarms()
        ]
    except Unavailable as e:
        return Book(folding=True, error=str(e)), {}
    for alarm in alarms:
        alarm.subjects = _subjects(alarm, mails)
    about: dict[tuple[str, str], list[Digest]] = {}
    others = []
    for digest in digests(sources):
        owner = _owner(digest, alarms)
        if owner is None or owner[1] is None:
            others.append(digest)
        else:
            about.setdefault((owner[0].state.fingerprint, owner[1]), []).append(digest)
    shown = [
        _incident(alarm, incident_id, opened_at, about.get((alarm.state.fingerprint, incident_id), []))
        for alarm in alarms
        for incident_id, opened_at in alarm.openings()
    ]
    mutes = [_muting(a.state, now) for a in alarms if a.state.mute is not None]
    still = [i for i in shown if i.closed is None]
    done = [i for i in shown if i.closed is not None]
    # The noisiest first: flapping, then by repeats folded, then the latest mail; closed: latest first.
    still.sort(key=lambda i: (i.flapping, i.folded, i.last_mail_at), reverse=True)
    done.sort(key=lambda i: i.closed.closed_at if i.closed else i.opened_at, reverse=True)
    found = Book(
        folding=True,
        open=tuple(still),
        closed=tuple(done),
        mutes=tuple(sorted(mutes, key=lambda m: m.mute.until)),
        others=tuple(others),
    )
    return found, {a.state.fingerprint: a for a in alarms}


def _muting(state: State, now: datetime.datetime) -> Muting:
    mute = state.mute
    if mute is None:
        raise ValueError(f"the alarm {state.fingerprint} is not muted")
    return Muting(
        fingerprint=state.fingerprint,
        subject=state.incident.subject if state.incident else state.subject,
        sender=state.sender,
        recipients=state.recipients,
        mute=mute,
        folded=state.folded_through - mute.first_seq,
        incident=state.incident.id if state.incident else None,
        over=mute.until <= now,
    )


def book(sources: data.Sources) -> Book:
    """Every alarm's incidents and mutes, with the digests sent about each."""
    if sources.alarm_table.incidents is None:
        return Book(folding=False)
    return _read(sources, data.mails(sources))[0]


def timeline(sources: data.Sources, incident_id: str) -> Timeline | None:
    """One incident's mails and digests in time order; None for an incident the table does not have."""
    mails = data.mails(sources)
    found, alarms = _read(sources, mails)
    incident = found.find(incident_id)
    if incident is None:
        return None
    here = {mail.key: mail for mail in mails}
    own = {  # an incident has one first mail and at most one recovery
        mail.folding.decision: mail
        for mail in mails
        if mail.folding is not None and mail.incident == incident_id
    }
    first = own.get(Decision.RELAY_FIRST)
    events = [
        Event(incident.opened_at, "first", first.subject, first.key)
        if first is not None
        else Event(incident.opened_at, "opened", incident.subject)
    ]
    for row in alarms[incident.fingerprint].rows:
        if row.incident != incident_id:
            continue
        mail = here.get(row.incoming_key)
        decision = mail.folding.decision if mail is not None and mail.folding is not None else None
        events.append(
            Event(
                row.received_at,
                "flapping" if decision is Decision.FLAPPING else "folded",
                row.subject,
                row.incoming_key if mail is not None else "",
                attachments=len(row.attachments),
            )
        )
    events += [
        Event(d.sent_at or incident.last_mail_at, "digest", d.subject, digest=d) for d in incident.digests
    ]
    closed = incident.closed
    recovery = own.get(Decision.RELAY_RECOVERY)
    if closed is not None and closed.how is Closing.RECOVERY and recovery is not None:
        events.append(Event(closed.closed_at, "recovery", recovery.subject, recovery.key))
    elif closed is not None and closed.how is Closing.RECOVERY:
        events.append(Event(closed.closed_at, "recovery"))  # the mail is no longer in the view
    elif closed is not None:
        events.append(Event(closed.closed_at, "closed", detail=CLOSINGS[closed.how]))
    events.sort(key=lambda e: (e.at, _ORDER[e.kind]))
    return Timeline(incident, tuple(events))


CLOSINGS = {
    Closing.RECOVERY: "its recovery mail",
    Closing.QUIET: "no mail for the quiet time (IncidentQuietMinutes)",
    Closing.STABLE: "stable again: no change between problem and recovery for the flapping window",
}
BY = "sandbox web view"  # who unmuted, as the mute-end digest names it


def unmute(sources: data.Sources, fingerprint: str) -> int:
    """End the alarm's mute now; the number of digests that went out (its mute-end digest)."""
    return sources.alarm_table.unmute(fingerprint, BY).digests
