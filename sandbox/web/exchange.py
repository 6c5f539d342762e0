"""A request as a route's action sees it, and the response it returns; the server adds the security
headers (`safety.HEADERS`, which a response may tighten or replace, as the framed mail does)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    host: str  # the Host header, already checked against the view's names

    def arg(self, name: str, default: str = "") -> str:
        """A query (or, for a POST, form) field's first value."""
        values = self.form.get(name) or self.query.get(name)
        return values[0] if values else default

    @property
    def origin(self) -> str:
        return f"http://{self.host}"


@dataclass(frozen=True)
class Response:
    status: HTTPStatus
    body: bytes = b""
    content_type: str = HTML
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def page(cls, body: bytes, status: HTTPStatus = HTTPStatus.OK) -> Response:
        return cls(status, body)

    @classmethod
    def text(cls, status: HTTPStatus, text: str) -> Response:
        return cls(status, (text + "\n").encode("utf-8"), TEXT)

    @classmethod
    def json(cls, document: Any, status: HTTPStatus = HTTPStatus.OK) -> Response:
        return cls(status, json.dumps(document, indent=1, ensure_ascii=False).encode("utf-8"), JSON)

    @classmethod
    def redirect(cls, location: str) -> Response:
        """After a POST: the browser GETs `location` (303 See Other)."""
        return cls(HTTPStatus.SEE_OTHER, headers={"Location": location})

    @classmethod
    def download(cls, body: bytes, content_type: str, filename: str) -> Response:
        disposition = f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}"
        return cls(HTTPStatus.OK, body, content_type, {"Content-Disposition": disposition})
