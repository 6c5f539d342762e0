"""Signed links: signing by the relay, verification by the function behind the link URL (pure; no AWS).

Two kinds, each with its own canonical string (its first line names the kind), so a signature of one
kind never verifies as the other: a download link can never mute an alarm, and a mute link never
downloads a file.

**Download links.** A link is `<base>/<mail digest>/<part>/<file name>?exp=<unix seconds>&kid=<key
id>&sig=<signature>`. The path is the attachment's object key without its `attachments/` prefix, so a
link names exactly one attachment and can never reach a manifest (`attachments/<digest>/manifest.json`
has no part). `sig` is HMAC-SHA256, base64url without padding, over a canonical string of the object
key, the expiry and the key id; the HTTP method is not part of it, so GET and HEAD of one link agree.

**Mute links.** `<base>/mute/<fingerprint>?for=<seconds>&to=<recipient>&exp=<unix seconds>&kid=<key
id>&sig=<signature>` names an alarm (its fingerprint), how long to mute it (one of MUTE_SECONDS) and the
recipient the mail went to (ANY_RECIPIENT when it went to several: one message reaches them all), signed
like a download link with the same keys, key ids and expiry rules. Opening one only shows a page; the
page's button posts the token back with a nonce (`page_nonce`): an HMAC of the token's signature and the
time the page was shown, valid for PAGE_SECONDS, so a POST that did not come from a page just shown
does nothing.

Keys live in one Secrets Manager secret as JSON. The template creates it with GenerateSecretString as
`{"current_kid": "k0", "current": "<random>"}`; `relayctl rotate-link-key` rewrites it as
`{"current_kid", "current", "previous_kid", "previous"}`. Links signed with the previous key stay
valid after a rotation; a key two rotations old is gone, and so are its links, once each function's
cached copy of the keyring (`KEYRING_CACHE_SECONDS`) has made way for the new one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, unquote, urlencode

from app.mail.attachments import ATTACHMENTS_PREFIX

CANONICAL_VERSION = "iot-mail-relay-link-v1"
KEY_BYTES = 32  # the length of a key relayctl makes; the template's generated key has 64 characters
# How long either function keeps the keyring it read (app/aws/link_keys.py): after a rotation the relay
# may sign with the old current key for this long, so relayctl refuses a second rotation within it.
KEYRING_CACHE_SECONDS = 300
_KID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_DIGEST = re.compile(r"[0-9a-f]{32}")
_PART = re.compile(r"0|[1-9][0-9]{0,5}")
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes of HMAC-SHA256, base64url without padding
# At most ten digits: every such time is a date Python can print (up to the year 2286); the relay signs
# at most ten years ahead, and a longer number is refused here, before anything reads it as a time.
_EXPIRY = re.compile(r"[1-9][0-9]{0,9}")
_FORBIDDEN_IN_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")

MUTE_VERSION = "iot-mail-relay-mute-v1"
PAGE_VERSION = "iot-mail-relay-mute-page-v1"
MUTE_PATH = "/mute/"
MUTE_SECONDS = (3600, 8 * 3600, 24 * 3600)  # the durations a mail offers: 1 hour, 8 hours, 24 hours
ANY_RECIPIENT = "*"  # the mail went to several recipients at once: the link names none of them
PAGE_SECONDS = 900  # how long a mute page's button works after the page was shown
CLOCK_SKEW = 5  # seconds a page may seem to come from the future: another container's clock
_FINGERPRINT = re.compile(r"[0-9a-f]{32}")
_SECONDS = re.compile(r"[1-9][0-9]{0,5}")
# An address as the relay writes it (lower-cased, validated); anything else is named as ANY_RECIPIENT.
_RECIPIENT = re.compile(r"[^\s@\x00-\x1f\x7f<>\"\\]{1,64}@[^\s@\x00-\x1f\x7f<>\"\\/]{1,253}")


class KeyringError(ValueError):
    """The secret does not hold a usable keyring; the message says what is wrong, never the key."""


@dataclass(frozen=True)
class Keyring:
    current_kid: str
    current: bytes
    previous_kid: str | None = None
    previous: bytes | None = None

    def key(self, kid: str) -> bytes | None:
        if kid == self.current_kid:
            return self.current
        if self.previous is not None and kid == self.previous_kid:
            return self.previous
        return None

    def to_json(self) -> str:
        document = {"current_kid": self.current_kid, "current": self.current.decode("utf-8")}
        if self.previous is not None and self.previous_kid is not None:
            document |= {"previous_kid": self.previous_kid, "previous": self.previous.decode("utf-8")}
        return json.dumps(document)


def parse_keyring(secret_string: str) -> Keyring:
    """The keyring in a secret's JSON: the template's first shape or a rotated one."""
    try:
        document = json.loads(secret_string)
    except ValueError:
        raise KeyringError("the secret is not JSON") from None
    if not isinstance(document, dict):
        raise KeyringError("the secret is not a JSON object")
    current_kid, current = _entry(document, "current")
    if current_kid is None or current is None:
        raise KeyringError("the secret needs current_kid and current")
    previous_kid, previous = _entry(document, "previous")
    if (previous_kid is None) != (previous is None):
        raise KeyringError("previous_kid and previous go together")
    if previous_kid == current_kid:
        raise KeyringError("previous_kid equals current_kid")
    return Keyring(current_kid, current, previous_kid, previous)


def rotated(keyring: Keyring, new_key: str | None = None) -> Keyring:
    """Current becomes previous; a fresh random key with the next key id becomes current."""
    key = new_key if new_key is not None else secrets.token_urlsafe(KEY_BYTES)
    return Keyring(_next_kid(keyring.current_kid), key.encode("utf-8"), keyring.current_kid, keyring.current)


def canonical(object_key: str, expires: int, kid: str) -> bytes:
    return "\n".join((CANONICAL_VERSION, object_key, str(expires), kid)).encode("utf-8")


def signature(key: bytes, object_key: str, expires: int, kid: str) -> str:
    return _mac(key, canonical(object_key, expires, kid))


def sign(keyring: Keyring, base_url: str, object_key: str, expires: int) -> str:
    """The link to an attachment's object key, valid until `expires` (unix seconds)."""
    if not object_key.startswith(ATTACHMENTS_PREFIX):
        raise ValueError(f"not an attachment key: {object_key!r}")
    path = "/".join(quote(segment, safe="") for segment in object_key[len(ATTACHMENTS_PREFIX) :].split("/"))
    kid = keyring.current_kid
    query = urlencode(
        {"exp": str(expires), "kid": kid, "sig": signature(keyring.current, object_key, expires, kid)}
    )
    return f"{base_url.rstrip('/')}/{path}?{query}"


@dataclass(frozen=True)
class LinkRequest:
    """A link as a request presents it; nothing in it is trusted before `verify` says so."""

    digest: str
    part: int
    filename: str
    expires: int
    kid: str
    sig: str

    @property
    def object_key(self) -> str:
        return f"{ATTACHMENTS_PREFIX}{self.digest}/{self.part}/{self.filename}"


class Verdict(StrEnum):
    VALID = "valid"
    FORBIDDEN = "forbidden"  # malformed, tampered, unknown or retired key
    EXPIRED = "expired"


def parse_request(raw_path: str, raw_query: str) -> LinkRequest | None:
    """The link a request names, or None when its shape is wrong (odd paths are refused here).

    The path is split on `/` before decoding, so an encoded slash stays inside its segment and is then
    refused; `.`/`..` segments and control characters are refused too. Each query field must occur once.
    """
    segments = raw_path.split("/")
    if len(segments) != 4 or segments[0] != "":
        return None
    digest, part, name = segments[1], segments[2], _decoded(segments[3])
    if name is None or not _DIGEST.fullmatch(digest) or not _PART.fullmatch(part):
        return None
    if not name or name in {".", ".."} or _FORBIDDEN_IN_NAME.search(name):
        return None
    fields = _fields(raw_query, {"exp", "kid", "sig"})
    if fields is None:
        return None
    expires, kid, sig = fields["exp"], fields["kid"], fields["sig"]
    if not _EXPIRY.fullmatch(expires) or not _KID.fullmatch(kid) or not _SIGNATURE.fullmatch(sig):
        return None
    return LinkRequest(digest, int(part), name, int(expires), kid, sig)


def verify(keyring: Keyring, request: LinkRequest, now: float) -> Verdict:
    """Signature first, in constant time, then expiry: an expired link is only reported as expired
    when it is genuine, so the answer never helps forging."""
    key = keyring.key(request.kid)
    if key is None:
        return Verdict.FORBIDDEN
    expected = signature(key, request.object_key, request.expires, request.kid)
    if not hmac.compare_digest(expected.encode("ascii"), request.sig.encode("ascii")):
        return Verdict.FORBIDDEN
    if request.expires <= now:
        return Verdict.EXPIRED
    return Verdict.VALID


# ---------------------------------------------------------------- mute links
@dataclass(frozen=True)
class MuteToken:
    """A mute link as a request presents it; nothing in it is trusted before `verify_mute` says so."""

    fingerprint: str
    seconds: int
    to: str  # the recipient the mail went to, or ANY_RECIPIENT
    expires: int
    kid: str
    sig: str

    @property
    def query(self) -> str:
        """The link's query, as signed (the page's form posts back to the same path and query)."""
        fields = {"for": self.seconds, "to": self.to, "exp": self.expires, "kid": self.kid, "sig": self.sig}
        return urlencode(fields)


def mute_canonical(fingerprint: str, seconds: int, to: str, expires: int, kid: str) -> bytes:
    return "\n".join((MUTE_VERSION, fingerprint, str(seconds), to, str(expires), kid)).encode("utf-8")


def mute_signature(key: bytes, fingerprint: str, seconds: int, to: str, expires: int, kid: str) -> str:
    return _mac(key, mute_canonical(fingerprint, seconds, to, expires, kid))


def nameable(recipient: str) -> str:
    """The recipient as a mute link names it: the address, or ANY_RECIPIENT for what no link can carry."""
    return recipient if _RECIPIENT.fullmatch(recipient) and len(recipient) <= 254 else ANY_RECIPIENT


def sign_mute(keyring: Keyring, base_url: str, fingerprint: str, seconds: int, to: str, expires: int) -> str:
    """The link that mutes the alarm `fingerprint` for `seconds`, sent to `to`, valid until `expires`."""
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise ValueError(f"not an alarm fingerprint: {fingerprint!r}")
    if seconds not in MUTE_SECONDS:
        raise ValueError(f"a mute link lasts one of {MUTE_SECONDS} seconds, not {seconds}")
    to, kid = nameable(to), keyring.current_kid
    sig = mute_signature(keyring.current, fingerprint, seconds, to, expires, kid)
    token = MuteToken(fingerprint, seconds, to, expires, kid, sig)
    return f"{base_url.rstrip('/')}{MUTE_PATH}{fingerprint}?{token.query}"


def is_mute_path(raw_path: str) -> bool:
    """Whether a request is for the mute page (every other path is a download link or nothing)."""
    return raw_path == MUTE_PATH.rstrip("/") or raw_path.startswith(MUTE_PATH)


def parse_mute(raw_path: str, raw_query: str) -> MuteToken | None:
    """The mute link a request names, or None when its shape is wrong."""
    if not raw_path.startswith(MUTE_PATH):
        return None
    fingerprint = raw_path[len(MUTE_PATH) :]
    fields = _fields(raw_query, {"for", "to", "exp", "kid", "sig"})
    if not _FINGERPRINT.fullmatch(fingerprint) or fields is None:
        return None
    seconds, to, expires = fields["for"], fields["to"], fields["exp"]
    if not _SECONDS.fullmatch(seconds) or int(seconds) not in MUTE_SECONDS:
        return None
    if to != ANY_RECIPIENT and nameable(to) != to:
        return None
    if not _EXPIRY.fullmatch(expires) or not _KID.fullmatch(fields["kid"]):
        return None
    if not _SIGNATURE.fullmatch(fields["sig"]):
        return None
    return MuteToken(fingerprint, int(seconds), to, int(expires), fields["kid"], fields["sig"])


def verify_mute(keyring: Keyring, token: MuteToken, now: float) -> Verdict:
    """As `verify`: the signature first, in constant time, then the expiry."""
    key = keyring.key(token.kid)
    if key is None:
        return Verdict.FORBIDDEN
    expected = mute_signature(key, token.fingerprint, token.seconds, token.to, token.expires, token.kid)
    if not hmac.compare_digest(expected.encode("ascii"), token.sig.encode("ascii")):
        return Verdict.FORBIDDEN
    if token.expires <= now:
        return Verdict.EXPIRED
    return Verdict.VALID


def page_nonce(keyring: Keyring, token: MuteToken, issued: int) -> str:
    """The nonce of the page shown at `issued` for a verified token (its key id is in the keyring)."""
    key = keyring.key(token.kid)
    if key is None:
        raise ValueError("the token's key is not in the keyring")
    return _mac(key, "\n".join((PAGE_VERSION, token.sig, str(issued))).encode("ascii"))


def page_valid(keyring: Keyring, token: MuteToken, issued: str, nonce: str, now: float) -> bool:
    """Whether a POST's nonce is the one of a page shown for this token within PAGE_SECONDS."""
    if not _EXPIRY.fullmatch(issued) or not _SIGNATURE.fullmatch(nonce):
        return False
    if not now - PAGE_SECONDS <= int(issued) <= now + CLOCK_SKEW or keyring.key(token.kid) is None:
        return False
    expected = page_nonce(keyring, token, int(issued))
    return hmac.compare_digest(expected.encode("ascii"), nonce.encode("ascii"))


def _mac(key: bytes, message: bytes) -> str:
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _fields(raw_query: str, names: set[str]) -> dict[str, str] | None:
    """The query's fields when it has exactly `names`, each once, and each decodes as UTF-8."""
    fields: dict[str, list[str]] = {}
    for pair in raw_query.split("&") if raw_query else []:
        field, _, value = pair.partition("=")
        name, decoded = _decoded(field), _decoded(value)
        if name is None or decoded is None:
            return None
        fields.setdefault(name, []).append(decoded)
    if set(fields) != names or any(len(v) != 1 for v in fields.values()):
        return None
    return {name: values[0] for name, values in fields.items()}


def _decoded(segment: str) -> str | None:
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        return None


def _entry(document: dict[str, object], name: str) -> tuple[str | None, bytes | None]:
    kid, key = document.get(f"{name}_kid"), document.get(name)
    if kid is not None and (not isinstance(kid, str) or not _KID.fullmatch(kid)):
        raise KeyringError(f"{name}_kid must be 1-32 letters, digits, '-' or '_'")
    if key is not None and (not isinstance(key, str) or len(key) < 32):
        raise KeyringError(f"{name} must be a string of at least 32 characters")
    return kid, key.encode("utf-8") if isinstance(key, str) else None


def _next_kid(kid: str) -> str:
    match = re.fullmatch(r"k(\d{1,9})", kid)
    return f"k{int(match.group(1)) + 1}" if match else f"k{secrets.randbelow(10**6)}"
