"""One mail's outcome -> CloudWatch metrics in the embedded metric format (EMF), with no API call.

The members returned by `emf` go into the mail's existing JSON log line. With the function's JSON log
format, Lambda writes every `extra` of a log record as a member of the line's root object, which is
where the EMF specification wants `_aws` and the members it references; CloudWatch Logs then extracts
the metrics itself, so the function needs neither `cloudwatch:PutMetricData` nor a call on the mail's
path. Specification:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

Dimensions are the outcome and the fallback reason only, never a key, an address or a Message-ID: every
distinct dimension value is a custom metric billed by the month, and dimensions are visible to anyone
who can read metrics. Pure: no AWS, no clock of its own (the caller passes the times).

`RelayLatency` runs from SES's receipt (the S3 event's `eventTime`) to the moment SES accepted the last
chunk or SNS the notice. `accepted()` marks that moment from inside the send and the publish; a mail whose
sends were all done by an earlier delivery marks nothing and reports no latency, so a redelivery cannot
count a mail's latency twice or stretch it to the retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import UTC, datetime

DEFAULT_NAMESPACE = "IoTMailRelay"
NO_REASON = "none"  # a dimension value must be a non-empty string; distributed mail has no reason
DIMENSION_SETS = (("Outcome",), ("Outcome", "Reason"))
UNITS = {
    "Mails": "Count",
    "Recipients": "Count",
    "Attachments": "Count",
    "AttachmentBytes": "Bytes",
    "RelayLatency": "Milliseconds",
    "ProcessingTime": "Milliseconds",
}
# Alarm folding's counts, without dimensions: one metric each for the whole relay (app/folding.py).
FOLDING_METRICS = ("Folded", "Digests", "Recoveries", "Flapping", "FoldingUnavailable", "Mutes")
UNITS |= dict.fromkeys(FOLDING_METRICS, "Count")
METRIC_NAMES = tuple(UNITS)

_accepted_at: ContextVar[datetime | None] = ContextVar("accepted_at", default=None)


@dataclass(frozen=True)
class MailMetrics:
    outcome: str
    reason: str | None
    recipients: int
    attachments: int
    attachment_bytes: int
    processing_ms: float
    relay_latency_ms: float | None  # None: nothing was sent or published by this delivery
    counts: Mapping[str, int] = field(default_factory=dict)  # FOLDING_METRICS this mail counts in


def emf(namespace: str, metrics: MailMetrics, now: datetime) -> dict[str, object]:
    """The EMF members to merge into the log line's root object."""
    values: dict[str, float] = {
        "Mails": 1,
        "Recipients": metrics.recipients,
        "Attachments": metrics.attachments,
        "AttachmentBytes": metrics.attachment_bytes,
        "ProcessingTime": round(metrics.processing_ms, 1),
    }
    if metrics.relay_latency_ms is not None:
        values["RelayLatency"] = round(metrics.relay_latency_ms, 1)
    mail = {
        "Namespace": namespace,
        "Dimensions": [list(s) for s in DIMENSION_SETS],
        "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in values],
    }
    directives = [mail, _counts_directive(namespace, metrics.counts)] if metrics.counts else [mail]
    return {
        "_aws": {"Timestamp": int(now.timestamp() * 1000), "CloudWatchMetrics": directives},
        "Outcome": metrics.outcome,
        "Reason": metrics.reason or NO_REASON,
        **values,
        **metrics.counts,
    }


def counts(namespace: str, values: Mapping[str, int], now: datetime) -> dict[str, object]:
    """EMF members for alarm folding's counts alone (a tick, a mute): one dimensionless metric each."""
    directive = _counts_directive(namespace, values)
    return {"_aws": {"Timestamp": int(now.timestamp() * 1000), "CloudWatchMetrics": [directive]}, **values}


def _counts_directive(namespace: str, values: Mapping[str, int]) -> dict[str, object]:
    unknown = set(values) - set(FOLDING_METRICS)
    if unknown:
        raise ValueError(f"not folding metrics: {sorted(unknown)}")
    metrics = [{"Name": name, "Unit": UNITS[name]} for name in values]
    return {"Namespace": namespace, "Dimensions": [[]], "Metrics": metrics}


def latency_ms(event_time: datetime | None, accepted_at: datetime | None) -> float | None:
    """Milliseconds from SES's receipt to the last acceptance; None when either end is unknown."""
    if event_time is None or accepted_at is None:
        return None
    return max(0.0, (accepted_at - event_time).total_seconds() * 1000)


def accepted(now: datetime | None = None) -> None:
    """SES accepted a chunk or SNS a notice for the mail being relayed: the latency's end, so far."""
    _accepted_at.set(now or datetime.now(UTC))


class Acceptance:
    """`with Acceptance() as a:` around one mail; afterwards `a.at` is its last `accepted()` moment."""

    def __init__(self) -> None:
        self.at: datetime | None = None
        self._token: Token[datetime | None] | None = None

    def __enter__(self) -> Acceptance:
        self._token = _accepted_at.set(None)
        return self

    def __exit__(self, *exc: object) -> None:
        self.at = _accepted_at.get()
        if self._token is not None:
            _accepted_at.reset(self._token)
