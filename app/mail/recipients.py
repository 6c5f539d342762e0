"""The recipient code `Email_Rxers_Code:[a@x.com,b@y.org]:Email_Rxers_Code:`: find, split, validate, dedupe.

The code is searched in decoded text (quoted-printable soft breaks are already gone), then in HTML with
tags stripped and entities unescaped. Addresses are validated with flanker; they only ever reach SES as
API parameters, never as header text, so nothing in the code can inject a header.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass

from flanker.addresslib import address

from app.mail.header_text import one_line
from app.mail.parse import TextBody

CODE = re.compile(r"Email_Rxers_Code:\s*\[(?P<entries>[^\[\]]*)\]\s*:\s*Email_Rxers_Code:", re.IGNORECASE)
_SEPARATORS = re.compile(r"[,;]")
_TAG = re.compile(r"<[^>]*>")
_ODD_DISPLAY_NAME = re.compile(r"[@:<>]")
_MAX_ENTRY = 320  # 64 local part + @ + 255 domain


GROUP_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")  # an entry without @ names a recipient group


@dataclass(frozen=True)
class Recipients:
    found: bool  # a code was present
    # Addr-specs (lower-cased) and group names (no @, lower-cased), deduped, in the order given.
    entries: tuple[str, ...]
    invalid: tuple[str, ...]  # entries that are neither, as written (control characters removed)

    @property
    def valid(self) -> tuple[str, ...]:
        """The addresses named directly (groups not expanded)."""
        return tuple(entry for entry in self.entries if "@" in entry)

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(entry for entry in self.entries if "@" not in entry)


def extract(bodies: Iterable[TextBody], drop: str | Iterable[str]) -> Recipients:
    """Read the first recipient code of the mail; `drop` (the relay's own addresses) is silently removed."""
    bodies = list(bodies)
    entries = _find(body.text for body in bodies if body.subtype == "plain")
    if entries is None:
        entries = _find(_html_to_text(body.text) for body in bodies if body.subtype == "html")
    if entries is None:
        return Recipients(found=False, entries=(), invalid=())
    return classify(entries, drop)


def classify(entries: Iterable[str], drop: str | Iterable[str]) -> Recipients:
    """Validate entries: addresses and group names kept in order and deduped, the rest invalid."""
    valid: list[str] = []
    invalid: list[str] = []
    seen = {drop.lower()} if isinstance(drop, str) else {ours.lower() for ours in drop}
    for entry in entries:
        name = entry.strip().lower()
        addr = name if GROUP_NAME.match(name) else validate(entry)
        if addr is None:
            invalid.append(one_line(entry)[:_MAX_ENTRY])
        elif addr not in seen:
            seen.add(addr)
            valid.append(addr)
    return Recipients(found=True, entries=tuple(valid), invalid=tuple(invalid))


def remove_codes(text: str) -> str:
    """The body without its recipient codes (recipients must not learn who else got the mail)."""
    return CODE.sub("", text)


def _find(texts: Iterable[str]) -> list[str] | None:
    for text in texts:
        match = CODE.search(text)
        if match:
            raw_entries = _SEPARATORS.split(match.group("entries"))
            return [" ".join(entry.split()) for entry in raw_entries if entry.strip()]
    return None


def _html_to_text(markup: str) -> str:
    return html.unescape(_TAG.sub("", markup))


def validate(entry: str) -> str | None:
    """The entry's addr-spec (lower-cased, IDN domains as punycode), or None if it is not one address."""
    if len(entry) > _MAX_ENTRY or one_line(entry) != entry:
        return None
    parsed = address.parse(entry)
    if parsed is None or parsed.addr_type != "email":
        return None
    if _ODD_DISPLAY_NAME.search(str(parsed.display_name or "")):
        return None  # "a@b.com Bcc: c@d.com" is one broken entry, not a way to add c@d.com
    try:
        addr = str(parsed.ace_address).lower()  # SES takes ASCII: IDN domains become punycode
    except ValueError:
        return None
    local, _, domain = addr.rpartition("@")
    if not local or "." not in domain.strip(".") or domain.startswith(".") or domain.endswith("."):
        return None
    return addr
