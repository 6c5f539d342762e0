"""The trace waterfall and the annotation search, from the segments `sandbox.xray.Daemon` received.

The search takes the README's X-Ray filter expressions over annotations, e.g.
`annotation.outcome = "fallback" AND annotation.reason = "virus"`; a bare word matches any annotation's
value containing it.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

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


def waterfall(trace: Trace, incoming_key: str) -> Waterfall:
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
        http = entity.get("http")
        response = http.get("response", {}) if isinstance(http, dict) else {}
        x = round((start - t0) / span * SCALE)
        rows.append(
            Row(
                depth=depth,
                name=str(entity.get("name", "")),
                operation=str(aws.get("operation", "")) if isinstance(aws, dict) else "",
                start_ms=(start - t0) * 1000,
                duration_ms=(end - start) * 1000,
                x=x,
                width=max(2, min(SCALE - x, round((end - start) / span * SCALE))),
                error=_error(entity),
                status=str(response.get("status", "")) if isinstance(response, dict) else "",
                annotations=annotations,
                mine=mine_depth is not None,
            )
        )
    return Waterfall(
        trace.trace_id, datetime.datetime.fromtimestamp(t0, datetime.UTC), (t1 - t0) * 1000, rows
    )


def waterfalls(daemon: Daemon | None, incoming_key: str) -> list[Waterfall]:
    return [waterfall(t, incoming_key) for t in daemon.traces_of(incoming_key)] if daemon else []


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
