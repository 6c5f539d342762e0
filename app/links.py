"""Download links: signing by the relay, verification by the download function (pure; no AWS).

A link is `<base>/<mail digest>/<part>/<file name>?exp=<unix seconds>&kid=<key id>&sig=<signature>`.
The path is the attachment's object key without its `attachments/` prefix, so a link names exactly one
attachment and can never reach a manifest (`attachments/<digest>/manifest.json` has no part). `sig` is
HMAC-SHA256, base64url without padding, over a canonical string of the object key, the expiry and the
key id; the HTTP method is not part of it, so GET and HEAD of one link agree.

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
    mac = hmac.new(key, canonical(object_key, expires, kid), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


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
    fields: dict[str, list[str]] = {}
    for pair in raw_query.split("&") if raw_query else []:
        field, _, value = pair.partition("=")
        fields.setdefault(unquote(field), []).append(unquote(value))
    if set(fields) != {"exp", "kid", "sig"} or any(len(v) != 1 for v in fields.values()):
        return None
    ((expires,), (kid,), (sig,)) = fields["exp"], fields["kid"], fields["sig"]
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
