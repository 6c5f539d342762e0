"""moto's server in this process, on a port of its own or on a socket the caller already listens on.

moto's `ThreadedMotoServer` binds inside its thread and, when the port is taken, waits forever for a
server that will never be ready; here the bind happens (or was done by the caller's claim) before the
thread starts, so a taken port is an error at once.
"""

from __future__ import annotations

import logging
import threading

DUMMY_KEY = "testing"  # moto accepts any key; these never leave the machine


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, fd: int | None = None) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import ThreadedWSGIServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        app = DomainDispatcherApplication(create_backend_app)
        # What make_server(threaded=True) builds; with fd, werkzeug serves on a duplicate of that
        # listening socket instead of binding one.
        self._server = ThreadedWSGIServer(host, port, app, handler=MotoRequestHandler, fd=fd)
        # Request threads are daemons serving keep-alive connections of local clients; server_close()
        # would otherwise wait for every one of them to end.
        self._server.block_on_close = False
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MotoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()  # returns once serve_forever has seen it (it polls every 0.5 s)
            self._thread.join(5)
        self._server.server_close()
