"""Each attachment link of a relayed mail with the answer the download function would give it now.

The answer comes from the function's own code (`app.download.answer`: the link's signature and expiry by
`app.links`, then the object's `revoked` tag and existence by `app.aws.objects`), called for a `HEAD`
without a request to the download server: no `Downloads` log line or metric is written, so the view
never looks like a recipient opening the link. It is asked again on every page: after `relayctl revoke`
or `unrevoke` the page says so.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from app import download, function_url
from app.aws.link_keys import KeyringSource
from app.config import DownloadSettings
from app.errors import RetryableError

# The download function's outcome -> the link's state, as `relayctl links` words it.
STATES = {
    download.Answer.SERVED: "active",
    download.Answer.EXPIRED: "expired",
    download.Answer.REVOKED: "revoked",
    download.Answer.MISSING: "missing",
    download.Answer.FORBIDDEN: "not valid",
    download.Answer.UNAVAILABLE: "unavailable",
}


@dataclass(frozen=True)
class LinkState:
    url: str
    name: str  # the file name the link ends in
    state: str  # active, expired, revoked, missing, not valid, unavailable
    status: int  # what the download function answers: 302, 410, 404, 403 or 503
    expires: datetime.datetime | None  # the link's own expiry (its `exp`), when it has one

    @property
    def label(self) -> str:
        when = self.expires.strftime("%Y-%m-%d %H:%M UTC") if self.expires else ""
        if self.state == "active":
            return f"active until {when}" if when else "active"
        if self.state == "expired":
            return f"expired on {when}"
        if self.state == "revoked":
            return "revoked (relayctl unrevoke brings it back)"
        if self.state == "missing":
            return "missing (deleted)"
        if self.state == "unavailable":
            return "unknown now (S3 or the link-key secret could not be read)"
        return "not valid"


class LinkJudge:
    """Judges the links under `base_url` (the download function's URL) with the function's settings."""

    def __init__(self, base_url: str, settings: DownloadSettings) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.settings = settings
        self.keys = KeyringSource(settings.link_key_secret_arn)

    def judge(self, url: str, now: float | None = None) -> LinkState:
        parts = urlsplit(url)
        name = unquote(parts.path.rsplit("/", 1)[-1])
        if not url.startswith(self.base_url):
            return LinkState(url, name, "not valid", 403, None)
        request = function_url.Request("HEAD", parts.path, parts.query, "", "sandbox web view")
        try:
            moment = time.time() if now is None else now
            response = download.respond(request, self.settings, self.keys, moment)
        except RetryableError:
            response = download.Response(download.Answer.UNAVAILABLE, 503)
        link = response.link
        expires = datetime.datetime.fromtimestamp(link.expires, datetime.UTC) if link else None
        return LinkState(url, name, STATES[response.answer], response.status, expires)

    def judge_all(self, urls: list[str]) -> list[LinkState]:
        now = time.time()
        return [self.judge(url, now) for url in urls]
