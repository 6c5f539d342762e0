"""Queue depths, the oldest message's age, and which of the template's alarms would be firing now.

The alarms are the template's own (metric, threshold from the parameters, comparison); the sandbox
evaluates the current value once instead of over EvaluationPeriods, which is what an operator wants to
see while trying things out. Metrics moto cannot give are reported as not emulated.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from localaws.blueprint import Alarm, Blueprint
from sandbox.metrics import Datum, EmfCapture, MailFigures
from sandbox.metrics import metric_value as emf_metric_value
from sandbox.poller import PollerStats

COMPARISONS = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


@dataclass(frozen=True)
class QueueSnapshot:
    name: str
    visible: int
    in_flight: int
    oldest_age_seconds: float
    sent_timestamps: dict[str, float]  # message id -> SentTimestamp (s), of messages still in the queue


@dataclass(frozen=True)
class AlarmState:
    name: str
    metric: str
    value: float | None  # None: not emulated
    threshold: float
    comparison: str
    firing: bool


@dataclass(frozen=True)
class Status:
    time: float
    inbound: QueueSnapshot
    dead_letter: QueueSnapshot | None
    alarms: list[AlarmState]
    invocations: int
    errors: int
    mails: MailFigures | None = None  # from the EMF documents in the function's log lines

    def line(self) -> str:
        firing = [a.name for a in self.alarms if a.firing]
        dlq = f"DLQ {self.dead_letter.visible}" if self.dead_letter else "no DLQ"
        return (
            f"status   inbound {self.inbound.visible} waiting, {self.inbound.in_flight} in flight, "
            f"oldest {self.inbound.oldest_age_seconds:.0f} s; {dlq}; "
            f"{self.invocations} invocations, {self.errors} errors; alarms: "
            + (f"FIRING {', '.join(firing)}" if firing else f"none firing ({len(self.alarms)} watched)")
            + (f"; mails: {self.mails.text()}" if self.mails else "")
        )

    def to_json(self) -> str:
        document = asdict(self)
        for snapshot in (document["inbound"], document["dead_letter"]):
            if snapshot:
                snapshot.pop("sent_timestamps")
        return json.dumps(document, indent=2)


def moto_queue(account_id: str, region: str, name: str, now: float | None = None) -> QueueSnapshot:
    """Read moto's SQS backend in this process: SQS's API has no age of the oldest message."""
    from moto.sqs.models import sqs_backends

    now = time.time() if now is None else now
    queue = sqs_backends[account_id][region].queues[name]
    messages: list[Any] = list(queue._messages)  # moto types sent_timestamp as None
    timestamps = {m.id: sent / 1000 for m in messages if (sent := m.sent_timestamp) is not None}
    return QueueSnapshot(
        name=name,
        visible=sum(1 for m in messages if m.visible and not m.delayed),
        in_flight=sum(1 for m in messages if not m.visible),
        oldest_age_seconds=max((now - t for t in timestamps.values()), default=0.0),
        sent_timestamps=timestamps,
    )


def metric_value(
    alarm: Alarm,
    queues: dict[str, QueueSnapshot],
    stats: PollerStats,
    inbound_name: str,
    function_name: str,
    now: float,
    data: list[Datum] | None = None,
) -> float | None:
    since = now - alarm.period_seconds
    if data is not None and not alarm.namespace.startswith("AWS/"):  # the function's own (EMF) metrics
        return emf_metric_value(
            data, alarm.namespace, alarm.metric, alarm.dimensions, alarm.statistic, alarm.period_seconds, now
        )
    if alarm.namespace == "AWS/SQS":
        snapshot = queues.get(alarm.dimensions.get("QueueName", ""))
        if snapshot is None:
            return None
        if alarm.metric == "ApproximateNumberOfMessagesVisible":
            return float(snapshot.visible)
        if alarm.metric == "ApproximateNumberOfMessagesNotVisible":
            return float(snapshot.in_flight)
        if alarm.metric == "ApproximateAgeOfOldestMessage":
            return snapshot.oldest_age_seconds
        if alarm.metric == "NumberOfMessagesSent":
            sent = dict(snapshot.sent_timestamps)
            if snapshot.name == inbound_name:  # received messages are gone from moto: the poller saw them
                sent.update(stats.first_seen)
            return float(sum(1 for t in sent.values() if t >= since))
    if (
        alarm.namespace == "AWS/Lambda"
        and alarm.dimensions.get("FunctionName", function_name) == function_name
    ):
        if alarm.metric == "Errors":
            return float(sum(1 for t in stats.error_times if t >= since))
        if alarm.metric == "Throttles":
            return 0.0
    return None


def evaluate(
    blueprint: Blueprint,
    queues: dict[str, QueueSnapshot],
    stats: PollerStats,
    data: list[Datum] | None = None,
) -> list[AlarmState]:
    now = time.time()
    states = []
    for alarm in blueprint.alarms:
        value = metric_value(
            alarm, queues, stats, blueprint.inbound_queue.name, blueprint.function.name, now, data
        )
        compare = COMPARISONS.get(alarm.comparison)
        firing = value is not None and compare is not None and bool(compare(value, alarm.threshold))
        states.append(AlarmState(alarm.name, alarm.metric, value, alarm.threshold, alarm.comparison, firing))
    return states


def snapshot(blueprint: Blueprint, stats: PollerStats, emf: EmfCapture | None = None) -> Status:
    inbound_queue = blueprint.inbound_queue
    dlq_queue = blueprint.dead_letter_queue
    inbound = moto_queue(blueprint.account_id, blueprint.region, inbound_queue.name)
    dead_letter = moto_queue(blueprint.account_id, blueprint.region, dlq_queue.name) if dlq_queue else None
    queues = {inbound.name: inbound}
    if dead_letter:
        queues[dead_letter.name] = dead_letter
    return Status(
        time=time.time(),
        inbound=inbound,
        dead_letter=dead_letter,
        alarms=evaluate(blueprint, queues, stats, emf.data() if emf else None),
        invocations=stats.invocations,
        errors=stats.errors,
        mails=MailFigures.of(emf.documents()) if emf else None,
    )


def show(status_file: Path) -> str:
    """The `status` subcommand: the running sandbox's last status, for another terminal."""
    if not status_file.exists():
        return f"no sandbox status at {status_file}: is the sandbox running (make sandbox)?"
    document: dict[str, Any] = json.loads(status_file.read_text("utf-8"))
    age = time.time() - float(document["time"])
    lines = [f"status of {age:.0f} s ago"]
    inbound, dlq = document["inbound"], document["dead_letter"]
    lines.append(
        f"  inbound queue {inbound['name']}: {inbound['visible']} waiting, {inbound['in_flight']} in flight,"
        f" oldest message {inbound['oldest_age_seconds']:.0f} s"
    )
    if dlq:
        lines.append(f"  dead-letter queue {dlq['name']}: {dlq['visible']} messages")
    lines.append(f"  function: {document['invocations']} invocations, {document['errors']} errors")
    mails = document.get("mails")
    if mails is not None:
        lines.append(f"  mails (from the function's EMF metrics): {MailFigures(**mails).text()}")
    for alarm in document["alarms"]:
        value = "not emulated" if alarm["value"] is None else f"{alarm['value']:g}"
        state = "FIRING" if alarm["firing"] else "ok"
        lines.append(
            f"  alarm {alarm['name']}: {state} ({alarm['metric']} = {value}, "
            f"{alarm['comparison']} {alarm['threshold']:g})"
        )
    return "\n".join(lines)
