"""The mails the relay writes about an alarm: the digest of folded repeats (and its variants: the last
one of an incident, the flapping notice, the all-clear after flapping, the end of a mute), and the notes
it adds to relayed mails (the recovery line, the mute links).

Why the relay writes mail of its own: folding only works if nothing folded is lost, so every folded mail
is listed, with its time, subject and attachment links, in exactly one of these; the count a digest
states is the timeline's (`Digest.count`, from row numbers), never the length of the list it was given.
At most MAX_ROWS rows are listed; the rest are named by count with the command that shows them all.

Pure: the facts of a `timeline.Digest` and the rows it lists in, bytes out. The caller reads the rows
and signs their links (and the mute links) before; this module never signs. The message is built like
the distributed mail (app/mail/rewrite.py: the SMTP policy, From the relay's verified identity, To
undisclosed-recipients, Reply-To the alarm's sender, the subject on one line), plus `Auto-Submitted:
auto-generated` (RFC 3834) so that auto-responders leave it alone. Everything a sender wrote is escaped
in the HTML.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.policy import SMTP

from app.alarms.timeline import Closing, Digest, DigestKind, Recovery
from app.mail.header_text import one_line
from app.mail.rewrite import RELAY_NAME, Link, Note, expiry_text, new_message
from app.sizes import human_size

MAX_ROWS = 100
SUBJECT_ALARM_CHARS = 150  # of the alarm's subject in a digest's subject


@dataclass(frozen=True)
class ListedRow:
    """A folded mail as a digest lists it; `links` are already signed by the caller."""

    received_at: datetime
    subject: str
    links: tuple[Link, ...] = ()
    links_expire_at: datetime | None = None


@dataclass(frozen=True)
class MuteLinks:
    """Signed links that mute the alarm for all its recipients (a GET shows a page; only its POST mutes)."""

    one_hour: str
    eight_hours: str
    one_day: str

    def labelled(self) -> tuple[tuple[str, str], ...]:
        return (("1 hour", self.one_hour), ("8 hours", self.eight_hours), ("24 hours", self.one_day))


def build(
    digest: Digest,
    rows: Sequence[ListedRow],
    sender_email: str,
    now: datetime,
    mute_links: MuteLinks | None = None,
) -> bytes:
    """The digest as a mail: `rows` are its first rows in order (more than MAX_ROWS are ignored)."""
    message = new_message(RELAY_NAME, sender_email, digest.sender or None, subject(digest), now)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        text(digest, rows, mute_links), subtype="plain", charset="utf-8", cte="quoted-printable"
    )
    message.add_alternative(
        markup(digest, rows, mute_links), subtype="html", charset="utf-8", cte="quoted-printable"
    )
    return message.as_bytes(policy=SMTP)


def subject(digest: Digest) -> str:
    alarm = _short(digest.subject)
    count = digest.count
    match digest.kind:
        case DigestKind.FLAPPING:
            return one_line(f"Flapping: {alarm}")
        case DigestKind.STABLE:
            return one_line(f"Stable again: {alarm}")
        case DigestKind.MUTE_END:
            folded = digest.mute.folded if digest.mute else count
            return one_line(f"Mute ended, {_mails(folded)} folded: {alarm}")
        case DigestKind.LAST if digest.closing is Closing.QUIET:
            return one_line(f"Closed, {_repeats(count)} in a last digest: {alarm}")
        case DigestKind.LAST:
            return one_line(f"Recovered, {_repeats(count)} in a last digest: {alarm}")
        case _:
            return one_line(f"Digest, {_repeats(count)}: {alarm}")


def text(digest: Digest, rows: Sequence[ListedRow], mute_links: MuteLinks | None = None) -> str:
    lines = [
        *_summary(digest),
        "",
        f"Alarm: {one_line(digest.subject)}",
        f"From: {digest.sender or 'unknown'}",
    ]
    if digest.opened_at is not None:
        lines.append(f"Open since: {_time(digest.opened_at)}")
    listed = rows[:MAX_ROWS]
    if listed:
        lines.append("")
    for number, row in enumerate(listed, start=1):
        lines.append(f"{number}. {_time(row.received_at)}  {one_line(row.subject)}")
        lines += [
            f"   - {one_line(link.filename)} ({human_size(link.size)}): {link.url}" for link in row.links
        ]
        if row.links and row.links_expire_at is not None:
            lines.append(f"   (download links expire {expiry_text(row.links_expire_at)})")
    more = digest.count - len(listed)
    if more > 0:
        lines += ["", f"and {more} more: {show_command(digest)}"]
    if mute_links is not None:
        lines += ["", "-- ", mute_note(mute_links).text]
    return "\n".join(lines) + "\n"


def markup(digest: Digest, rows: Sequence[ListedRow], mute_links: MuteLinks | None = None) -> str:
    e = html.escape
    parts = [f"<p>{e(line)}</p>" for line in _summary(digest)]
    facts = [("Alarm", one_line(digest.subject)), ("From", digest.sender or "unknown")]
    if digest.opened_at is not None:
        facts.append(("Open since", _time(digest.opened_at)))
    parts.append("<p>" + "<br>".join(f"<b>{e(name)}:</b> {e(value)}" for name, value in facts) + "</p>")
    listed = rows[:MAX_ROWS]
    if listed:
        body = "".join(_row_markup(number, row) for number, row in enumerate(listed, start=1))
        parts.append(
            f"<table><tr><th>#</th><th>Received</th><th>Subject</th><th>Attachments</th></tr>{body}</table>"
        )
    more = digest.count - len(listed)
    if more > 0:
        parts.append(f"<p>and {more} more: <code>{e(show_command(digest))}</code></p>")
    if mute_links is not None:
        parts.append(f"<hr>{mute_note(mute_links).html}")
    return "<!DOCTYPE html><html><body>" + "".join(parts) + "</body></html>"


def show_command(digest: Digest) -> str:
    """The operator's command that lists every folded mail of the digest's incident (or alarm)."""
    return f"relayctl alarms show {digest.incident or digest.fingerprint}"


def recovery_note(recovery: Recovery) -> Note:
    """The line added to a relayed recovery: how long the alarm lasted, how many repeats were folded."""
    line = (
        f"{RELAY_NAME}: this alarm lasted {duration_text(recovery.lasted)}"
        f" (since {_time(recovery.opened_at)}); {_repeat_fate(recovery)}."
    )
    return Note(text=line, html=f"<p>{html.escape(line)}</p>")


def mute_note(links: MuteLinks) -> Note:
    """Links that mute the alarm, for a first mail or a digest."""
    lines = [
        "Mute this alarm for all its recipients:",
        *(f"  {label}: {url}" for label, url in links.labelled()),
    ]
    anchors = " · ".join(
        f'<a href="{html.escape(url, quote=True)}">{label}</a>' for label, url in links.labelled()
    )
    return Note(text="\n".join(lines), html=f"<p>Mute this alarm for all its recipients: {anchors}</p>")


def duration_text(length: timedelta) -> str:
    """`45 s`, `13 min`, `2 h 13 min`, `3 d 4 h`: the two largest units, rounded down."""
    seconds = max(0, int(length.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    first = next((i for i, (value, _) in enumerate(parts) if value), len(parts) - 1)
    shown = [f"{value} {unit}" for value, unit in parts[first : first + 2] if value]
    return " ".join(shown) or "0 s"


def _summary(digest: Digest) -> list[str]:
    count, window = digest.count, duration_text(timedelta(seconds=digest.window))
    span = _span(digest)
    match digest.kind:
        case DigestKind.FLAPPING:
            return [
                f"This alarm opened {digest.cycles} times within {window}: it is flapping.",
                f"The mail that showed it is listed below. From now on its mails, recoveries too, are folded"
                f" into a digest every {window}, until it goes {window} without changing between problem"
                " and recovery.",
            ]
        case DigestKind.STABLE:
            return [
                f"This alarm stopped flapping: {window} without a change between problem and recovery.",
                f"{_mails(count).capitalize()} since the last digest{span}.",
                "Its next mail is relayed as a new alarm.",
            ]
        case DigestKind.MUTE_END:
            return _mute_summary(digest)
        case DigestKind.LAST if digest.closing is Closing.QUIET:
            return [
                f"No mail of this alarm for {window}: it is closed. Its next mail is relayed as a new alarm.",
                f"{_repeats(count).capitalize()} folded since the last digest{span}.",
            ]
        case DigestKind.LAST:
            return [
                "This alarm recovered; its recovery mail follows this one.",
                f"{_repeats(count).capitalize()} folded since the last digest{span}.",
            ]
        case _:
            flapping = " (it is flapping)" if digest.flapping else ""
            return [f"{_repeats(count).capitalize()} of this alarm folded{span}{flapping}."]


def _mute_summary(digest: Digest) -> list[str]:
    ended = digest.mute
    if ended is None:
        return [f"{_mails(digest.count).capitalize()} folded."]
    lines = [f"Muted by {ended.by} at {_time(ended.at)}: {_mails(ended.folded)} folded."]
    if ended.last_by != ended.by or ended.last_at != ended.at:
        lines.append(f"Last muted again by {ended.last_by} at {_time(ended.last_at)}.")
    if ended.ended_by is not None:
        lines.append(f"Unmuted by {ended.ended_by} at {_time(digest.created_at)}.")
    else:
        lines.append(f"The mute ended at {_time(ended.until)}.")
    earlier = digest.count - ended.folded
    if earlier > 0:
        lines.append(f"Also listed: {_repeats(earlier)} folded before the mute and not yet in a digest.")
    return lines


def _row_markup(number: int, row: ListedRow) -> str:
    e = html.escape
    links = "".join(
        f'<li><a href="{e(link.url, quote=True)}">{e(one_line(link.filename))}</a>'
        f" ({e(human_size(link.size))})</li>"
        for link in row.links
    )
    cell = f"<ul>{links}</ul>" if links else ""
    if row.links and row.links_expire_at is not None:
        cell += f"<small>links expire {e(expiry_text(row.links_expire_at))}</small>"
    return (
        f"<tr><td>{number}</td><td>{e(_time(row.received_at))}</td>"
        f"<td>{e(one_line(row.subject))}</td><td>{cell}</td></tr>"
    )


def _repeat_fate(recovery: Recovery) -> str:
    if recovery.folded == 0:
        return "no repeats were folded"
    folded = _repeats(recovery.folded) + (" was" if recovery.folded == 1 else " were") + " folded"
    if recovery.held:
        return f"{folded}, {recovery.held} of them listed when the mute ends"
    if recovery.in_last_digest:
        return f"{folded}, the last {recovery.in_last_digest} in a digest sent just before this mail"
    return f"{folded} into earlier digests"


def _span(digest: Digest) -> str:
    if digest.first_at is None or digest.last_at is None:
        return ""
    if digest.first_at == digest.last_at:
        return f" at {_time(digest.first_at)}"
    return f" between {_time(digest.first_at)} and {_time(digest.last_at)}"


def _repeats(count: int) -> str:
    return f"{count} repeat" + ("" if count == 1 else "s")


def _mails(count: int) -> str:
    return f"{count} mail" + ("" if count == 1 else "s")


def _short(alarm: str) -> str:
    alarm = one_line(alarm)
    return alarm if len(alarm) <= SUBJECT_ALARM_CHARS else alarm[: SUBJECT_ALARM_CHARS - 1] + "…"


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
