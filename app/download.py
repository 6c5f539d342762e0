"""The download function: a link from a relayed mail in, a 302 to the attachment (or a page saying why
not) out. It runs behind a Lambda function URL; its events are API Gateway payload 2.0 shaped.

Order of checks: the link's shape and signature (constant time), then its expiry, then the object's
`revoked` tag, then a 302 to an S3 URL pre-signed for `PRESIGN_SECONDS` with the function's role (its
temporary credentials easily outlive a minute). The bucket policy denies GetObject on revoked objects,
so even a 302 handed out a moment before a revocation stops working.

The same URL serves the mute page of alarm mails (every path under /mute: `app.mute_page`); a download
link's path never starts so, and the two kinds of link never verify as each other (`app.links`).

No answer names the bucket or the key. Every request writes one JSON line to stdout that is both the
log line (answer, digest, part, source IP, user agent; never the signature) and a CloudWatch embedded
metric `Downloads` by `Outcome` in the stack's namespace (`METRICS_NAMESPACE`, as the relay's `Mails`),
so an operator can tell whether and when a leaked link was used. Whatever the path and query, a request
that is not a valid link gets a 4xx page and that one line: nothing in them is read as a time, a key or
a path before `app.links.parse_request` has bounded it.
"""

from __future__ import annotations

import html
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import Any

from app import function_url, links
from app.aws import clients, objects
from app.aws.link_keys import KeyringSource
from app.config import DownloadSettings, load_download_settings
from app.errors import RetryableError
from app.function_url import Request

PRESIGN_SECONDS = 60
_PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}


class Answer(StrEnum):
    """What a request got: the log line's and the `Downloads` metric's `Outcome`."""

    SERVED = "served"
    FORBIDDEN = "forbidden"
    EXPIRED = "expired"
    REVOKED = "revoked"
    MISSING = "missing"
    NOT_ALLOWED = "method_not_allowed"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Response:
    """The HTTP response to one request, and the link it named (for the log line)."""

    answer: Answer
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    link: links.LinkRequest | None = None

    def to_function_url(self, method: str) -> dict[str, Any]:
        return function_url.answer(self.status, self.headers, self.body, method)


def respond(request: Request, settings: DownloadSettings, keys: KeyringSource, now: float) -> Response:
    """What one request gets; raises RetryableError when S3 or Secrets Manager cannot be read."""
    if request.method not in {"GET", "HEAD"}:
        text = "Download links are opened with GET."
        return _page(Answer.NOT_ALLOWED, 405, "Not allowed", text, extra={"Allow": "GET, HEAD"})
    link = links.parse_request(request.raw_path, request.raw_query)
    if link is None:
        return _refused()
    verdict = links.verify(keys.for_kid(link.kid), link, now)
    if verdict is links.Verdict.FORBIDDEN:
        return _refused(link)  # logged with the digest and part it claims: a tampered leak shows
    if verdict is links.Verdict.EXPIRED:
        text = f"This download link expired on {_utc(link.expires)}. Ask the sender for the file again."
        return _page(Answer.EXPIRED, 410, "Link expired", text, link)
    state = objects.state(settings.attachments_bucket, link.object_key)
    if state is objects.ObjectState.REVOKED:
        text = "The sender's organisation has withdrawn this file. The link no longer works."
        return _page(Answer.REVOKED, 410, "File withdrawn", text, link)
    if state is objects.ObjectState.GONE:
        text = "This file is no longer available: attachments are deleted after their retention period."
        return _page(Answer.MISSING, 404, "File not found", text, link)
    location = objects.presigned(
        request.method, settings.attachments_bucket, link.object_key, PRESIGN_SECONDS
    )
    headers = {"Location": location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return Response(Answer.SERVED, 302, headers, link=link)


def log_record(request: Request, response: Response, now: float, namespace: str) -> dict[str, Any]:
    """The request's log line and embedded metric, one JSON object; never the signature."""
    link = response.link
    return {
        "_aws": {
            "Timestamp": int(now * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [["Outcome"]],
                    "Metrics": [{"Name": "Downloads", "Unit": "Count"}],
                }
            ],
        },
        "Outcome": str(response.answer),
        "Downloads": 1,
        "level": "WARNING" if response.status >= 500 else "INFO",
        "message": f"download {response.answer}",
        "status": response.status,
        "method": request.method,
        "digest": link.digest if link else None,
        "part": link.part if link else None,
        "kid": link.kid if link else None,
        "link_expires_at": datetime.fromtimestamp(link.expires, UTC).isoformat() if link else None,
        "source_ip": request.source_ip,
        "user_agent": request.user_agent,
    }


def _clock() -> datetime:
    """The time a mute is decided by (one place for tests to move it with the relay's clock)."""
    return datetime.now(UTC)


@cache
def _keys(secret_arn: str) -> KeyringSource:
    return KeyringSource(secret_arn)


def reset() -> None:
    """Forget what a container keeps between invocations (tests start a fresh account each time)."""
    from app import mute_page

    _keys.cache_clear()
    load_download_settings.cache_clear()
    mute_page.reset()
    clients.reset()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_download_settings()
    if links.is_mute_path(str(event.get("rawPath", ""))):
        from app import mute_page  # the alarm timeline it needs loads for mute links only: no download waits

        answer, lines = mute_page.handle(event, settings, _keys(settings.link_key_secret_arn), _clock())
        for line in lines:
            _emit(line)
        return answer
    request = Request.from_event(event)
    now = time.time()
    try:
        response = respond(request, settings, _keys(settings.link_key_secret_arn), now)
    except RetryableError as e:
        text = "The download service is briefly unavailable. Try again in a minute."
        response = _page(Answer.UNAVAILABLE, 503, "Try again", text, extra={"Retry-After": "30"})
        _emit({"level": "ERROR", "message": "download unavailable", "error": str(e)})
    _emit(log_record(request, response, now, settings.metrics_namespace))
    return response.to_function_url(request.method)


def _refused(link: links.LinkRequest | None = None) -> Response:
    text = "This download link is not valid. Check that it was copied completely from the mail."
    return _page(Answer.FORBIDDEN, 403, "Link not valid", text, link)


def _page(
    answer: Answer,
    status: int,
    title: str,
    text: str,
    link: links.LinkRequest | None = None,
    extra: dict[str, str] | None = None,
) -> Response:
    """A short page a recipient understands; it names neither the bucket nor the key."""
    body = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n"
        '<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">'
        f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(text)}</p>\n"
        "<p><small>IoT Mail Relay</small></p></body></html>\n"
    )
    return Response(answer, status, {**_PAGE_HEADERS, **(extra or {})}, body, link)


def _utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _emit(record: dict[str, Any]) -> None:
    """One line on stdout: Lambda sends it to the log group, CloudWatch extracts the metric."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
