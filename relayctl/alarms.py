"""alarms: alarm folding as the operator sees it. `list` the alarms (open, flapping, muted, and how many
incidents closed), `show ID` one incident's timeline or a whole alarm's, `mute ID --for 2h`, `unmute ID`.

ID is an incident id (`<fingerprint>-<unix time>`, as digests name it in "relayctl alarms show ...") or an
alarm's fingerprint (32 hex digits; the part of a mute link's path after /mute/). The alarm table is the
stack's `IncidentsTableName` or `--incidents-table`. It is read and written with the function's own code
(`app.aws.incidents`, handed relayctl's DynamoDB client; `app.muting` for a mute), so relayctl and the
relay agree on every item, and nothing of it needs the function's mail parser.

A mute from here is a mute like one from a mail's link: every mail of the alarm but its recoveries is
folded for all its recipients until it ends; muting again extends it. `unmute` ends it at once and queues
the digest of what it folded; relayctl then puts a tick for the alarm on the inbound queue (the stack's
`InboundQueueUrl` or `--queue-url`), so the relay sends that digest within seconds, under its markers,
with its retries. Without the queue the alarm clock's next sweep sends it, within about three minutes.
The timeline's numbers a mute settles overdue events by are the stack's parameters (DigestAfterMinutes
and the like), or the template's defaults without a stack.

Audit: a mute or unmute from here is written to the alarm's mute log in the same conditional write as
the change (`app.muting`): who (`--by`, or `operator <name>`), when, until, and from where (`relayctl as
<the caller's ARN>` from STS, or the local user's name when STS cannot say). `show` lists the log, and
each change prints one JSON audit line to stderr.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from app import muting, records
from app.alarms.timeline import Closed, Digest, DigestKind, MuteChange, Policy, Row, State
from app.aws.incidents import RETAIN, Incidents, Unavailable
from relayctl.aws import Aws, CommandError, describe
from relayctl.command import Command
from relayctl.report import Report
from relayctl.resources import Resources

VERBS = ("list", "show", "mute", "unmute")
LONGEST_MUTE = timedelta(days=30)
_FINGERPRINT = re.compile(r"[0-9a-f]{32}")
_INCIDENT = re.compile(r"(?P<fingerprint>[0-9a-f]{32})-\d{1,10}(-\d{1,4})?")
_DURATION = re.compile(r"(?P<number>[1-9][0-9]{0,5})(?P<unit>[mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_POLICY_PARAMETERS = {  # Policy field -> the template parameter that sets it, in minutes or a count
    "digest_after": "DigestAfterMinutes",
    "digest_max_interval": "DigestMaxIntervalMinutes",
    "quiet": "IncidentQuietMinutes",
    "flap_transitions": "FlapTransitions",
}


def duration(text: str) -> timedelta:
    """argparse type: `30m`, `2h`, `1d`, at most LONGEST_MUTE."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found is None:
        raise argparse.ArgumentTypeError(f"expected a duration such as 30m, 2h or 1d, got {text!r}")
    length = timedelta(**{_UNITS[found["unit"]]: int(found["number"])})
    if length > LONGEST_MUTE:
        raise argparse.ArgumentTypeError(f"a mute lasts at most {LONGEST_MUTE.days} days, not {text}")
    return length


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verb", choices=VERBS, help="list | show ID | mute ID --for 2h | unmute ID")
    parser.add_argument("id", nargs="?", metavar="ID", help="an incident id or an alarm's fingerprint")
    parser.add_argument(
        "--for",
        dest="duration",
        type=duration,
        metavar="DURATION",
        help=f"mute: how long, such as 30m, 2h or 1d (at most {LONGEST_MUTE.days} days)",
    )
    parser.add_argument(
        "--by", help="mute, unmute: the name the mute's digest gives (default: operator <your AWS identity>)"
    )


def run(args: argparse.Namespace, aws: Aws) -> Report:
    if args.verb == "list":
        if args.id:
            raise CommandError("alarms list takes no ID (alarms show ID shows one)")
        return _list(_table(args, aws), _now())
    if not args.id:
        raise CommandError(f"alarms {args.verb} needs an ID: an incident id or an alarm's fingerprint")
    fingerprint, incident = _identify(args.id)
    if args.verb == "show":
        return _show(_table(args, aws), fingerprint, incident)
    if args.verb == "mute" and args.duration is None:
        raise CommandError("alarms mute needs --for DURATION, such as --for 2h")
    if args.verb != "mute" and args.duration is not None:
        raise CommandError(f"alarms {args.verb} takes no --for")
    return _change(args, aws, fingerprint)


# ---------------------------------------------------------------- list
def _list(table: Incidents, now: datetime) -> Report:
    alarms = sorted(_read(lambda: list(table.alarms())), key=lambda s: _sort_key(s.state))
    entries = [_summary(table, stored.state, now) for stored in alarms]
    counts = {
        "alarms": len(entries),
        "open": sum(1 for e in entries if e["status"] in {"open", "flapping"}),
        "flapping": sum(1 for e in entries if e["status"] == "flapping"),
        "muted": sum(1 for e in entries if e["muted"] is not None),
        "closed_incidents": sum(e["closed_incidents"] for e in entries),
    }
    lines = [
        f"{_count(counts['alarms'], 'alarm')}: {counts['open']} open ({counts['flapping']} flapping),"
        f" {counts['muted']} muted; {_count(counts['closed_incidents'], 'incident')} closed in the last"
        f" {RETAIN.days} days"
    ]
    for entry in entries:
        if entry["opened_at"]:
            when = f"since {_time(entry['opened_at'])}, {_count(entry['folded'], 'repeat')} folded"
        elif entry["last_closed"]:
            when = f"last closed {_time(entry['last_closed']['closed_at'])} ({entry['last_closed']['how']})"
        else:
            when = "no incident"
        recipients = _count(len(entry["recipients"]), "recipient")
        lines += [
            "",
            f"{entry['status']:<9} {entry['incident'] or entry['fingerprint']}  {when}",
            f"          {entry['subject']}",
            f"          from {entry['sender'] or 'unknown'} to {recipients};"
            f" {_count(entry['closed_incidents'], 'incident')} closed",
        ]
        if entry["muted"]:
            muted = entry["muted"]
            lines.append(f"          muted until {_time(muted['until'])} by {muted['by']}")
    return Report({"counts": counts, "alarms": entries}, lines)


def _summary(table: Incidents, state: State, now: datetime) -> dict[str, Any]:
    incident, mute = state.incident, state.mute
    closed = _read(lambda: table.closed(state.fingerprint))
    status = "closed"
    if incident is not None:
        status = "flapping" if incident.flapping else "open"
    return {
        "fingerprint": state.fingerprint,
        "status": status,
        "incident": incident.id if incident else None,
        "subject": incident.subject if incident else state.subject,
        "sender": state.sender,
        "recipients": list(state.recipients),
        "opened_at": incident.opened_at if incident else None,
        "folded": state.folded_through - incident.first_seq if incident else 0,
        "pending": state.pending,
        "muted": _mute(state) if mute is not None and mute.until > now else None,
        "closed_incidents": len(closed),
        "last_closed": _closed(max(closed, key=lambda c: c.closed_at)) if closed else None,
    }


def _sort_key(state: State) -> tuple[int, float]:
    """Open alarms first, the most recent opening first; then the quiet ones."""
    if state.incident is not None:
        return 0, -state.incident.opened_at.timestamp()
    return 1, 0.0


# ---------------------------------------------------------------- show
@dataclass(frozen=True)
class _Event:
    at: datetime
    order: int  # of events at the same second: opened, repeat, digest, closed
    kind: str
    text: str
    data: dict[str, Any]


def _show(table: Incidents, fingerprint: str, incident: str | None) -> Report:
    stored = _read(lambda: table.load(fingerprint))
    if stored is None:
        raise CommandError(f"no alarm {fingerprint} in the alarm table (or none within the last 30 days)")
    state = stored.state
    closed = _read(lambda: table.closed(fingerprint))
    digests = _read(lambda: table.digests(fingerprint))
    rows = _read(lambda: table.rows(fingerprint, 0, state.folded_through))
    known = {c.incident for c in closed} | ({state.incident.id} if state.incident else set())
    if incident is not None and incident not in known:
        raise CommandError(
            f"no incident {incident} of alarm {fingerprint}: relayctl alarms show {fingerprint}"
        )
    events = _events(state, closed, digests, rows, incident)
    events.sort(key=lambda e: (e.at, e.order))
    header = _summary_of(state)
    lines = [
        f"alarm     {fingerprint}" + (f"  incident {incident}" if incident else ""),
        f"subject   {header['subject']}",
        f"from      {header['sender'] or 'unknown'}",
        f"to        {', '.join(header['recipients'])}",
    ]
    if header["muted"]:
        muted = header["muted"]
        lines.append(f"muted     until {_time(muted['until'])} by {muted['by']} (since {_time(muted['at'])})")
    lines.append("")
    lines += [f"{_time(e.at)}  {e.kind:<8} {e.text}" for e in events]
    data = {
        **header,
        "incident": incident,
        "timeline": [{"at": e.at, "event": e.kind, "text": e.text, **e.data} for e in events],
    }
    return Report(data, lines)


def _events(
    state: State, closed: list[Closed], digests: list[Digest], rows: list[Row], incident: str | None
) -> list[_Event]:
    def wanted(name: str | None) -> bool:
        return incident is None or name == incident

    events: list[_Event] = []
    if state.incident is not None and wanted(state.incident.id):
        opened = state.incident
        events.append(
            _Event(opened.opened_at, 0, "opened", f"{opened.id}: {opened.subject}", {"incident": opened.id})
        )
    for done in closed:
        if wanted(done.incident):
            events.append(_Event(done.opened_at, 0, "opened", done.incident, {"incident": done.incident}))
            how = {"recovery": "recovered", "quiet": "closed, quiet", "stable": "stable again"}[str(done.how)]
            lasted = _duration(done.closed_at - done.opened_at)
            text = f"{how} after {lasted}; {_count(done.folded, 'repeat')} folded"
            events.append(_Event(done.closed_at, 3, "closed", text, _closed(done)))
    for row in rows:
        if wanted(row.incident):
            files = f" ({_count(len(row.attachments), 'attachment')})" if row.attachments else ""
            data = {"seq": row.seq, "incident": row.incident, "subject": row.subject}
            events.append(_Event(row.received_at, 1, "folded", f"#{row.seq} {row.subject}{files}", data))
    queued = {d.id for d in state.outbox}
    for digest in digests:
        if wanted(digest.incident):
            events.append(_digest_event(digest, digest.id in queued))
    if incident is None:
        events += [_logged_event(change) for change in state.mute_log]
    if incident is None and state.mute is not None and not state.mute_log:  # written before the log
        mute = state.mute
        events.append(
            _Event(mute.at, 2, "muted", f"by {mute.by} until {_time(mute.until)}", _mute(state) or {})
        )
    return events


def _logged_event(change: MuteChange) -> _Event:
    """An entry of the alarm's mute log: who, until when, from where."""
    text = f"by {change.by}" + (f" until {_time(change.until)}" if change.until else "")
    text += f" ({change.source})" if change.source else ""
    return _Event(change.at, 2, f"{change.action}d", text, _audit(change))


def _digest_event(digest: Digest, queued: bool) -> _Event:
    state = "queued" if queued else "sent"
    data: dict[str, Any] = {
        "kind": str(digest.kind),
        "incident": digest.incident,
        "count": digest.count,
        "rows": [digest.after + 1, digest.through],
        "state": state,
    }
    if digest.kind is DigestKind.MUTE_END and digest.mute is not None:
        ended = digest.mute
        by = f"unmuted by {ended.ended_by}" if ended.ended_by else f"ran out at {_time(ended.until)}"
        text = (
            f"mute end ({state}): muted by {ended.by} at {_time(ended.at)}, {ended.folded} mails folded; {by}"
        )
        data["mute"] = {"by": ended.by, "at": ended.at, "until": ended.until, "ended_by": ended.ended_by}
        return _Event(digest.created_at, 2, "digest", text, data)
    span = f"#{digest.after + 1}-#{digest.through}" if digest.count else "no rows"
    text = f"{digest.kind} digest ({state}): {digest.count} listed, {span}"
    return _Event(digest.created_at, 2, "digest", text, data)


def _summary_of(state: State) -> dict[str, Any]:
    incident = state.incident
    return {
        "fingerprint": state.fingerprint,
        "subject": incident.subject if incident else state.subject,
        "sender": state.sender,
        "recipients": list(state.recipients),
        "open_incident": incident.id if incident else None,
        "flapping": bool(incident and incident.flapping),
        "muted": _mute(state),
    }


# ---------------------------------------------------------------- mute, unmute
def _change(args: argparse.Namespace, aws: Aws, fingerprint: str) -> Report:
    resources = Resources.from_args(args, aws)
    table = _table(args, aws, resources)
    stored = _read(lambda: table.load(fingerprint))
    if stored is None:
        raise CommandError(f"no alarm {fingerprint} in the alarm table (or none within the last 30 days)")
    policy = _policy(resources)
    if args.verb == "unmute" and stored.state.mute is None:
        return Report({"fingerprint": fingerprint, "changed": False}, [f"alarm {fingerprint} is not muted"])
    caller = _caller(aws)
    by = args.by or _operator(caller)
    source = f"relayctl as {caller}" if caller else f"relayctl as local user {_local_user()}"
    if args.verb == "mute":
        until = _now().replace(microsecond=0) + args.duration
        changed = _read(lambda: muting.mute(table, fingerprint, until, by, policy, _now, source))
    else:
        changed = _read(lambda: muting.unmute(table, fingerprint, by, policy, _now, source))
    audit = {"fingerprint": fingerprint, **_audit(changed.record)} if changed.record else {}
    message = "alarm muted" if args.verb == "mute" else "alarm unmuted"
    print(json.dumps({"message": message, **audit}, default=str), file=sys.stderr)
    data: dict[str, Any] = {
        "fingerprint": fingerprint,
        "changed": True,
        "by": by,
        "muted": _mute(changed.state),
        "audit": audit,
    }
    lines = []
    if changed.state.mute is not None:
        lines.append(f"alarm {fingerprint} muted until {_time(changed.state.mute.until)} (by {by})")
    else:
        lines.append(f"alarm {fingerprint} unmuted (by {by})")
    data["digests_waiting"] = len(changed.send)
    if changed.send:
        data["tick_queued"] = _tick(aws, resources, fingerprint, changed.at)
        when = (
            "the relay sends it now"
            if data["tick_queued"]
            else "no inbound queue known (--queue-url or --stack): the alarm clock sends it within minutes"
        )
        lines.append(f"{_count(len(changed.send), 'digest')} waiting to be sent: {when}")
    return Report(data, lines)


def _tick(aws: Aws, resources: Resources, fingerprint: str, now: datetime) -> bool:
    """Ask the relay to look at the alarm now: its outbox goes out with the tick."""
    url = resources.get("queue_url")
    if not url:
        return False
    body = records.tick_body(fingerprint, int(now.timestamp()))
    try:
        aws.client("sqs").send_message(QueueUrl=url, MessageBody=body)
    except ClientError as e:
        raise CommandError(
            f"the change is saved, but asking the relay to send its digest failed ({describe(e)});"
            " the alarm clock sends it within minutes"
        ) from e
    return True


def _policy(resources: Resources) -> Policy:
    if not resources.stack:
        return Policy()
    given = {
        p["ParameterKey"]: p.get("ParameterValue", "")
        for p in resources.describe_stack().get("Parameters", [])
    }
    values: dict[str, Any] = {}
    for field, parameter in _POLICY_PARAMETERS.items():
        value = given.get(parameter, "")
        if value.isdigit():
            values[field] = int(value) if field == "flap_transitions" else timedelta(minutes=int(value))
    return Policy(**values)


def _caller(aws: Aws) -> str | None:
    """The caller's ARN (STS GetCallerIdentity needs no permission), None when STS cannot say."""
    try:
        return str(aws.client("sts").get_caller_identity()["Arn"])
    except ClientError:
        return None


def _operator(arn: str | None) -> str:
    """`operator <name>`: the last part of the caller's ARN (a user's name, a role session's name)."""
    if arn is None:
        return "the operator"
    return f"operator {arn.rsplit('/', 1)[-1] or arn}"


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor the password database
        return "unknown"


# ---------------------------------------------------------------- shared
def _table(args: argparse.Namespace, aws: Aws, resources: Resources | None = None) -> Incidents:
    found = resources or Resources.from_args(args, aws)
    return Incidents(found.require("incidents_table"), aws.client("dynamodb"))


def _identify(text: str) -> tuple[str, str | None]:
    """(fingerprint, incident id or None) of an ID."""
    text = text.strip().lower()
    if _FINGERPRINT.fullmatch(text):
        return text, None
    found = _INCIDENT.fullmatch(text)
    if found is None:
        raise CommandError(f"{text!r} is neither an incident id (<fingerprint>-<time>) nor a fingerprint")
    return found["fingerprint"], text


def _read[T](read: Callable[[], T]) -> T:
    try:
        return read()
    except Unavailable as e:
        cause = e.__cause__
        raise CommandError(describe(cause) if isinstance(cause, ClientError) else str(e)) from e


def _mute(state: State) -> dict[str, Any] | None:
    mute = state.mute
    if mute is None:
        return None
    return {
        "by": mute.by,
        "at": mute.at,
        "until": mute.until,
        "last_by": mute.last_by,
        "last_at": mute.last_at,
    }


def _audit(change: MuteChange) -> dict[str, Any]:
    """A mute log entry as `show` and the audit line give it (the page nonce's digest stays out)."""
    return {
        "action": change.action,
        "by": change.by,
        "at": change.at,
        "until": change.until,
        "source": change.source,
    }


def _closed(done: Closed) -> dict[str, Any]:
    return {
        "incident": done.incident,
        "opened_at": done.opened_at,
        "closed_at": done.closed_at,
        "how": str(done.how),
        "folded": done.folded,
        "flapping": done.flapping,
    }


def _count(count: int, thing: str) -> str:
    return f"{count} {thing}" + ("" if count == 1 else "s")


def _duration(length: timedelta) -> str:
    minutes = int(length.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _now() -> datetime:
    return datetime.now(UTC)


COMMAND = Command(
    "alarms",
    "Alarm folding: list the alarms (open, flapping, muted), show ID (an incident's or an alarm's"
    " timeline), mute ID --for 2h, unmute ID (the folded mails go out in a digest).",
    run,
    ("incidents_table", "queue_url"),
    add_arguments,
)
