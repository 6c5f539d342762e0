"""The trace waterfall and the annotation search, from the segments `sandbox.xray.Daemon` received.

The search takes the README's X-Ray filter expressions over annotations, e.g.
`annotation.outcome = "fallback" AND annotation.reason = "virus"`; a bare word matches any annotation's
value containing it.

Some calls fail by design, and X-Ray records them as faults all the same: the function reads the
recipients document, which need not exist (404: no groups or routes), re-reads it conditionally (304: not
changed), reads an idempotency marker only after a conditional put found one (404 when it vanished in
between) and claims a marker with `If-None-Match` (412: an earlier delivery did that step). The waterfall
names these as expected instead of painting them as failures.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from app.aws.markers import MARKERS_PREFIX
from sandbox.xray import Daemon, Trace

SCALE = 1000  # the waterfall's SVG width units
_CONDITION = re.compile(
    r"""\s*annotation\.(?P<name>[A-Za-z0-9_]+)\s*(?P<op>!=|=)\s*(?:"(?P<text>[^"]*)"|(?P<bare>[^\s"]+))\s*"""
)
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Row:
    depth: int
    name: str
    operation: str
    start_ms: float
    duration_ms: float
    x: int  # SVG units, 0..SCALE
    width: int
    error: str  # "", "error", "fault" or "throttle"
    status: str  # the HTTP status of an AWS call
    expected: str  # why this error is part of the design, or ""
    annotations: dict[str, object]
    mine: bool  # this mail's relay_mail subsegment or one of its calls


@dataclass(frozen=True)
class Waterfall:
    trace_id: str
    started: datetime.datetime
    duration_ms: float
    rows: list[Row]


def _error(entity: dict[str, object]) -> str:
    for flag in ("fault", "error", "throttle"):
        if entity.get(flag):
            return flag
    return ""


def expected(operation: str, status: str, key: str, recipients_document: str) -> str:
    """Why a failed S3 call is expected (see the module's docstring), or "" when it is a failure."""
    if operation == "GetObject" and key and key == recipients_document:
        if status == "404":
            return "no recipients document: no groups or routes"
        if status == "304":
            return "the recipients document has not changed"
    if key.startswith(MARKERS_PREFIX):
        if operation == "PutObject" and status == "412":
            return "an earlier delivery already did this step (idempotency marker)"
        if operation == "GetObject" and status == "404":
            return "the idempotency marker is gone"
    return ""


def waterfall(trace: Trace, incoming_key: str, recipients_document: str = "") -> Waterfall:
    """The trace's rows; `recipients_document` is the key of RECIPIENTS_CONFIG (its misses are expected)."""
    entities = trace.entities()
    starts = [float(str(e.get("start_time", 0))) for _, e in entities]
    t0 = min(starts, default=0.0)
    t1 = max([float(str(e.get("end_time") or 0)) for _, e in entities] + starts, default=t0)
    span = max(t1 - t0, 1e-6)
    rows: list[Row] = []
    mine_depth: int | None = None
    for depth, entity in entities:
        start = float(str(entity.get("start_time", t0)))
        end = float(str(entity.get("end_time") or t1))
        annotations = entity.get("annotations")
        annotations = dict(annotations) if isinstance(annotations, dict) else {}
        if mine_depth is not None and depth <= mine_depth:
            mine_depth = None
        if entity.get("name") == "relay_mail" and annotations.get("incoming_key") == incoming_key:
            mine_depth = depth
        aws = entity.get("aws")
        aws = aws if isinstance(aws, dict) else {}
        http = entity.get("http")
        response = http.get("response", {}) if isinstance(http, dict) else {}
        status = str(response.get("status", "")) if isinstance(response, dict) else ""
        operation = str(aws.get("operation", ""))
        error = _error(entity)
        x = round((start - t0) / span * SCALE)
        rows.append(
            Row(
                depth=depth,
                name=str(entity.get("name", "")),
                operation=operation,
                start_ms=(start - t0) * 1000,
                duration_ms=(end - start) * 1000,
                x=x,
                width=max(2, min(SCALE - x, round((end - start) / span * SCALE))),
                error=error,
                status=status,
                expected=expected(operation, status, str(aws.get("key", "")), recipients_document)
                if error
                else "",
                annotations=annotations,
                mine=mine_depth is not None,
            )
        )
    return Waterfall(
        trace.trace_id, datetime.datetime.fromtimestamp(t0, datetime.UTC), (t1 - t0) * 1000, rows
    )


def waterfalls(daemon: Daemon | None, incoming_key: str, recipients_document: str = "") -> list[Waterfall]:
    if daemon is None:
        return []
    return [waterfall(t, incoming_key, recipients_document) for t in daemon.traces_of(incoming_key)]


class BadQuery(ValueError):
    pass


def conditions(query: str) -> list[tuple[str, str, str]] | str:
    """[(name, op, value)] for a filter expression, or the query itself as a bare word to look for."""
    query = query.strip()
    if "annotation." not in query:
        return query
    found = []
    for clause in _AND.split(query):
        match = _CONDITION.fullmatch(clause)
        if not match:
            raise BadQuery(f'not understood: {clause.strip()!r} (expected annotation.NAME = "value")')
        value = match["text"] if match["text"] is not None else match["bare"]
        found.append((match["name"], match["op"], value))
    return found


def _matches(annotations: dict[str, object], wanted: list[tuple[str, str, str]] | str) -> bool:
    if isinstance(wanted, str):
        return any(wanted.lower() in str(v).lower() for v in annotations.values())
    for name, op, value in wanted:
        actual = annotations.get(name)
        text = str(actual).lower() if isinstance(actual, bool) else str(actual)
        equal = actual is not None and text == value
        if equal != (op == "="):
            return False
    return True


@dataclass(frozen=True)
class Hit:
    trace_id: str
    time: datetime.datetime
    incoming_key: str
    annotations: dict[str, object]


def search(daemon: Daemon | None, query: str) -> list[Hit]:
    """The mails (relay_mail subsegments) whose annotations match, newest first. Raises `BadQuery`."""
    wanted = conditions(query)
    hits = []
    for trace in daemon.traces() if daemon else []:
        for mail in trace.mails():
            annotations = mail.get("annotations", {})
            if isinstance(annotations, dict) and (not query.strip() or _matches(annotations, wanted)):
                hits.append(
                    Hit(
                        trace.trace_id,
                        datetime.datetime.fromtimestamp(float(mail.get("start_time", 0)), datetime.UTC),
                        str(annotations.get("incoming_key", "")),
                        dict(annotations),
                    )
                )
    return sorted(hits, key=lambda h: h.time, reverse=True)
