"""The view's JSON: `GET /api/mails[?q=...]` (the list, newest first) and `GET /api/mail?key=...` (one
mail). Built from the same objects the pages render, so a script, a test and the browser see one truth.
The page of a mail that is not finished polls `/api/mail` and reloads when its `version` changes."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

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
        "snippet": r.summary.text[:SNIPPET],
        "urls": urls(r.key),
    }


def mails(rows: list[MailRow], query: str) -> dict[str, Any]:
    return {"query": query, "total": len(rows), "mails": [row(r) for r in rows]}


def version(m: OneMail) -> str:
    """Changes when the page would: the mail's state or one of its links' states."""
    facts = [m.row.state.label, *(f"{link.url} {link.state}" for sent in m.relayed for link in sent.links)]
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
