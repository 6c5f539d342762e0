"""What keeps hostile mail harmless in the view.

- Every page carries a Content-Security-Policy: scripts only from the view's own `/static/`, nothing
  loaded from anywhere else, no plugins, forms only to itself, not framed by other sites.
- A mail's HTML (the sender's, or the relayed one) is never part of a page. The page frames it from
  `/frame` in an `<iframe sandbox>` without `allow-scripts` (no script, event handler or `javascript:`
  URL runs) and without `allow-same-origin` (it cannot read the view). `/frame` answers with its own,
  stricter policy: no scripts, no remote loads, sandboxed even when opened on its own, framed only by the
  view; images only as `data:` or from the view's `/part`, which serves the framed mail's own `cid:`
  images (a `cid:` URL in the HTML is pointed there): the received mail's, or with `sent=` those of a
  mail the relay sent (its previews), PNG, JPEG, GIF or WebP only, and nothing else. The framed document's
  origin is opaque, so its images are cross-origin loads: `/part` must not answer with a
  Cross-Origin-Resource-Policy of `same-origin`.
- State changes only by POST, with a per-process token in the form and the request's Origin checked.
- The Host header must name the view when it listens on loopback (a DNS-rebinding page cannot reach it).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
from collections.abc import Callable
from urllib.parse import urlsplit

PAGE_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
FRAME_SANDBOX = "allow-popups allow-popups-to-escape-sandbox"  # links open in a new tab; nothing runs
PART_POLICY = "default-src 'none'; sandbox"  # an image part opened on its own is inert too
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})  # no SVG: it is a document
HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make a POST's Origin "null"
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_CID = re.compile(r"""(?i)(\b(?:src|background)\s*=\s*["']?|url\(\s*["']?)cid:([^\s"'<>()]+)""")


def frame_policy(origin: str) -> str:
    """The policy of a framed mail; `origin` is the view's, as the browser reached it."""
    return "; ".join(
        [
            "default-src 'none'",
            "style-src 'unsafe-inline'",  # the mail's own inline styles
            f"img-src data: {origin}/part",  # a path without a slash: that route exactly
            "font-src data:",
            "form-action 'none'",
            f"frame-ancestors {origin}",
            f"sandbox {FRAME_SANDBOX}",
        ]
    )


def frame_headers(origin: str) -> dict[str, str]:
    return {"Content-Security-Policy": frame_policy(origin), "X-Frame-Options": "SAMEORIGIN"}


def frame_document(mail_html: str, part_url: Callable[[str], str]) -> str:
    """The framed document: the mail's HTML, links opening in a new tab, `cid:` images from `/part`."""
    html = _CID.sub(lambda m: m[1] + part_url(m[2]), mail_html)
    return '<!DOCTYPE html><meta charset="utf-8"><base target="_blank">' + html


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_ok(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """The Host headers the view answers; None: any (it listens beyond loopback on purpose)."""
    if not is_loopback(host):
        return None
    names = {host, "localhost", "127.0.0.1", "[::1]"}
    return {f"{name}:{port}" for name in names}


def same_origin(origin: str | None, referer: str | None, host_header: str | None) -> bool:
    """A POST must come from a page of the view: its Origin (or, without one, its Referer) is ours."""
    source = origin if origin and origin != "null" else referer
    if not source or not host_header:
        return False
    try:
        parts = urlsplit(source)
    except ValueError:  # `http://[`: an unclosed IPv6 bracket
        return False
    return parts.scheme == "http" and parts.netloc == host_header


def safe_link(url: str, endpoint: str) -> bool:
    """Links made clickable in the view: only the sandbox's own attachment links (its download server's,
    or S3's without one)."""
    return url.startswith(endpoint.rstrip("/") + "/")
