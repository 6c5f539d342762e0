"""The X-Ray daemon's part, locally: segments arrive over UDP on loopback and are kept for the web view.

In AWS, Lambda starts each traced invocation's segment and the function's SDK sends its subsegments (one
per botocore call, one `relay_mail` per mail, see `app/tracing.py`) to the daemon at
`AWS_XRAY_DAEMON_ADDRESS`. Here `traced` plays Lambda's part: it opens a segment with a new trace id around
each invocation the poller makes, in the poller's thread, and the SDK sends the finished segment (and any
subsegments it streams early) to this listener. Only the poller's thread has a segment: other threads'
AWS calls (the outbox, the status, the web view) are not the function's and are dropped unrecorded
(`AWS_XRAY_CONTEXT_MISSING=IGNORE_ERROR`).

The datagram format is the daemon's: a JSON header line (`{"format": "json", "version": 1}`), a newline,
then one segment or subsegment document.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("sandbox.xray")

Handler = Callable[[dict[str, Any], Any], Any]
MAX_DATAGRAM = 65535  # the SDK keeps each document under one UDP datagram
ENVIRONMENT = {
    "AWS_XRAY_SDK_ENABLED": "true",  # app.tracing switches the SDK off outside Lambda otherwise
    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",  # AWS calls outside an invocation are not the function's
}


def new_trace_id(now: float | None = None) -> str:
    """X-Ray's format: 1-<epoch seconds, 8 hex digits>-<96 random bits, 24 hex digits>."""
    return f"1-{int(time.time() if now is None else now):08x}-{secrets.token_hex(12)}"


def flatten(entity: dict[str, Any], depth: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """The entity and its subsegments, depth first, with their depth."""
    yield depth, entity
    for child in entity.get("subsegments", []):
        yield from flatten(child, depth + 1)


@dataclass
class Trace:
    trace_id: str
    documents: list[dict[str, Any]] = field(default_factory=list)

    def entities(self) -> list[tuple[int, dict[str, Any]]]:
        """Segments first, then streamed subsegments not already inside one, depth first."""
        seen: set[str] = set()
        rows: list[tuple[int, dict[str, Any]]] = []
        ordered = sorted(
            self.documents, key=lambda d: (d.get("type") == "subsegment", d.get("start_time", 0))
        )
        for document in ordered:
            if document.get("id") in seen:
                continue
            depth = 1 if document.get("type") == "subsegment" else 0
            for level, entity in flatten(document, depth):
                if entity.get("id") not in seen:
                    seen.add(str(entity.get("id")))
                    rows.append((level, entity))
        return rows

    def mails(self) -> list[dict[str, Any]]:
        """The `relay_mail` subsegments, each with its annotations."""
        return [entity for _, entity in self.entities() if entity.get("name") == "relay_mail"]


class Daemon:
    """A UDP listener on loopback that keeps every trace it receives (in memory, for the process's life)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((host, port))
        self._socket.settimeout(0.2)
        self.address = "{}:{}".format(*self._socket.getsockname()[:2])
        self._traces: dict[str, Trace] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-xray", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        self._socket.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                datagram = self._socket.recv(MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                return
            self.receive(datagram)

    def receive(self, datagram: bytes) -> None:
        header, _, body = datagram.partition(b"\n")
        try:
            if json.loads(header).get("format") != "json":
                raise ValueError("not a JSON document")
            document = json.loads(body)
            trace_id = str(document["trace_id"])
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("xray: ignored a datagram that is not a segment document")
            return
        with self._lock:
            self._traces.setdefault(trace_id, Trace(trace_id)).documents.append(document)

    def traces(self) -> list[Trace]:
        with self._lock:
            return [Trace(t.trace_id, list(t.documents)) for t in self._traces.values()]

    def traces_of(self, incoming_key: str) -> list[Trace]:
        """The invocations that handled this mail (more than one when it was retried), oldest first."""
        found = [
            t
            for t in self.traces()
            if any(m.get("annotations", {}).get("incoming_key") == incoming_key for m in t.mails())
        ]
        return sorted(found, key=lambda t: min(d.get("start_time", 0) for d in t.documents))


def configure(daemon_address: str) -> None:
    """The function's environment for tracing, before the SDK is first imported (it reads it then)."""
    os.environ.update(ENVIRONMENT)
    os.environ["AWS_XRAY_DAEMON_ADDRESS"] = daemon_address
    # The recorder warns about every AWS call outside a segment: the sandbox's own threads make them.
    logging.getLogger("aws_xray_sdk.core.recorder").setLevel(logging.ERROR)


def traced(handler: Handler, function_name: str) -> Handler:
    """The handler inside a sampled segment per invocation, as Lambda opens one for an active-tracing
    function; `_X_AMZN_TRACE_ID` names it for the invocation, as Lambda sets it."""
    from aws_xray_sdk.core import xray_recorder

    xray_recorder.configure(daemon_address=os.environ["AWS_XRAY_DAEMON_ADDRESS"])

    def invoke(event: dict[str, Any], context: Any) -> Any:
        trace_id = new_trace_id()
        segment = xray_recorder.begin_segment(function_name, traceid=trace_id, sampling=1)
        segment.origin = "AWS::Lambda::Function"
        os.environ["_X_AMZN_TRACE_ID"] = f"Root={trace_id};Parent={segment.id};Sampled=1"
        try:
            return handler(event, context)
        except Exception as e:
            segment.add_exception(e, [])
            raise
        finally:
            xray_recorder.end_segment()
            os.environ.pop("_X_AMZN_TRACE_ID", None)

    return invoke
