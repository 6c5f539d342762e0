"""The distributed mail: the sender's text and HTML with the recipient code removed and the attachments
replaced by a list of download links; From the relay's verified identity, Reply-To the original sender.

Built with the standard library's EmailMessage under the SMTP policy, which keeps the result 7-bit clean
(quoted-printable bodies, encoded-word headers) and refuses line breaks in header values.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address, Group
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from flanker.addresslib import address

from app.mail.header_text import one_line
from app.mail.parse import Mail
from app.mail.recipients import remove_codes
from app.sizes import human_size

RELAY_NAME = "IoT Mail Relay"
_ADDRESS_LIKE = re.compile(r"[@<>]")
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)


@dataclass(frozen=True)
class Link:
    filename: str
    size: int
    content_type: str
    content_id: str | None
    url: str


@dataclass(frozen=True)
class Note:
    """A short block the relay adds to a mail it distributes (an alarm's recovery line, mute links)."""

    text: str
    html: str  # markup, its text already escaped


def build(
    mail: Mail,
    links: list[Link],
    expires_at: datetime,
    sender_email: str,
    now: datetime,
    notes: Sequence[Note] = (),
) -> bytes:
    """Serialise the mail to distribute; recipients travel in the SES call, never in these headers.
    `notes` go after the sender's text, before the attachments."""
    message = new_message(_display_name(mail), sender_email, mail.sender, mail.subject, now)
    if mail.message_id:
        message["X-Original-Message-ID"] = mail.message_id

    plain = [remove_codes(body.text) for body in mail.bodies if body.subtype == "plain"]
    markup = [remove_codes(body.text) for body in mail.bodies if body.subtype == "html"]
    if plain or not markup:
        message.set_content(
            _plain(plain, links, expires_at, notes), subtype="plain", charset="utf-8", cte="quoted-printable"
        )
        if markup:
            message.add_alternative(
                _html(markup, links, expires_at, notes),
                subtype="html",
                charset="utf-8",
                cte="quoted-printable",
            )
    else:
        message.set_content(
            _html(markup, links, expires_at, notes), subtype="html", charset="utf-8", cte="quoted-printable"
        )
    return message.as_bytes(policy=SMTP)


def new_message(
    display_name: str, sender_email: str, reply_to: str | None, subject: str, now: datetime
) -> EmailMessage:
    """A message with the headers every mail the relay sends carries: From its verified identity under
    `display_name`, To no one in particular, Reply-To `reply_to` when it is an address, the subject on
    one line, Date and Message-ID."""
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(display_name=display_name, addr_spec=sender_email)
    message["To"] = Group("undisclosed-recipients")
    reply_address = _reply_to(reply_to)
    if reply_address:
        message["Reply-To"] = reply_address
    message["Subject"] = one_line(subject)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender_email.rpartition("@")[2])
    return message


def expiry_text(expires_at: datetime) -> str:
    return expires_at.strftime("%Y-%m-%d %H:%M UTC")


def _plain(texts: list[str], links: list[Link], expires_at: datetime, notes: Sequence[Note] = ()) -> str:
    text = "\n\n".join(part.rstrip() for part in texts).replace("\r\n", "\n")
    text = "\n\n".join([text, *(note.text.rstrip() for note in notes)]) if notes else text
    if not links:
        return text + "\n"
    lines = [f"Attachments (download links expire {expiry_text(expires_at)}):"]
    lines += [f"- {link.filename} ({human_size(link.size)}): {link.url}" for link in links]
    return text + "\n\n-- \n" + "\n".join(lines) + "\n"


def _html(documents: list[str], links: list[Link], expires_at: datetime, notes: Sequence[Note] = ()) -> str:
    document = "\n".join(documents)
    for link in links:
        if link.content_id:  # inline images now live behind their link
            document = document.replace(f"cid:{link.content_id}", html.escape(link.url, quote=True))
    if not links and not notes:
        return document
    section = "".join(f"<div>{note.html}</div>" for note in notes)
    if links:
        items = "".join(
            f'<li><a href="{html.escape(link.url, quote=True)}">{html.escape(link.filename)}</a>'
            f" ({html.escape(human_size(link.size))})</li>"
            for link in links
        )
        section += (
            f"<hr><p>Attachments (download links expire {html.escape(expiry_text(expires_at))}):</p>"
            f"<ul>{items}</ul>"
        )
    closing = list(_BODY_CLOSE.finditer(document))
    if closing:
        position = closing[-1].start()
        return document[:position] + section + document[position:]
    return document + section


def _display_name(mail: Mail) -> str:
    """The sender's display name, unless it looks like an address (`"boss@bank.example" <x@evil>`
    would show as boss@bank.example): then, and without a name, the sender's real address."""
    if not mail.sender:
        return RELAY_NAME
    parsed = address.parse(mail.from_header)
    name = one_line(str(getattr(parsed, "display_name", "") or ""))
    if not name or _ADDRESS_LIKE.search(name):
        name = mail.sender
    return f"{name} via {RELAY_NAME}"


def _reply_to(sender: str | None) -> Address | None:
    if not sender:
        return None
    try:
        return Address(addr_spec=sender)
    except (ValueError, IndexError):
        return None
