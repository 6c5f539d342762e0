"""The view's JSON: `GET /api/mails[?q=...]` (the list, newest first), `GET /api/mail?key=...` (one
mail), `GET /api/alarms` (the Alarms page) and `GET /api/incident?id=...` (one incident's timeline).
Built from the same objects the pages render, so a script, a test and the browser see one truth. The
page of a mail that is not finished, and the Alarms and incident pages, poll theirs and reload when its
`version` changes."""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any
from urllib.parse import quote

from app.alarms.timeline import Seen
from sandbox.web.alarms import Book, Digest, Incident, Muting, Timeline
from sandbox.web.data import MailRow, OneMail, Relayed

SNIPPET = 200  # characters of body text in the list


def q(text: str) -> str:
    return quote(text, safe="")


def urls(key: str) -> dict[str, str]:
    k = q(key)
    return {
        "page": f"/mail?key={k}",
        "api": f"/api/mail?key={k}",
        "raw": f"/raw?key={k}",
        "eml": f"/raw?key={k}&download=1",
        "html": f"/frame?key={k}",
    }


def relayed_urls(key: str, sent: Relayed) -> dict[str, str]:
    k, f = q(key), q(sent.file)
    return {
        "raw": f"/raw?key={k}&sent={f}",
        "eml": f"/raw?key={k}&sent={f}&download=1",
        "html": f"/frame?key={k}&sent={f}",
    }


def incident_urls(incident_id: str) -> dict[str, str]:
    i = q(incident_id)
    return {"page": f"/incident?id={i}", "api": f"/api/incident?id={i}", "mails": f"/?q={i}"}


def folding(seen: Seen | None) -> dict[str, Any] | None:
    """What alarm folding decided for a mail: first, fold, recovery, plain, flapping; and its incident."""
    if seen is None:
        return None
    return {
        "decision": str(seen.decision),
        "incident": seen.incident,
        "urls": incident_urls(seen.incident) if seen.incident else None,
    }


def row(r: MailRow) -> dict[str, Any]:
    return {
        "key": r.key,
        "received": r.time.isoformat(),
        "from": r.sender,
        "to": r.summary.to,
        "subject": r.subject,
        "message_id": r.message_id,
        "size": r.size,
        "attachments": r.attachments,
        "recipients": r.recipients,
        "links": r.links,
        "state": {"kind": r.state.kind, "label": r.state.label, "detail": r.state.detail},
        "folding": folding(r.folding),
        "snippet": r.summary.text[:SNIPPET],
        "urls": urls(r.key),
    }


def mails(rows: list[MailRow], query: str) -> dict[str, Any]:
    return {"query": query, "total": len(rows), "mails": [row(r) for r in rows]}


def version(m: OneMail) -> str:
    """Changes when the page would: the mail's state, one of its links' states, a notice, a log line or a
    piece of its trace arriving (all cheap to know: the mail's own bytes are parsed once, not per poll)."""
    facts = [
        m.row.state.label,
        m.row.state.detail,
        str(m.row.folding),
        *(f"{link.url} {link.state}" for sent in m.relayed for link in sent.links),
        f"{len(m.relayed)} sent, {len(m.notices)} notices, {len(m.log)} log lines",
        f"{m.trace_documents} trace documents",
    ]
    return hashlib.sha256("\n".join(facts).encode()).hexdigest()[:16]


def mail(m: OneMail) -> dict[str, Any]:
    return {
        **row(m.row),
        "version": version(m),
        "headers": [{"name": h.name, "value": h.value, "ses": h.ses} for h in m.headers],
        "parts": [
            {
                "depth": p.depth,
                "content_type": p.content_type,
                "filename": p.filename,
                "disposition": p.disposition,
                "content_id": p.content_id,
                "size": p.size,
            }
            for p in m.parts
        ],
        "text": m.text,
        "html": m.html,
        "relayed": [
            {
                "number": sent.number,
                "file": sent.file,
                "recipients": sent.destinations,
                "subject": sent.subject,
                "text": sent.text,
                "html": sent.html,
                "links": [
                    {
                        "url": link.url,
                        "name": link.name,
                        "state": link.state,
                        "status": link.status,
                        "expires": link.expires.isoformat() if link.expires else None,
                    }
                    for link in sent.links
                ],
                "urls": relayed_urls(m.row.key, sent),
            }
            for sent in m.relayed
        ],
        "notices": [
            {"file": n.file, "reason": n.reason, "detail": n.detail, "subject": n.subject} for n in m.notices
        ],
        "log": [line.record for line in m.log],
    }


# -- alarms ---------------------------------------------------------------------------------------------
def _t(moment: datetime.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _versioned(document: dict[str, Any]) -> dict[str, Any]:
    """The document with a `version` that changes when any of it does."""
    text = json.dumps(document, sort_keys=True, ensure_ascii=False)
    return {**document, "version": hashlib.sha256(text.encode()).hexdigest()[:16]}


def digest_urls(file: str) -> dict[str, str]:
    f = q(file)
    return {"raw": f"/raw?sent={f}", "eml": f"/raw?sent={f}&download=1", "html": f"/frame?sent={f}"}


def digest(d: Digest) -> dict[str, Any]:
    return {
        "subject": d.subject,
        "sent": _t(d.sent_at),
        "recipients": list(d.recipients),
        "files": list(d.files),
        "urls": digest_urls(d.file),
    }


def incident(i: Incident) -> dict[str, Any]:
    closed = i.closed
    return {
        "id": i.id,
        "fingerprint": i.fingerprint,
        "state": i.state,
        "subject": i.subject,
        "from": i.sender,
        "to": list(i.recipients),
        "opened": _t(i.opened_at),
        "last_mail": _t(i.last_mail_at),
        "folded": i.folded,
        "digests": [digest(d) for d in i.digests],
        "next_digest": _t(i.next_digest_at),
        "closes": _t(i.closes_at),
        "closed": None if closed is None else {"at": _t(closed.closed_at), "how": str(closed.how)},
        "muted_until": _t(i.mute.until) if i.mute else None,
        "urls": incident_urls(i.id),
    }


def muting(m: Muting) -> dict[str, Any]:
    return {
        "fingerprint": m.fingerprint,
        "subject": m.subject,
        "from": m.sender,
        "to": list(m.recipients),
        "by": m.mute.by,
        "since": _t(m.mute.at),
        "until": _t(m.mute.until),
        "last_by": m.mute.last_by,
        "last_at": _t(m.mute.last_at),
        "folded": m.folded,
        "incident": m.incident,
        "over": m.over,
    }


def alarms(book: Book) -> dict[str, Any]:
    return _versioned(
        {
            "folding": book.folding,
            "error": book.error,
            "open": [incident(i) for i in book.open],
            "closed": [incident(i) for i in book.closed],
            "mutes": [muting(m) for m in book.mutes],
            "other_digests": [digest(d) for d in book.others],
        }
    )


def timeline(t: Timeline) -> dict[str, Any]:
    return _versioned(
        {
            **incident(t.incident),
            "events": [
                {
                    "at": _t(e.at),
                    "kind": e.kind,
                    "subject": e.subject,
                    "key": e.key or None,
                    "urls": urls(e.key) if e.key else None,
                    "digest": digest(e.digest) if e.digest else None,
                    "attachments": e.attachments,
                    "detail": e.detail,
                }
                for e in t.events
            ],
        }
    )
