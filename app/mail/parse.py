"""Raw mail bytes -> the small model the relay works with: SES's report, sender, text bodies, attachments.

flanker finds the structure and decodes the headers; bodies are decoded from the raw bytes by `decode`.
The raw mail is viewed as Latin-1 so that every byte survives and flanker's offsets are byte offsets
(8-bit header values are repaired to UTF-8 where they are valid UTF-8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flanker import mime
from flanker.addresslib import address
from flanker.mime.message.errors import MimeError

from app.mail import decode, ses_block, skeleton
from app.mail.header_text import one_line
from app.mail.ses_block import SesReport

# Abuse limits: a sensor mail has a handful of parts; these bound the work a hostile one can cause.
MAX_PARTS = 100
MAX_DEPTH = 10
MAX_HEADER_BYTES = 256 * 1024


class MalformedMail(ValueError):
    """The object is not a mail the relay can read."""


class TooManyParts(ValueError):
    """More MIME parts (attachments) than the relay distributes."""


@dataclass(frozen=True)
class Body:
    """A range of the raw mail and the transfer encoding of what it holds."""

    raw: bytes = field(repr=False)
    start: int
    end: int
    encoding: str

    def view(self) -> memoryview:
        return memoryview(self.raw)[self.start : self.end]

    @property
    def encoded_size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class TextBody:
    subtype: str  # "plain" or "html"
    text: str


@dataclass(frozen=True)
class AttachmentPart:
    index: int  # position among the mail's leaf parts: stable for the same mail, so keys are too
    original_name: str  # as the sender named it (decoded), "" when unnamed
    content_type: str
    content_id: str | None
    body: Body


@dataclass(frozen=True)
class Mail:
    message_id: str | None
    # The one From address, lower-cased. None when there is no From, more than one From header, or a
    # From naming more than one address: such a mail has no sender an allow-list could match.
    sender: str | None
    from_header: str  # every From as written (one line each, joined by ", "): for notices
    subject: str
    ses: SesReport  # verdicts and authentication results from SES's own block, never the sender's
    bodies: tuple[TextBody, ...]
    attachments: tuple[AttachmentPart, ...]
    from_count: int = 1  # From headers in the mail
    addressed_to: tuple[str, ...] = ()  # To and Cc addresses as the sender wrote them, lower-cased

    @property
    def spam_verdict(self) -> str | None:
        return self.ses.spam_verdict

    @property
    def virus_verdict(self) -> str | None:
        return self.ses.virus_verdict


def parse(raw: bytes) -> Mail:
    """Parse one raw mail; raises MalformedMail for anything that is not a mail."""
    if not raw or raw.isspace():
        raise MalformedMail("the object is empty")
    if len(raw) > MAX_HEADER_BYTES and not skeleton.HEADER_END.search(raw, 0, MAX_HEADER_BYTES):
        raise MalformedMail(f"the header block is longer than {MAX_HEADER_BYTES} bytes")
    stripped, offsets = skeleton.build(raw)
    try:
        message = mime.from_string(stripped.decode("latin-1"))
        headers = message.headers
        if not any(name.lower() in _MAIL_HEADERS for name, _ in headers.items()):
            raise MalformedMail("no mail headers (From, To, Subject, Date, Message-ID) found")
        _check_depth(message, 0)
        parts = list(message.walk(with_self=True, skip_enclosed=True))
        if len(parts) > MAX_PARTS:
            raise TooManyParts(f"{len(parts)} MIME parts, more than {MAX_PARTS}")
        bodies: list[TextBody] = []
        attachments: list[AttachmentPart] = []
        for index, part in enumerate(parts):
            _classify(raw, offsets, index, part, bodies, attachments)
        froms = [_clean(value) for value in headers.getall("From")]
        return Mail(
            message_id=_header(message, "Message-ID"),
            sender=_sender(froms),
            from_header=", ".join(value for value in froms if value),
            subject=_clean(message.subject or ""),
            ses=ses_block.read((str(name), _repair(str(value))) for name, value in headers.items()),
            bodies=tuple(bodies),
            attachments=tuple(attachments),
            from_count=len(froms),
            addressed_to=_addresses(headers.getall("To") + headers.getall("Cc")),
        )
    except (MalformedMail, TooManyParts):
        raise
    except (MimeError, UnicodeError, ValueError, LookupError, AttributeError, TypeError, IndexError) as e:
        raise MalformedMail(f"unreadable MIME: {type(e).__name__}") from e


_MAIL_HEADERS = {"from", "to", "subject", "date", "message-id", "content-type", "mime-version"}


def _classify(
    raw: bytes,
    offsets: skeleton.OffsetMap,
    index: int,
    part: Any,
    bodies: list[TextBody],
    attachments: list[AttachmentPart],
) -> None:
    ctype = part.content_type
    if ctype.is_multipart():
        return
    name = _repair(str(part.detected_file_name or ""))
    disposition = (part.content_disposition[0] or "").lower()
    body = _body(raw, offsets, part)
    is_text = ctype.main == "text" and ctype.sub in ("plain", "html")
    if is_text and not name and disposition != "attachment":
        text = decode.decode_text(body.view(), body.encoding, ctype.params.get("charset"))
        if text.strip():  # skip the empty part a sloppy closing boundary leaves behind
            bodies.append(TextBody(subtype=ctype.sub, text=text))
        return
    if not ctype.is_message_container() and body.encoded_size == 0 and not name:
        return  # nothing to offer as a download
    attachments.append(
        AttachmentPart(
            index=index,
            original_name=name,
            content_type=f"{ctype.main}/{ctype.sub}",
            content_id=_content_id(part),
            body=body,
        )
    )


def _check_depth(part: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise MalformedMail(f"MIME parts nested deeper than {MAX_DEPTH} levels")
    for child in part.parts if part.content_type.is_multipart() else ():
        _check_depth(child, depth + 1)


def _body(raw: bytes, offsets: skeleton.OffsetMap, part: Any) -> Body:
    """The part's body as a range of the raw mail (flanker's private offsets: see `skeleton`)."""
    container = part._container
    container.headers  # noqa: B018  (loads the headers, which sets where the body starts)
    start = offsets.to_original(container._body_start)
    end = offsets.to_original(container.end + 1)
    end = max(start, min(end, len(raw)))
    encoding = str(part.content_encoding.value or "7bit")
    return Body(raw=raw, start=start, end=end, encoding=encoding)


def _header(message: Any, name: str) -> str | None:
    """The first occurrence, as one clean line (flanker's `get` would return the last)."""
    values = message.headers.getall(name)
    return (_clean(values[0]) or None) if values else None


def _clean(value: Any) -> str:
    return one_line(_repair(str(value)))


def _sender(froms: list[str]) -> str | None:
    """The single address of the single From header, or None (a display name is never the sender:
    `"boss@plant.example.com" <x@evil.example>` is x@evil.example)."""
    if len(froms) != 1:
        return None
    parsed, unparsed = address.parse_list(froms[0], as_tuple=True)
    if unparsed or len(parsed) != 1 or parsed[0].addr_type != "email":
        return None
    return str(parsed[0].address).lower()


def _addresses(values: list[Any]) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        parsed, _ = address.parse_list(_clean(value), as_tuple=True)
        found += [str(item.address).lower() for item in parsed if item.addr_type == "email"]
    return tuple(found)


def _content_id(part: Any) -> str | None:
    value = part.headers.get("Content-ID")
    if not value:
        return None
    return str(value).strip().strip("<>").strip() or None


def _repair(value: str) -> str:
    """Undo the Latin-1 view for 8-bit header values that are really UTF-8."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value
