"""The view's HTTP server: the standard library's ThreadingHTTPServer on the socket the claim holds, pages
rendered by Jinja2 with autoescaping on. Routes:

    GET  /              the mails, newest first (polls GET /rows to update itself)
    GET  /mail?key=K    one mail: headers, MIME structure, the relayed mail, notice, log lines, trace
    GET  /traces?q=Q    the annotation search (X-Ray filter expressions over annotations)
    GET  /status        the queues, the alarms, outcome counts, and the DLQ redrive button
    POST /redrive       move the DLQ's messages back to the inbound queue (relayctl's code)
    GET  /static/NAME   the style sheet and the polling script
"""

from __future__ import annotations

import datetime
import logging
import socket
import threading
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jinja2

from sandbox.web import data, safety, traces

log = logging.getLogger("sandbox.web")

HERE = Path(__file__).parent
STATIC = {"style.css": "text/css; charset=utf-8", "poll.js": "text/javascript; charset=utf-8"}
MAX_FORM_BYTES = 4096
REDRIVE_VISIBILITY_SECONDS = 30


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def when(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is escaped unless a template says otherwise (none does)
        undefined=jinja2.StrictUndefined,
    )
    env.filters["size"] = human_size
    env.filters["when"] = when
    env.filters["q"] = lambda text: quote(str(text), safe="")
    env.globals["srcdoc"] = safety.srcdoc
    env.globals["frame_sandbox"] = safety.FRAME_SANDBOX
    return env


class View:
    """What the request handler renders; one per server."""

    def __init__(self, sources: data.Sources, redrive: Callable[[], Any]) -> None:
        self.sources = sources
        self.redrive = redrive
        self.token = safety.new_token()
        self.templates = environment()

    def render(self, name: str, **values: Any) -> bytes:
        return self.templates.get_template(name).render(token=self.token, **values).encode("utf-8")

    def mails(self, rows_only: bool) -> bytes:
        rows = data.mails(self.sources)
        return self.render("rows.html" if rows_only else "mails.html", rows=rows)

    def mail(self, key: str) -> bytes | None:
        found = data.one_mail(self.sources, key)
        if found is None:
            return None
        endpoint = self.sources.endpoint
        return self.render(
            "mail.html",
            mail=found,
            waterfalls=traces.waterfalls(self.sources.daemon, key),
            safe_link=lambda url: safety.safe_link(url, endpoint),
            scale=traces.SCALE,
        )

    def traces(self, query: str) -> bytes:
        try:
            hits, error = traces.search(self.sources.daemon, query), ""
        except traces.BadQuery as e:
            hits, error = [], str(e)
        return self.render("traces.html", query=query, hits=hits, error=error)

    def status(self, moved: str | None) -> bytes:
        current = self.sources.status()
        # Notices by reason ("notice: virus"), the rest by outcome.
        counts = Counter(
            row.outcome.label if row.outcome.kind == "notice" else row.outcome.kind
            for row in data.mails(self.sources)
        )
        return self.render("status.html", status=current, counts=sorted(counts.items()), moved=moved)


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    server_version = "sandbox-web"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str = "text/html; charset=utf-8") -> None:
        self.send_response(status)
        for name, value in safety.HEADERS.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _plain(self, status: HTTPStatus, text: str) -> None:
        self._send(status, (text + "\n").encode("utf-8"), "text/plain; charset=utf-8")

    def _host_ok(self) -> bool:
        allowed = self.server.allowed_hosts
        if allowed is None or self.headers.get("Host") in allowed:
            return True
        self._plain(HTTPStatus.MISDIRECTED_REQUEST, "unknown Host")
        return False

    def do_GET(self) -> None:
        if not self._host_ok():
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        view = self.server.view
        try:
            if url.path == "/":
                self._send(HTTPStatus.OK, view.mails(rows_only=False))
            elif url.path == "/rows":
                self._send(HTTPStatus.OK, view.mails(rows_only=True))
            elif url.path == "/mail":
                page = view.mail(query.get("key", [""])[0])
                if page is None:
                    self._plain(HTTPStatus.NOT_FOUND, "no such mail")
                else:
                    self._send(HTTPStatus.OK, page)
            elif url.path == "/traces":
                self._send(HTTPStatus.OK, view.traces(query.get("q", [""])[0]))
            elif url.path == "/status":
                self._send(HTTPStatus.OK, view.status(query.get("moved", [None])[0]))
            elif url.path.startswith("/static/") and url.path[len("/static/") :] in STATIC:
                name = url.path[len("/static/") :]
                self._send(HTTPStatus.OK, (HERE / "static" / name).read_bytes(), STATIC[name])
            elif url.path == "/redrive":
                self._plain(HTTPStatus.METHOD_NOT_ALLOWED, "redrive is a POST (the button on /status)")
            else:
                self._plain(HTTPStatus.NOT_FOUND, "not found")
        except Exception:
            log.exception("web: %s failed", self.path)
            self._plain(HTTPStatus.INTERNAL_SERVER_ERROR, "the view failed; the sandbox's log (-v) has why")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if not self._host_ok():
            return
        if urlsplit(self.path).path != "/redrive":
            self._plain(HTTPStatus.NOT_FOUND, "not found")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_FORM_BYTES:
            self._plain(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "form too large")
            return
        form = parse_qs(self.rfile.read(length).decode("ascii", "replace"))
        same = safety.same_origin(
            self.headers.get("Origin"), self.headers.get("Referer"), self.headers.get("Host")
        )
        if not same or not safety.token_ok(self.server.view.token, form.get("token", [None])[0]):
            self._plain(HTTPStatus.FORBIDDEN, "refused: not sent by the view's own form")
            return
        try:
            moved = self.server.view.redrive()
        except Exception:
            log.exception("web: redrive failed")
            self._plain(
                HTTPStatus.INTERNAL_SERVER_ERROR, "the redrive failed; the sandbox's log (-v) has why"
            )
            return
        self.send_response(HTTPStatus.SEE_OTHER)
        for name, value in safety.HEADERS.items():
            self.send_header(name, value)
        self.send_header("Location", f"/status?moved={int(moved)}")
        self.send_header("Content-Length", "0")
        self.end_headers()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, sock: socket.socket, host: str, view: View) -> None:
        super().__init__(sock.getsockname()[:2], Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock  # already bound and listening: the claim's
        self.view = view
        port = int(sock.getsockname()[1])
        self.allowed_hosts = safety.allowed_hosts(host, port)
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


class WebView:
    """The server in a thread; `stop` closes the socket the claim handed over."""

    def __init__(self, sock: socket.socket, host: str, sources: data.Sources, redrive: Callable[[], Any]):
        self.server = Server(sock, host, View(sources, redrive))
        self.url = self.server.url
        self._thread = threading.Thread(target=self.server.serve_forever, name="sandbox-web", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join(5)
        self.server.server_close()


def redrive(sources: data.Sources) -> int:
    """relayctl's receive-send-delete move (moto has no message move task); the number moved."""
    from relayctl.redrive import move_by_hand

    if not sources.dead_letter_url:
        return 0
    result = move_by_hand(
        sources.sqs, sources.dead_letter_url, sources.inbound_url, None, REDRIVE_VISIBILITY_SECONDS
    )
    return result.moved
