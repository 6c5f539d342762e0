"""Mute links in the tests: found in a relayed mail, opened and pressed as a browser would (the page's
form posted back with its hidden fields and the page's Origin)."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from app import links

_MUTE_URL = re.compile(r"https?://[^\s\"'<>]+/mute/[0-9a-f]{32}\?[^\s\"'<>]+")
_ACTION = re.compile(r'<form method="post" action="([^"]+)">')
_FIELD = re.compile(r'<input type="hidden" name="(issued|nonce)" value="([^"]*)">')


def mute_links(message: EmailMessage, subtype: str = "plain") -> dict[int, str]:
    """The mail's mute links by duration in seconds (in its text, or with `subtype="html"` its HTML)."""
    part = message.get_body((subtype,))
    assert part is not None, subtype
    found = [html.unescape(url) for url in _MUTE_URL.findall(str(part.get_content()))]
    return {int(parse_qs(urlsplit(url).query)["for"][0]): url for url in found}


def fingerprint_of(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[1]


@dataclass(frozen=True)
class Form:
    """The page's button: where it posts and what."""

    action: str  # path and query
    issued: str
    nonce: str

    def body(self, **changes: str) -> str:
        return urlencode({"issued": self.issued, "nonce": self.nonce} | changes)


def form_of(page: str) -> Form:
    (action,) = _ACTION.findall(page)
    fields = dict(_FIELD.findall(page))
    return Form(html.unescape(action), fields["issued"], fields["nonce"])


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def retarget(url: str, **fields: str | int) -> str:
    """The mute link with some query fields changed (its signature kept): a tampered link."""
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | {k: str(v) for k, v in fields.items()}
    return parts._replace(query=urlencode(query)).geturl()


def log_lines(output: str) -> list[dict[str, Any]]:
    """The function's JSON log lines in captured stdout."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def keyring_of(secretsmanager: Any, secret_arn: str) -> links.Keyring:
    return links.parse_keyring(secretsmanager.get_secret_value(SecretId=secret_arn)["SecretString"])
