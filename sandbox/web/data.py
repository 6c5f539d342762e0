"""What the web view shows, read from where the sandbox already keeps it: the incoming bucket (through
boto3 against moto's endpoint), `outbox/index.jsonl` and the `.eml` files, `notices/*.json`, the inbound
queue and the DLQ (moto's backend in this process, as `sandbox.status` reads it: receiving through the
API would change the messages' visibility and receive counts), the X-Ray segments and the log lines.

A mail is known by its incoming key, never by the Message-ID its sender wrote (many sensors write none,
and two mails may share one). The function's own records tie the rest to the key: a notice names it,
each chunk the relay sent is noted, with SES's message id, in the mail's send marker
(`markers/<mail digest>/send-N-of-M`), which the outbox index lists beside the sent file, and alarm
folding keeps the decision it made for the mail (first, fold, recovery...) and its incident in the alarm
table under the key (`sandbox.web.alarmtable`): a folded mail sends nothing, and is shown as folded.
"""

from __future__ import annotations

import datetime
import email.policy
import html
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus

from app.alarms.timeline import Decision, Seen
from app.aws.markers import MARKERS_PREFIX
from app.mail import ses_block
from app.mail.attachments import mail_digest
from sandbox.journal import Journal
from sandbox.outbox import Outbox
from sandbox.status import Status
from sandbox.web.alarmtable import AlarmTable
from sandbox.web.linkstate import LinkJudge, LinkState
from sandbox.xray import Daemon

SUMMARY_BYTES = 1024 * 1024  # the list reads this much of each mail once: headers and the body's text
TEXT_LIMIT = 64 * 1024  # characters of body text kept per mail for the search
RAW_PREVIEW = 256 * 1024  # bytes of the raw source shown on the page; the download has it all
PARSED_MAILS = 4  # received mails kept parsed for open pages, which poll their mail every two seconds
PARSED_SENT = 64  # sent mails kept parsed (small: the relay replaces attachments with links)
FINAL = frozenset({"distributed", "notice", "folded"})  # states a mail does not leave again
FOLDED = frozenset({Decision.FOLD, Decision.FLAPPING})  # decisions that send nothing for the mail
_SEND_STEP = re.compile(r"send-(\d+)-of-\d+")
_TAG = re.compile(r"<[^>]*>")


FOLDING = {  # what alarm folding's decision says of a mail, before the incident's id
    Decision.RELAY_FIRST: "first mail of",
    Decision.FOLD: "folded into",
    Decision.FLAPPING: "folded (flapping) into",
    Decision.RELAY_RECOVERY: "recovery of",
    Decision.RELAY_PLAIN: "relayed: a recovery of no open alarm",
}


def fold_words(seen: Seen | None) -> str:
    """The words the search finds a mail's folding by: the decision, its phrase and the incident."""
    if seen is None:
        return ""
    return f"{seen.decision} {FOLDING[seen.decision]} {seen.incident or ''}".strip()


@dataclass
class Sources:
    s3: Any
    sqs: Any
    bucket: str
    prefix: str
    data_dir: Path
    endpoint: str  # where attachment links point (the download server, else the S3 endpoint)
    account_id: str
    region: str
    inbound_queue: str
    inbound_url: str
    dead_letter_queue: str | None
    dead_letter_url: str | None
    status: Callable[[], Status]
    daemon: Daemon | None = None
    journal: Journal | None = None
    outbox: Outbox | None = None  # deletes go through it: it owns outbox/ and notices/
    links: LinkJudge | None = None  # link states; None without a download function
    recipients_document: str = ""  # the key of RECIPIENTS_CONFIG (its 404 is expected)
    alarm_table: AlarmTable = field(default_factory=AlarmTable)  # built from the environment on first use
    _summaries: dict[tuple[str, str], Summary] = field(default_factory=dict)
    _notes: dict[tuple[str, str], str] = field(default_factory=dict)
    _letters: dict[str, Any] = field(default_factory=dict)  # outbox file -> the relay's own mail (alarms)
    _parsed: OrderedDict[tuple[str, str], Parsed] = field(default_factory=OrderedDict)  # by key and ETag
    _sent: OrderedDict[tuple[str, int, int], Sent] = field(default_factory=OrderedDict)  # by file and stat
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cached(self, cache: OrderedDict[Any, Any], key: Any, make: Callable[[], Any], keep: int) -> Any:
        """`cache[key]`, made once by `make` (outside the lock: it may read and parse megabytes); the
        least recently used entries beyond `keep` are dropped."""
        with self._lock:
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
        made = make()
        with self._lock:
            cache[key] = made
            while len(cache) > keep:
                cache.popitem(last=False)
        return made


@dataclass(frozen=True)
class MailState:
    """Where a mail is in the pipeline, as the sandbox sees it."""

    kind: str  # distributed, notice, folded, waiting, processing, retrying, dlq, accepted
    label: str
    detail: str = ""

    @property
    def final(self) -> bool:
        return self.kind in FINAL


@dataclass(frozen=True)
class Summary:
    """What the list needs of a stored mail; read once per key and ETag (stored mail never changes)."""

    sender: str
    to: str
    subject: str
    message_id: str
    text: str
    attachments: int


@dataclass(frozen=True)
class MailRow:
    key: str
    size: int
    time: datetime.datetime
    summary: Summary
    state: MailState
    recipients: list[str]  # who the relay sent it to
    links: int  # the relay's attachment links in what it sent
    folding: Seen | None = None  # what alarm folding decided for it, and its incident

    @property
    def incident(self) -> str | None:
        return self.folding.incident if self.folding is not None else None

    @property
    def sender(self) -> str:
        return self.summary.sender

    @property
    def subject(self) -> str:
        return self.summary.subject

    @property
    def message_id(self) -> str:
        return self.summary.message_id

    @property
    def attachments(self) -> int:
        return self.summary.attachments

    def field(self, name: str) -> str:
        """The text the search looks in (see `sandbox.web.search`)."""
        s = self.summary
        values = {
            "from": s.sender,
            "to": " ".join([s.to, *self.recipients]),
            "subject": s.subject,
            "state": f"{self.state.kind} {self.state.label} {self.state.detail} {fold_words(self.folding)}",
            "body": s.text,
            "message-id": s.message_id,
            "key": self.key,
        }
        return values[name]


@dataclass(frozen=True)
class Header:
    name: str
    value: str
    ses: bool


@dataclass(frozen=True)
class Part:
    depth: int
    content_type: str
    filename: str
    disposition: str
    content_id: str
    size: int


@dataclass(frozen=True)
class Raw:
    """The start of a mail's source, for the page; `size` is the whole mail's."""

    text: str
    size: int

    @property
    def cut(self) -> bool:
        return self.size > RAW_PREVIEW


@dataclass(frozen=True)
class Parsed:
    """What the mail page shows of a stored mail's bytes: parsed once per key and ETag, not at each of the
    page's polls (a 40 MB mail takes about a second of CPU to parse; stored mail never changes)."""

    size: int
    time: datetime.datetime
    summary: Summary
    headers: list[Header]
    parts: list[Part]
    text: str
    html: str
    raw: Raw


@dataclass(frozen=True)
class Sent:
    """What the mail page shows of a sent `.eml`, parsed once per file (the outbox writes each once)."""

    text: str
    html: str
    headers: list[Header]
    raw: Raw


@dataclass(frozen=True)
class Relayed:
    """One mail SES sent for the incoming mail (one per chunk of recipients), as recipients get it."""

    number: int
    file: str
    destinations: list[str]
    subject: str
    text: str
    html: str
    headers: list[Header]
    raw: Raw
    links: list[LinkState]


@dataclass(frozen=True)
class NoticeRecord:
    file: str
    key: str
    reason: str
    detail: str
    subject: str
    document: str  # the whole record, as pretty JSON


@dataclass(frozen=True)
class LogLine:
    record: dict[str, Any]  # the JSON line without its metrics
    metrics: str  # its CloudWatch embedded metrics (`_aws`), as pretty JSON, or ""

    @property
    def level(self) -> str:
        return str(self.record.get("level", ""))

    @property
    def time(self) -> str:
        return str(self.record.get("timestamp", ""))

    @property
    def message(self) -> str:
        return str(self.record.get("message", ""))

    @property
    def document(self) -> str:
        return json.dumps(self.record, indent=2, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class OneMail:
    row: MailRow
    headers: list[Header]
    parts: list[Part]
    text: str
    html: str
    raw: Raw
    relayed: list[Relayed]
    notices: list[NoticeRecord]
    log: list[LogLine]
    trace_documents: int = 0  # the X-Ray documents of the invocations that handled the mail, so far


@dataclass
class Known:
    """Everything that says what became of mails, read once per page."""

    notices: dict[str, list[NoticeRecord]]  # incoming key -> its notices
    sent: dict[str, list[dict[str, Any]]]  # incoming key -> outbox index entries, in send order
    dead: dict[str, int]  # incoming key -> receive count, in the DLQ
    queued: dict[str, int]  # incoming key -> receive count, on the inbound queue
    decisions: dict[str, Seen] = field(default_factory=dict)  # incoming key -> folding's decision


# -- reading mail ----------------------------------------------------------------------------------------
def parse(raw: bytes, headers_only: bool = False) -> EmailMessage:
    message = BytesParser(_class=EmailMessage, policy=email.policy.default).parsebytes(
        raw, headersonly=headers_only
    )
    return message


def _text(message: EmailMessage, name: str) -> str:
    try:
        return str(message.get(name, "") or "")
    except (ValueError, TypeError, IndexError):  # a header the policy cannot parse
        return ""


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return ""
    try:
        return str(part.get_content())
    except (LookupError, ValueError, AttributeError):  # an unknown charset or a broken part
        return ""


def plain_text(message: EmailMessage) -> str:
    """The body's text for the search: the text part, else the HTML part without its tags."""
    text = body(message, "plain")
    if not text:
        text = html.unescape(_TAG.sub(" ", body(message, "html")))
    return " ".join(text.split())[:TEXT_LIMIT]


def headers(message: EmailMessage) -> list[Header]:
    """The headers in order; the block SES prepended is marked, as the function reads it."""
    items = [(name, str(value)) for name, value in message.raw_items()]
    block = len(ses_block.ses_block(items))
    return [Header(name, " ".join(value.split()), n < block) for n, (name, value) in enumerate(items)]


def structure(message: EmailMessage, depth: int = 0) -> list[Part]:
    if message.is_multipart():
        parts = [Part(depth, message.get_content_type(), "", "", "", 0)]
        for child in message.iter_parts():
            parts.extend(structure(child, depth + 1))  # type: ignore[arg-type]  # parts are EmailMessages
        return parts
    payload = message.get_payload(decode=True)
    return [
        Part(
            depth,
            message.get_content_type(),
            message.get_filename() or "",
            message.get_content_disposition() or "",
            _text(message, "Content-ID").strip().strip("<>"),
            len(payload) if isinstance(payload, bytes) else 0,
        )
    ]


def content_id_part(message: EmailMessage, cid: str) -> EmailMessage | None:
    """The part a `cid:` URL names (RFC 2392: the Content-ID without its brackets, URL-encoded)."""
    wanted = unquote(cid)
    for part in message.walk():
        if not part.is_multipart() and _text(part, "Content-ID").strip().strip("<>") == wanted:
            return part
    return None


def raw_preview(raw: bytes) -> Raw:
    return Raw(raw[:RAW_PREVIEW].decode("utf-8", "replace"), len(raw))


def _summary(raw: bytes) -> Summary:
    message = parse(raw)
    return Summary(
        sender=_text(message, "From"),
        to=_text(message, "To"),
        subject=_text(message, "Subject"),
        message_id=_text(message, "Message-ID"),
        text=plain_text(message),
        attachments=sum(1 for _ in message.iter_attachments()),
    )


def summary(sources: Sources, key: str, etag: str) -> Summary:
    """The mail's summary from its first `SUMMARY_BYTES`; cached by key and ETag."""
    with sources._lock:
        cached = sources._summaries.get((key, etag))
    if cached is not None:
        return cached
    head = sources.s3.get_object(Bucket=sources.bucket, Key=key, Range=f"bytes=0-{SUMMARY_BYTES - 1}")
    found = _summary(head["Body"].read())
    with sources._lock:
        sources._summaries[(key, etag)] = found
    return found


# -- what became of each mail ----------------------------------------------------------------------------
def outbox_index(data_dir: Path) -> list[dict[str, Any]]:
    index = data_dir / "outbox" / "index.jsonl"
    if not index.exists():
        return []
    return [json.loads(line) for line in index.read_text("utf-8").splitlines() if line.strip()]


def notice_records(data_dir: Path) -> list[NoticeRecord]:
    found = []
    for path in sorted((data_dir / "notices").glob("*.json")):
        try:
            record = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        notice = record.get("notice", {}) if isinstance(record, dict) else {}
        if not isinstance(notice, dict) or not isinstance(notice.get("key"), str):
            continue
        found.append(
            NoticeRecord(
                file=path.name,
                key=notice["key"],
                reason=str(notice.get("reason", "")),
                detail=str(notice.get("detail", "")),
                subject=str(record.get("subject") or ""),
                document=json.dumps(record, indent=2, ensure_ascii=False),
            )
        )
    return found


def keys_in(body: str) -> list[str]:
    """The object keys an S3 event notification names (URL-encoded, `+` for space)."""
    try:
        records = json.loads(body).get("Records", [])
        return [unquote_plus(str(r["s3"]["object"]["key"])) for r in records]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []


def queued_keys(account_id: str, region: str, name: str | None) -> dict[str, int]:
    """Incoming key -> the message's receive count, for the messages on a queue now."""
    if not name:
        return {}
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[account_id][region].queues.get(name)
    found: dict[str, int] = {}
    for message in list(queue._messages) if queue is not None else []:
        for key in keys_in(str(message.body)):
            found[key] = max(found.get(key, 0), int(message.approximate_receive_count))
    return found


def _objects(sources: Sources, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    for page in sources.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def _marker_note(sources: Sources, key: str, etag: str) -> str:
    """What the relay noted in a marker when its step was done (SES's message id for a send), or ""."""
    with sources._lock:
        cached = sources._notes.get((key, etag))
    if cached is not None:
        return cached
    try:
        document = json.loads(sources.s3.get_object(Bucket=sources.bucket, Key=key)["Body"].read())
    except sources.s3.exceptions.NoSuchKey:
        return ""
    except ValueError:
        document = {}
    note = str(document.get("note", "")) if document.get("state") == "done" else ""
    with sources._lock:
        sources._notes[(key, etag)] = note
    return note


def deliveries(sources: Sources, keys: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Incoming key -> the outbox entries of the mails the relay sent for it, in send order: each send
    marker's note is SES's message id, which the outbox index records for every sent file."""
    by_id = {str(e["ses_message_id"]): e for e in outbox_index(sources.data_dir) if e.get("ses_message_id")}
    if not by_id or not keys:
        return {}
    digests = {mail_digest(key): key for key in keys}
    prefix = MARKERS_PREFIX + (f"{next(iter(digests))}/" if len(digests) == 1 else "")
    found: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for item in _objects(sources, sources.bucket, prefix):
        digest, _, step = str(item["Key"])[len(MARKERS_PREFIX) :].partition("/")
        send = _SEND_STEP.fullmatch(step)
        if send is None or digest not in digests:
            continue
        entry = by_id.get(_marker_note(sources, str(item["Key"]), str(item.get("ETag", ""))))
        if entry is not None:
            found.setdefault(digests[digest], []).append((int(send[1]), entry))
    return {key: [entry for _, entry in sorted(sent, key=lambda s: s[0])] for key, sent in found.items()}


def known(sources: Sources, keys: list[str]) -> Known:
    notices: dict[str, list[NoticeRecord]] = {}
    for record in notice_records(sources.data_dir):
        notices.setdefault(record.key, []).append(record)
    sent = deliveries(sources, keys)
    return Known(
        notices=notices,
        sent=sent,
        dead=queued_keys(sources.account_id, sources.region, sources.dead_letter_queue),
        queued=queued_keys(sources.account_id, sources.region, sources.inbound_queue),
        decisions=sources.alarm_table.decisions(keys, settled=set(sent) | set(notices)),
    )


def _links(entries: list[dict[str, Any]]) -> list[str]:
    """The distinct relay links of what was sent (each chunk carries the same ones)."""
    return list(dict.fromkeys(link for entry in entries for link in entry.get("links", [])))


def state_of(key: str, facts: Known) -> MailState:
    notices = facts.notices.get(key, [])
    reasons = ", ".join(dict.fromkeys(n.reason for n in notices))
    sent = facts.sent.get(key, [])
    if sent:
        to = sum(len(e.get("destinations", [])) for e in sent)
        links = len(_links(sent))
        detail = ", ".join(d for e in sent for d in e.get("destinations", []))
        return MailState(
            "distributed",
            f"distributed to {to}, {links} link{'s' if links != 1 else ''}",
            detail + (f"; notice: {reasons}" if reasons else ""),
        )
    seen = facts.decisions.get(key)
    if seen is not None and seen.decision in FOLDED:
        why = (
            "the alarm is flapping: its mails are listed in digests"
            if seen.decision is Decision.FLAPPING
            else "a repeat of an open alarm: listed in its next digest"
        )
        return MailState("folded", f"folded into {seen.incident}", why)
    if notices:
        return MailState("notice", f"notice: {reasons}", "; ".join(n.detail for n in notices))
    if key in facts.dead:
        return MailState("dlq", "in the DLQ", f"received {facts.dead[key]} times; Status has the redrive")
    if key in facts.queued:
        count = facts.queued[key]
        if count == 0:
            return MailState("waiting", "waiting", "on the inbound queue, not received yet")
        if count == 1:
            return MailState("processing", "being processed", "received once from the inbound queue")
        return MailState("retrying", f"retrying (received {count} times)", "on the inbound queue")
    return MailState("accepted", "being processed", "stored; the function has not finished with it")


def stored_at(account_id: str, region: str, bucket: str, key: str) -> float | None:
    """When moto stored the object, to the microsecond (S3's API says seconds only, too coarse for the
    list's order in a burst); read from moto's backend in this process, as the queues are."""
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    found = s3_backends[account_id][get_partition(region)].buckets.get(bucket)
    stored = found.keys.get(key) if found is not None else None
    if stored is None:
        return None
    return float(stored.last_modified.replace(tzinfo=datetime.UTC).timestamp())


def mails(sources: Sources) -> list[MailRow]:
    """Every mail the SMTP door stored, newest first."""
    items = list(_objects(sources, sources.bucket, sources.prefix))
    keys = [str(item["Key"]) for item in items]
    facts = known(sources, keys)
    order = {
        key: stored_at(sources.account_id, sources.region, sources.bucket, key)
        or item["LastModified"].timestamp()
        for key, item in zip(keys, items, strict=True)
    }
    rows = []
    for item in items:
        key = str(item["Key"])
        sent = facts.sent.get(key, [])
        rows.append(
            MailRow(
                key=key,
                size=int(item["Size"]),
                time=item["LastModified"],
                summary=summary(sources, key, str(item.get("ETag", ""))),
                state=state_of(key, facts),
                recipients=[d for e in sent for d in e.get("destinations", [])],
                links=len(_links(sent)),
                folding=facts.decisions.get(key),
            )
        )
    return sorted(rows, key=lambda r: (order[r.key], r.key), reverse=True)


# -- one mail --------------------------------------------------------------------------------------------
def received(sources: Sources, key: str) -> tuple[bytes, datetime.datetime, str] | None:
    """The stored mail's bytes, time and ETag; None for a key that is not a stored mail."""
    if not key.startswith(sources.prefix) or key == sources.prefix:
        return None
    try:
        obj = sources.s3.get_object(Bucket=sources.bucket, Key=key)
    except sources.s3.exceptions.NoSuchKey:
        return None
    return obj["Body"].read(), obj["LastModified"], str(obj.get("ETag", ""))


def relayed_file(sources: Sources, key: str, file: str) -> bytes | None:
    """The `.eml` of a mail sent for `key`; only a file the relay sent for that mail."""
    files = {str(e["file"]) for e in deliveries(sources, [key]).get(key, [])}
    if file not in files:
        return None
    try:
        return (sources.data_dir / "outbox" / file).read_bytes()
    except OSError:
        return None


def log_line(line: str) -> LogLine:
    try:
        document = json.loads(line)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return LogLine({"message": line}, "")
    metrics = document.pop("_aws", None)
    return LogLine(document, json.dumps(metrics, indent=2) if metrics else "")


def _parse_received(sources: Sources, key: str) -> Parsed | None:
    found = received(sources, key)
    if found is None:
        return None
    raw, time, _ = found
    message = parse(raw)
    return Parsed(
        size=len(raw),
        time=time,
        summary=_summary(raw[:SUMMARY_BYTES]),
        headers=headers(message),
        parts=structure(message),
        text=body(message, "plain"),
        html=body(message, "html"),
        raw=raw_preview(raw),
    )


def parsed(sources: Sources, key: str) -> Parsed | None:
    """The stored mail, parsed; a HEAD for its ETag, then read and parsed only when not cached."""
    if not key.startswith(sources.prefix) or key == sources.prefix:
        return None
    try:
        etag = str(sources.s3.head_object(Bucket=sources.bucket, Key=key).get("ETag", ""))
    except sources.s3.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}:
            return None
        raise
    found: Parsed | None = sources.cached(
        sources._parsed, (key, etag), lambda: _parse_received(sources, key), PARSED_MAILS
    )
    if found is None:  # deleted between the HEAD and the GET: nothing to keep
        with sources._lock:
            sources._parsed.pop((key, etag), None)
    return found


def _parse_sent(path: Path) -> Sent:
    data = path.read_bytes()
    out = parse(data)
    return Sent(body(out, "plain"), body(out, "html"), headers(out), raw_preview(data))


def sent_mail(sources: Sources, file: str) -> Sent | None:
    """A sent `.eml` of the outbox, parsed; None when it is gone."""
    path = sources.data_dir / "outbox" / file
    try:
        stat = path.stat()
    except OSError:
        return None
    try:
        found: Sent = sources.cached(
            sources._sent, (file, stat.st_size, stat.st_mtime_ns), lambda: _parse_sent(path), PARSED_SENT
        )
    except OSError:
        return None
    return found


def trace_documents(sources: Sources, key: str) -> int:
    """How many X-Ray documents the mail's invocations sent so far: a trace arrives in pieces, often after
    the mail was sent, and the open page reloads when it grows."""
    if sources.daemon is None:
        return 0
    return sum(len(trace.documents) for trace in sources.daemon.traces_of(key))


def one_mail(sources: Sources, key: str) -> OneMail | None:
    found = parsed(sources, key)
    if found is None:
        return None
    facts = known(sources, [key])
    sent = facts.sent.get(key, [])
    row = MailRow(
        key=key,
        size=found.size,
        time=found.time,
        summary=found.summary,
        state=state_of(key, facts),
        recipients=[d for e in sent for d in e.get("destinations", [])],
        links=len(_links(sent)),
        folding=facts.decisions.get(key),
    )
    relayed = []
    for number, entry in enumerate(sent, start=1):
        out = sent_mail(sources, str(entry["file"]))
        if out is None:
            continue
        urls = [str(url) for url in entry.get("links", [])]
        relayed.append(
            Relayed(
                number=number,
                file=str(entry["file"]),
                destinations=[str(d) for d in entry.get("destinations", [])],
                subject=str(entry.get("subject", "")),
                text=out.text,
                html=out.html,
                headers=out.headers,
                raw=out.raw,
                links=sources.links.judge_all(urls) if sources.links else [],
            )
        )
    return OneMail(
        row=row,
        headers=found.headers,
        parts=found.parts,
        text=found.text,
        html=found.html,
        raw=found.raw,
        relayed=relayed,
        notices=facts.notices.get(key, []),
        log=[log_line(line) for line in (sources.journal.lines(key) if sources.journal else [])],
        trace_documents=trace_documents(sources, key),
    )


# -- deleting --------------------------------------------------------------------------------------------
def delete(sources: Sources, rows: list[MailRow]) -> list[MailRow]:
    """Delete finished mails (distributed, notified or folded) and what the sandbox kept of them: the stored
    mail, the sent `.eml` files and their index lines, the notices and the log lines. Returns those
    deleted. A mail still in the pipeline is left alone: its queued record would fail on the missing
    object and end in the DLQ. Attachments (and their links), markers, traces and the alarm table's rows
    (which a digest lists) stay, as in AWS."""
    done = [row for row in rows if row.state.final]
    if not done:
        return []
    keys = [row.key for row in done]
    sent = deliveries(sources, keys)
    files = {str(e["file"]) for key in keys for e in sent.get(key, [])}
    notices = {n.file for n in notice_records(sources.data_dir) if n.key in set(keys)}
    for key in keys:
        sources.s3.delete_object(Bucket=sources.bucket, Key=key)
    if sources.outbox is not None:
        sources.outbox.forget(files, notices)
    if sources.journal is not None:
        sources.journal.forget(set(keys))
    sources.alarm_table.forget(set(keys))
    with sources._lock:
        for cached in [c for c in sources._summaries if c[0] in set(keys)]:
            del sources._summaries[cached]
        for gone in [c for c in sources._parsed if c[0] in set(keys)]:
            del sources._parsed[gone]
    return done
