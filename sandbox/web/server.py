"""The view's HTTP server: the standard library's ThreadingHTTPServer on the socket the claim holds. Each
request is checked (Host; for a POST also its origin, token and size), dispatched by the route table
(`sandbox.web.routes`), and answered with the security headers (`safety.HEADERS`) set here, once."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.web import data, routes, safety
from sandbox.web.exchange import Request, Response
from sandbox.web.view import View

log = logging.getLogger("sandbox.web")

MAX_FORM_BYTES = 4096
REDRIVE_VISIBILITY_SECONDS = 30


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    server_version = "sandbox-web"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in {**safety.HEADERS, **response.headers}.items():
            self.send_header(name, value)
        if response.status != HTTPStatus.SEE_OTHER:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _answer(self) -> None:
        allowed = self.server.allowed_hosts
        host = self.headers.get("Host") or ""
        if allowed is not None and host not in allowed:
            self._send(Response.text(HTTPStatus.MISDIRECTED_REQUEST, "unknown Host"))
            return
        url = urlsplit(self.path)
        route, methods = routes.find(self.command, url.path)
        if route is None:
            if methods:
                refusal = Response.text(
                    HTTPStatus.METHOD_NOT_ALLOWED, f"{url.path} takes {', '.join(methods)}"
                )
                self._send(
                    Response(
                        refusal.status, refusal.body, refusal.content_type, {"Allow": ", ".join(methods)}
                    )
                )
            else:
                self._send(Response.text(HTTPStatus.NOT_FOUND, "not found"))
            return
        form: dict[str, list[str]] = {}
        if route.method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_FORM_BYTES:
                self._send(Response.text(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "form too large"))
                return
            form = parse_qs(self.rfile.read(length).decode("ascii", "replace"))
            same = safety.same_origin(self.headers.get("Origin"), self.headers.get("Referer"), host)
            if not same or not safety.token_ok(
                self.server.view.token, next(iter(form.get("token", [])), None)
            ):
                self._send(Response.text(HTTPStatus.FORBIDDEN, "refused: not sent by the view's own form"))
                return
        request = Request(self.command, url.path, parse_qs(url.query), form, host)
        try:
            response = route.action(self.server.view, request)
        except Exception:
            log.exception("web: %s %s failed", self.command, self.path)
            response = Response.text(
                HTTPStatus.INTERNAL_SERVER_ERROR, "the view failed; the sandbox's log (-v) has why"
            )
        self._send(response)

    do_GET = do_HEAD = do_POST = _answer


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
        self.server = Server(sock, host, View(sources, redrive, routes.NAV))
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
