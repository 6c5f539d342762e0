"""The distributed mail: the sender's text and HTML with the recipient code removed and the attachments
replaced by a list of download links; From the relay's verified identity, Reply-To the original sender.

Image attachments with a preview (`app.previews`) show it in the HTML, in the link list beside their
link, as an inline part (`multipart/related`, `<img src="cid:...">` wrapped in the full-size link):
never a `data:` URI (Gmail and Outlook strip them) nor a remote image (clients block them, and an image
proxy would keep a copy no revocation reaches). The text part is the same with or without previews; a
mail without HTML gets one only to show a preview. Gmail clips an HTML part after about 102 KB of
markup, so when the document would pass HTML_LIMIT the links and previews go first, where they survive.

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
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from flanker.addresslib import address

from app.mail.header_text import one_line
from app.mail.parse import Mail
from app.mail.recipients import remove_codes
from app.previews import Preview
from app.sizes import human_size

RELAY_NAME = "IoT Mail Relay"
HTML_LIMIT = 100_000  # bytes of HTML markup; Gmail clips the rest of a part from about 102 KB
_ADDRESS_LIKE = re.compile(r"[@<>]")
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_ID_END = r"(?![^\s\"'<>()])"  # a Content-ID in markup ends at a quote, space, bracket or the end
# A tag's attributes: a quoted value may hold a '>'. No '<' inside, so that matching stays linear on
# hostile markup (an unclosed tag or quote ends its attempt at the next '<'); a tag that has one is left
# to the blanking of `_sender_reference`, which is the safe side.
_ATTRIBUTES = r"""(?:[^<>"']|"[^<"]*"|'[^<']*')*"""
_IMG = re.compile(rf"<img\b{_ATTRIBUTES}>", re.IGNORECASE)
_LINK_TAG = re.compile(rf"<(?:a|area)\b{_ATTRIBUTES}>", re.IGNORECASE)  # the tags whose href is clicked


@dataclass(frozen=True)
class Link:
    filename: str
    size: int
    content_type: str
    content_id: str | None
    url: str
    preview: Preview | None = None


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
    domain = sender_email.rpartition("@")[2]
    message = new_message(_display_name(mail), sender_email, mail.sender, mail.subject, now)
    if mail.message_id:
        message["X-Original-Message-ID"] = mail.message_id

    plain = [remove_codes(body.text) for body in mail.bodies if body.subtype == "plain"]
    markup = [remove_codes(body.text) for body in mail.bodies if body.subtype == "html"]
    # Content-IDs of the previews, beside their links: `cid:` plus the ID without its angle brackets.
    cids = [make_msgid(f"preview{n}", domain)[1:-1] if link.preview else None for n, link in enumerate(links)]
    inline = any(cids)
    if plain or not markup:
        message.set_content(
            _plain(plain, links, expires_at, notes), subtype="plain", charset="utf-8", cte="quoted-printable"
        )
        if markup or inline:
            documents = markup or [_from_text(plain)]
            message.add_alternative(
                _html(documents, links, expires_at, cids, notes),
                subtype="html",
                charset="utf-8",
                cte="quoted-printable",
            )
    else:
        message.set_content(
            _html(markup, links, expires_at, cids, notes),
            subtype="html",
            charset="utf-8",
            cte="quoted-printable",
        )
    html_part = message.get_body(("html",))
    if inline and html_part is not None:
        _attach_previews(html_part, links, cids)
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


def _html(
    documents: list[str],
    links: list[Link],
    expires_at: datetime,
    cids: list[str | None],
    notes: Sequence[Note] = (),
) -> str:
    document = "\n".join(documents)
    for link, cid in zip(links, cids, strict=True):
        if link.content_id:
            document = _sender_reference(document, link, cid)
    if not links and not notes:
        return document
    section = "".join(f"<div>{note.html}</div>" for note in notes)
    if links:
        items = "".join(_item(link, cid) for link, cid in zip(links, cids, strict=True))
        section += (
            f"<hr><p>Attachments (download links expire {html.escape(expiry_text(expires_at))}):</p>"
            f"<ul>{items}</ul>"
        )
    if len(document.encode()) + len(section.encode()) > HTML_LIMIT:  # first, before Gmail's clip
        opening = _BODY_OPEN.search(document)
        position = opening.end() if opening else 0
        return document[:position] + section + "<hr>" + document[position:]
    closing = list(_BODY_CLOSE.finditer(document))
    if closing:
        position = closing[-1].start()
        return document[:position] + section + document[position:]
    return document + section


def _sender_reference(document: str, link: Link, cid: str | None) -> str:
    """The sender's own `cid:` references to an attachment: its preview's when it has one. Without
    one, the file's link goes only where a recipient has to click it, an `href`: an `<img>` showing the
    file becomes a link to it, and every other reference (`src`, `srcset`, `background`, CSS `url()`,
    a `<link href>`) is left empty, as a mail client would fetch it by itself, and its image proxy keep
    a copy of the full-size file that no revocation reaches."""
    # The scheme in any case; the ID as written, whole (cid:pic1 is not a part of cid:pic10).
    reference = re.compile("(?i:cid:)" + re.escape(str(link.content_id)) + _ID_END)
    if cid:
        return reference.sub(lambda _: f"cid:{cid}", document)
    url = html.escape(link.url, quote=True)
    anchor = f'<a href="{url}">{html.escape(link.filename)}</a>'
    document = _IMG.sub(lambda tag: anchor if reference.search(tag[0]) else tag[0], document)
    clicked = re.compile(r"(?i:(\bhref\s*=\s*[\"']?\s*))" + reference.pattern)
    document = _LINK_TAG.sub(lambda tag: clicked.sub(lambda href: href[1] + url, tag[0]), document)
    return reference.sub("", document)


def _item(link: Link, cid: str | None) -> str:
    """One attachment: its link, size and, when it has one, its preview wrapped in the same link."""
    url = html.escape(link.url, quote=True)
    picture = ""
    if link.preview is not None and cid is not None:
        picture = (
            f'<a href="{url}"><img src="cid:{html.escape(cid, quote=True)}"'
            f' alt="{html.escape(link.filename, quote=True)}" width="{link.preview.width}"'
            f' height="{link.preview.height}" style="display:block;max-width:100%;height:auto;border:0">'
            "</a>"
        )
    size = html.escape(human_size(link.size))
    return f'<li>{picture}<a href="{url}">{html.escape(link.filename)}</a> ({size})</li>'


def _from_text(texts: list[str]) -> str:
    """An HTML document of a text-only mail, made only to show previews: the text escaped, as it reads."""
    text = "\n\n".join(part.rstrip() for part in texts).replace("\r\n", "\n")
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        f'<pre style="white-space:pre-wrap;word-wrap:break-word">{html.escape(text)}</pre></body></html>'
    )


def _attach_previews(html_part: MIMEPart, links: list[Link], cids: list[str | None]) -> None:
    """The previews as inline parts beside the HTML, in a multipart/related (RFC 2387, type text/html)."""
    for link, cid in zip(links, cids, strict=True):
        if link.preview is not None and cid:
            html_part.add_related(link.preview.jpeg, "image", "jpeg", cid=f"<{cid}>")
    html_part.set_param("type", "text/html")


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
