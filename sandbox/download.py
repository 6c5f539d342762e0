"""The download function on a local port: each HTTP request becomes a function URL event (payload 2.0)
for the handler the template names, and its answer becomes the HTTP response, as Lambda's URL does.

So links in the sandbox's outbox are the real thing: their signature, expiry and revocation are checked
by the same code as in AWS, and a valid link redirects to a pre-signed URL of the local moto server.
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

            def _invoke(self) -> None:
                event = function_url_event(
                    self.command,
                    self.path,
                    source_ip=self.client_address[0],
                    user_agent=self.headers.get("User-Agent", ""),
                )
                event["headers"]["host"] = self.headers.get("Host", "")
                try:
                    answer = handler_factory()(event, None)
                except Exception:
                    log.exception("download function failed")
                    answer = {"statusCode": 502, "headers": {}, "body": "the download function failed\n"}
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
