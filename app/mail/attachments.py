"""Attachment names and object keys: safe, bounded, deterministic per (incoming key, part).

The same mail always maps to the same keys, so a retried record overwrites its own uploads instead of
duplicating them; the part index in the key keeps two parts with the same name apart; a name can never
leave its mail's prefix.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from urllib.parse import quote

ATTACHMENTS_PREFIX = "attachments/"
MAX_NAME_LENGTH = 100

_UNSAFE_CHARS = re.compile(r'[<>:"/\\|?*%#{}^`]')  # reserved on common file systems or in URLs
_SPACES = re.compile(r"\s+")
_FALLBACK_EXTENSIONS = {"message/rfc822": ".eml", "text/plain": ".txt", "application/octet-stream": ".bin"}


def mail_digest(incoming_key: str) -> str:
    """Identifies one incoming mail in attachment keys and markers without repeating its key."""
    return hashlib.sha256(incoming_key.encode("utf-8")).hexdigest()[:32]


def recipient_digest(addr: str) -> str:
    """Lets operators find mail sent to an address without storing the address itself."""
    return hashlib.sha256(addr.lower().encode("utf-8")).hexdigest()


def safe_filename(original: str, content_type: str, index: int) -> str:
    """A download name: no path, no control characters, bounded, derived from the type when missing."""
    name = original.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _SPACES.sub(" ", _UNSAFE_CHARS.sub("_", name)).strip(" .")
    if not name or name.strip("_") == "":
        name = f"attachment-{index}{extension_for(content_type)}"
    if content_type == "message/rfc822" and not name.lower().endswith(".eml"):
        name += ".eml"
    return _bounded(name)


def extension_for(content_type: str) -> str:
    return _FALLBACK_EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"


def object_key(incoming_key: str, index: int, filename: str) -> str:
    return f"{ATTACHMENTS_PREFIX}{mail_digest(incoming_key)}/{index}/{filename}"


def manifest_key(incoming_key: str) -> str:
    return f"{ATTACHMENTS_PREFIX}{mail_digest(incoming_key)}/manifest.json"


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback name plus the exact UTF-8 name for browsers that read filename*."""
    fallback = filename.encode("ascii", "replace").decode("ascii").replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _bounded(name: str) -> str:
    if len(name) <= MAX_NAME_LENGTH:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and 0 < len(extension) <= 10 and stem:
        return stem[: MAX_NAME_LENGTH - len(extension) - 1].rstrip(" .") + "." + extension
    return name[:MAX_NAME_LENGTH].rstrip(" .")
