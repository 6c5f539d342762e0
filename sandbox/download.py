"""The download function on a local port: each HTTP request becomes a function URL event (payload 2.0)
for the handler the template names, and its answer becomes the HTTP response, as Lambda's URL does.

So links in the sandbox's outbox are the real thing: their signature, expiry and revocation are checked
by the same code as in AWS, and a valid link redirects to a pre-signed URL of the local moto server. The
mute links of alarm mails too: a GET shows the mute page, and its button's POST (the request's headers
and body handed over as Lambda's URL hands them: header names lower-cased, a body of at most
MAX_BODY bytes) mutes the alarm in the sandbox's table.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from localaws.events import function_url_event

log = logging.getLogger("sandbox")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
MAX_BODY = 64 * 1024  # bytes of a body read; a longer or unreadable length is answered 413, function unasked


class DownloadServer:
    def __init__(self, host: str, port: int, handler: Callable[[], Handler]) -> None:
        """`handler()` returns the function's handler; it is imported on the first request."""
        handler_factory = handler

        class RequestHandler(BaseHTTPRequestHandler):
            server_version = "sandbox-function-url"

            def do_GET(self) -> None:
                self._invoke()

            def do_HEAD(self) -> None:
                self._invoke()

            def do_POST(self) -> None:
                self._invoke()

            def do_PUT(self) -> None:
                self._invoke()

            def do_DELETE(self) -> None:
                self._invoke()

            def do_OPTIONS(self) -> None:
                self._invoke()

            def _invoke(self) -> None:
                declared = self.headers.get("Content-Length") or "0"
                length = int(declared) if declared.isdigit() else -1
                if not 0 <= length <= MAX_BODY:
                    self._answer({"statusCode": 413, "headers": {}, "body": "request body refused\n"})
                    return
                body = self.rfile.read(length).decode("utf-8", errors="replace") if length else None
                event = function_url_event(
                    self.command,
                    self.path,
                    source_ip=self.client_address[0],
                    user_agent=self.headers.get("User-Agent", ""),
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=body,
                )
                event["headers"]["host"] = self.headers.get("Host", "")
                try:
                    answer = handler_factory()(event, None)
                except Exception:
                    log.exception("download function failed")
                    answer = {"statusCode": 502, "headers": {}, "body": "the download function failed\n"}
                self._answer(answer)

            def _answer(self, answer: dict[str, Any]) -> None:
                body = str(answer.get("body") or "").encode("utf-8")
                self.send_response(int(answer.get("statusCode", 200)))
                for name, value in (answer.get("headers") or {}).items():
                    self.send_header(name, str(value))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the function writes its own line per request

        self._server = ThreadingHTTPServer((host, port), RequestHandler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sandbox-download", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(5)
