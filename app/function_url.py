"""A Lambda function URL's request and answer (API Gateway payload 2.0), read and written in one place
for the download links and the mute page, which share one URL.

Every header kept is cut to `MAX_HEADER` characters, so nothing a client sends makes a log line long.
A body is kept only up to `MAX_BODY` bytes: the mute page's form has two short fields, and a download
has no body at all.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

MAX_HEADER = 256  # characters of the source IP, user agent, host, origin and referer kept
MAX_BODY = 1024  # bytes of a request body read; a longer one is not read at all


@dataclass(frozen=True)
class Request:
    """The parts of one request the functions read; `body` is None when it is too long or not decodable."""

    method: str
    raw_path: str
    raw_query: str
    source_ip: str
    user_agent: str
    host: str = ""
    origin: str | None = None
    referer: str | None = None
    body: bytes | None = b""

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Request:
        http = event.get("requestContext", {}).get("http", {})
        headers = {str(k).lower(): str(v)[:MAX_HEADER] for k, v in (event.get("headers") or {}).items()}
        return cls(
            method=str(http.get("method", "")).upper(),
            raw_path=str(event.get("rawPath", "")),
            raw_query=str(event.get("rawQueryString", "")),
            source_ip=str(http.get("sourceIp", ""))[:MAX_HEADER],
            user_agent=str(http.get("userAgent", ""))[:MAX_HEADER],
            host=headers.get("host", ""),
            origin=headers.get("origin"),
            referer=headers.get("referer"),
            body=_body(event),
        )


def answer(status: int, headers: dict[str, str], body: str, method: str) -> dict[str, Any]:
    """The function URL's response; a HEAD gets the headers without the body."""
    return {
        "statusCode": status,
        "headers": headers,
        "body": "" if method == "HEAD" else body,
        "isBase64Encoded": False,
    }


def _body(event: dict[str, Any]) -> bytes | None:
    raw = event.get("body")
    if raw is None:
        return b""
    text = str(raw)
    if len(text) > 4 * MAX_BODY:
        return None
    if not event.get("isBase64Encoded"):
        return text.encode("utf-8", errors="replace")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
