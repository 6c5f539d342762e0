"""What the web view shows, read from where the sandbox already keeps it: the incoming bucket (through
boto3 against moto's endpoint), `outbox/index.jsonl` and the `.eml` files, `notices/*.json`, the inbound
queue and the DLQ (moto's backend in this process, as `sandbox.status` reads it: receiving through the
API would change the messages' visibility and receive counts), the X-Ray segments and the log lines."""

from __future__ import annotations

import datetime
import email.policy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from app.mail import ses_block
from sandbox.journal import Journal
from sandbox.status import Status
from sandbox.xray import Daemon

HEADER_BYTES = 64 * 1024  # enough for any header block the list shows


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
    _summaries: dict[tuple[str, str], tuple[str, str, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class Outcome:
    kind: str  # distributed, notice, waiting, retrying, dlq, accepted
    label: str
    detail: str = ""


@dataclass(frozen=True)
class MailRow:
    key: str
    sender: str
    subject: str
    message_id: str
    size: int
    time: datetime.datetime
    outcome: Outcome


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
    size: int


@dataclass(frozen=True)
class Relayed:
    file: str
    destinations: list[str]
    links: list[str]
    subject: str
    text: str
    html: str


@dataclass
class Known:
    """Everything that says what became of mails, read once per page."""

    notices: dict[str, dict[str, Any]]  # incoming key -> notice record
    sent: dict[str, list[dict[str, Any]]]  # original Message-ID -> outbox index entries
    dead: dict[str, int]  # incoming key -> receive count, in the DLQ
    queued: dict[str, int]  # incoming key -> receive count, on the inbound queue
    endpoint: str = ""  # attachment links point here; other URLs in a mail are the sender's


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


def outbox_index(data_dir: Path) -> list[dict[str, Any]]:
    index = data_dir / "outbox" / "index.jsonl"
    if not index.exists():
        return []
    return [json.loads(line) for line in index.read_text("utf-8").splitlines() if line.strip()]


def notice_records(data_dir: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted((data_dir / "notices").glob("*.json")):
        try:
            found.append(json.loads(path.read_text("utf-8")))
        except (OSError, ValueError):
            continue
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


def known(sources: Sources) -> Known:
    notices = {}
    for record in notice_records(sources.data_dir):
        key = record.get("notice", {}).get("key")
        if isinstance(key, str):
            notices[key] = record
    sent: dict[str, list[dict[str, Any]]] = {}
    for entry in outbox_index(sources.data_dir):
        sent.setdefault(str(entry.get("original_message_id", "")).strip(), []).append(entry)
    return Known(
        notices=notices,
        sent=sent,
        dead=queued_keys(sources.account_id, sources.region, sources.dead_letter_queue),
        queued=queued_keys(sources.account_id, sources.region, sources.inbound_queue),
        endpoint=sources.endpoint.rstrip("/") + "/",
    )


def outcome_of(key: str, message_id: str, facts: Known) -> Outcome:
    if key in facts.notices:
        notice = facts.notices[key].get("notice", {})
        return Outcome("notice", f"notice: {notice.get('reason', '?')}", str(notice.get("detail", "")))
    entries = facts.sent.get(message_id.strip(), []) if message_id.strip() else []
    if entries:
        to = sum(len(e.get("destinations", [])) for e in entries)
        links = len({link for e in entries for link in e.get("links", []) if link.startswith(facts.endpoint)})
        return Outcome(
            "distributed",
            f"distributed to {to}, {links} link{'s' if links != 1 else ''}",
            ", ".join(d for e in entries for d in e.get("destinations", [])),
        )
    if key in facts.dead:
        return Outcome("dlq", "in the DLQ", f"received {facts.dead[key]} times")
    if key in facts.queued:
        count = facts.queued[key]
        if count == 0:
            return Outcome("waiting", "waiting", "on the inbound queue, not received yet")
        return Outcome("retrying", f"retrying (received {count} times)", "on the inbound queue")
    return Outcome("accepted", "being processed", "")


def summary(sources: Sources, key: str, etag: str) -> tuple[str, str, str]:
    """(sender, subject, Message-ID) from the stored mail's headers; cached by key and ETag."""
    with sources._lock:
        cached = sources._summaries.get((key, etag))
    if cached is not None:
        return cached
    head = sources.s3.get_object(Bucket=sources.bucket, Key=key, Range=f"bytes=0-{HEADER_BYTES - 1}")["Body"]
    message = parse(head.read(), headers_only=True)
    found = (_text(message, "From"), _text(message, "Subject"), _text(message, "Message-ID"))
    with sources._lock:
        sources._summaries[(key, etag)] = found
    return found


def mails(sources: Sources) -> list[MailRow]:
    """Every mail the SMTP door stored, newest first."""
    facts = known(sources)
    rows = []
    paginator = sources.s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=sources.bucket, Prefix=sources.prefix):
        for item in page.get("Contents", []):
            key = str(item["Key"])
            sender, subject, message_id = summary(sources, key, str(item.get("ETag", "")))
            rows.append(
                MailRow(
                    key=key,
                    sender=sender,
                    subject=subject,
                    message_id=message_id,
                    size=int(item["Size"]),
                    time=item["LastModified"],
                    outcome=outcome_of(key, message_id, facts),
                )
            )
    return sorted(rows, key=lambda r: (r.time, r.key), reverse=True)


def headers(message: EmailMessage) -> list[Header]:
    """The headers in order; the block SES prepended is marked, as the function reads it."""
    items = [(name, str(value)) for name, value in message.raw_items()]
    block = len(ses_block.ses_block(items))
    return [Header(name, " ".join(value.split()), n < block) for n, (name, value) in enumerate(items)]


def structure(message: EmailMessage, depth: int = 0) -> list[Part]:
    if message.is_multipart():
        parts = [Part(depth, message.get_content_type(), "", "", 0)]
        for child in message.iter_parts():
            parts.extend(structure(child, depth + 1))  # type: ignore[arg-type]  # parts are EmailMessages
        return parts
    payload = message.get_payload(decode=True)
    size = len(payload) if isinstance(payload, bytes) else 0
    return [
        Part(
            depth,
            message.get_content_type(),
            message.get_filename() or "",
            message.get_content_disposition() or "",
            size,
        )
    ]


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return ""
    try:
        return str(part.get_content())
    except (LookupError, ValueError, AttributeError):
        return ""


def relayed(sources: Sources, message_id: str) -> list[Relayed]:
    """The mails SES sent for this Message-ID (one per chunk of recipients), as recipients get them."""
    if not message_id.strip():
        return []
    found = []
    for entry in outbox_index(sources.data_dir):
        if str(entry.get("original_message_id", "")).strip() != message_id.strip():
            continue
        path = sources.data_dir / "outbox" / str(entry["file"])
        try:
            message = parse(path.read_bytes())
        except OSError:
            continue
        found.append(
            Relayed(
                file=str(entry["file"]),
                destinations=list(entry.get("destinations", [])),
                links=list(entry.get("links", [])),
                subject=str(entry.get("subject", "")),
                text=_body(message, "plain"),
                html=_body(message, "html"),
            )
        )
    return found


@dataclass(frozen=True)
class OneMail:
    key: str
    size: int
    time: datetime.datetime
    sender: str
    subject: str
    message_id: str
    headers: list[Header]
    parts: list[Part]
    outcome: Outcome
    relayed: list[Relayed]
    notice: str  # the notice record as JSON, or ""
    log_lines: list[str]


def one_mail(sources: Sources, key: str) -> OneMail | None:
    if not key.startswith(sources.prefix):
        return None
    try:
        obj = sources.s3.get_object(Bucket=sources.bucket, Key=key)
    except sources.s3.exceptions.NoSuchKey:
        return None
    raw = obj["Body"].read()
    message = parse(raw)
    message_id = _text(message, "Message-ID")
    facts = known(sources)
    notice = facts.notices.get(key)
    return OneMail(
        key=key,
        size=len(raw),
        time=obj["LastModified"],
        sender=_text(message, "From"),
        subject=_text(message, "Subject"),
        message_id=message_id,
        headers=headers(message),
        parts=structure(message),
        outcome=outcome_of(key, message_id, facts),
        relayed=relayed(sources, message_id),
        notice=json.dumps(notice, indent=2, ensure_ascii=False) if notice else "",
        log_lines=sources.journal.lines(key) if sources.journal else [],
    )
