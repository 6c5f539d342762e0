"""What keeps hostile mail harmless in the view.

- Every page carries a Content-Security-Policy: scripts only from the view's own `/static/`, nothing
  loaded from anywhere else, no plugins, forms only to itself, not framed by other sites.
- The sender's HTML is shown only as the `srcdoc` of an `<iframe sandbox>` without `allow-scripts` (no
  script, event handler or `javascript:` URL runs) and without `allow-same-origin` (it cannot read the
  view). The document starts with its own stricter policy (no scripts, no remote loads: images only as
  `data:`), and also inherits the page's. Jinja2 escapes it into the attribute like any other text.
- State changes only by POST, with a per-process token in the form and the request's Origin checked.
- The Host header must name the view when it listens on loopback (a DNS-rebinding page cannot reach it).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from urllib.parse import urlsplit

PAGE_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # the mail's own inline styles, inside the frame
        "img-src 'self' data:",
        "frame-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
MAIL_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"
FRAME_SANDBOX = "allow-popups allow-popups-to-escape-sandbox"  # links open in a new tab; nothing runs
HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make a POST's Origin "null"
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def srcdoc(mail_html: str) -> str:
    """The frame's document: the mail's HTML behind a policy that forbids scripts and remote loads.
    (Escaping into the attribute is the template's job.)"""
    return (
        '<!DOCTYPE html><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{MAIL_POLICY}">'
        '<base target="_blank">' + mail_html
    )


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
    parts = urlsplit(source)
    return parts.scheme == "http" and parts.netloc == host_header


def safe_link(url: str, endpoint: str) -> bool:
    """Links made clickable in the view: only the sandbox's own attachment links (its download server's,
    or S3's without one)."""
    return url.startswith(endpoint.rstrip("/") + "/")
