"""The function's metrics as CloudWatch would extract them: the sandbox runs the handler in this process,
so a logging handler reads each of its log records, renders it the way Lambda's JSON log format writes
it, and keeps the embedded-metric-format (EMF) documents. Status and alarms are computed from those, so
the sandbox exercises the same path as a deployed stack: log line -> EMF -> metric.
"""

from __future__ import annotations

import json
import logging
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

FUNCTION_LOGGER = "iot_mail_relay"
# LogRecord attributes Lambda's JSON formatter leaves out (awslambdaric's reserved fields); every other
# attribute, each `extra` of the call included, becomes a member of the line's root object.
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "aws_request_id"}
STATISTICS: dict[str, Callable[[list[float]], float]] = {
    "Sum": sum,
    "Maximum": max,
    "Minimum": min,
    "Average": statistics.fmean,
    "SampleCount": len,
}


def lambda_json_line(record: logging.LogRecord) -> dict[str, Any]:
    """The JSON object Lambda writes for this record with LogFormat JSON, read back."""
    line: dict[str, Any] = {
        "timestamp": record.created,
        "level": record.levelname,
        "message": record.getMessage(),
        "logger": record.name,
    }
    line.update((k, v) for k, v in vars(record).items() if k not in _RESERVED and k not in line)
    document: dict[str, Any] = json.loads(json.dumps(line, default=str))
    return document


@dataclass(frozen=True)
class Datum:
    """One extracted value: a metric of one document under one of its dimension sets."""

    time: float  # seconds since the epoch (the document's Timestamp)
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    value: float


def extract(document: Mapping[str, Any]) -> list[Datum]:
    """The data points CloudWatch extracts from one EMF document (nothing from a line without `_aws`)."""
    metadata = document.get("_aws")
    if not isinstance(metadata, dict):
        return []
    when = float(metadata.get("Timestamp", 0)) / 1000
    data = []
    for directive in metadata.get("CloudWatchMetrics", []):
        for dimension_set in directive.get("Dimensions", []):
            dimensions = tuple((name, str(document[name])) for name in dimension_set)
            for metric in directive.get("Metrics", []):
                value = document.get(metric["Name"])
                for number in value if isinstance(value, list) else [value]:
                    if isinstance(number, int | float):
                        data.append(Datum(when, directive["Namespace"], metric["Name"], dimensions, number))
    return data


class EmfCapture(logging.Handler):
    """Keeps the EMF documents of the function's log records (thread-safe; the poller's thread writes)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self._lock = threading.Lock()
        self._documents: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = lambda_json_line(record)
        except Exception:  # a log line the sandbox cannot read must never fail the function
            self.handleError(record)
            return
        if "_aws" in line:
            with self._lock:
                self._documents.append(line)

    def attach(self) -> EmfCapture:
        logger = logging.getLogger(FUNCTION_LOGGER)
        logger.addHandler(self)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)  # what app.handler sets at import; the mail lines are INFO
        return self

    def detach(self) -> None:
        logging.getLogger(FUNCTION_LOGGER).removeHandler(self)

    def documents(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._documents)

    def data(self) -> list[Datum]:
        return [datum for document in self.documents() for datum in extract(document)]


@dataclass(frozen=True)
class MailFigures:
    """Counts by outcome and by fallback reason, and the median RelayLatency, from the EMF documents."""

    outcomes: dict[str, int]
    reasons: dict[str, int]  # of fallback mails
    relay_latency_median_ms: float | None

    @classmethod
    def of(cls, documents: Iterable[Mapping[str, Any]]) -> MailFigures:
        outcomes: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        latencies: list[float] = []
        for document in documents:
            outcome = str(document.get("Outcome", ""))
            outcomes[outcome] += int(document.get("Mails", 0))
            if outcome == "fallback":
                reasons[str(document.get("Reason", ""))] += int(document.get("Mails", 0))
            latency = document.get("RelayLatency")
            if isinstance(latency, int | float):
                latencies.append(float(latency))
        median = statistics.median(latencies) if latencies else None
        return cls(dict(sorted(outcomes.items())), dict(sorted(reasons.items())), median)

    def text(self) -> str:
        if not self.outcomes:
            return "no mails yet"
        parts = []
        for outcome, count in self.outcomes.items():
            part = f"{count} {outcome}"
            if outcome == "fallback" and self.reasons:
                part += " (" + ", ".join(f"{reason} {n}" for reason, n in self.reasons.items()) + ")"
            parts.append(part)
        latency = self.relay_latency_median_ms
        parts.append("latency median " + ("-" if latency is None else f"{latency:.0f} ms"))
        return ", ".join(parts)


def metric_value(
    data: Iterable[Datum],
    namespace: str,
    metric: str,
    dimensions: Mapping[str, str],
    statistic: str,
    period_seconds: int,
    now: float | None = None,
) -> float | None:
    """The alarm's statistic over its last period; 0 for a count with no data, None for no data at all."""
    now = time.time() if now is None else now
    wanted = tuple(sorted(dimensions.items()))
    values = [
        d.value
        for d in data
        if d.namespace == namespace
        and d.metric == metric
        and tuple(sorted(d.dimensions)) == wanted
        and d.time >= now - period_seconds
    ]
    compute = STATISTICS.get(statistic)
    if compute is None:
        return None
    if not values:
        return 0.0 if statistic in {"Sum", "SampleCount"} else None
    return float(compute(values))
