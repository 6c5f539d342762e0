"""The sandbox reads the function's metrics the way CloudWatch does: from the EMF documents in its log
lines. Counts by outcome and reason, the median latency, and the rejected-mail alarm come from there."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app import metrics
from localaws.template import load
from sandbox.metrics import EmfCapture, MailFigures, extract, metric_value
from sandbox.poller import PollerStats
from sandbox.status import QueueSnapshot, Status, evaluate, show
from tests.support import TEMPLATE

pytestmark = pytest.mark.unit

NAMESPACE = "IoTMailRelay/sandbox"


def log_mail(outcome: str, reason: str | None = None, latency: float | None = 100.0) -> None:
    """A mail line as app.relay.process writes it."""
    document = metrics.emf(
        NAMESPACE,
        metrics.MailMetrics(outcome, reason, 1, 0, 0, 5.0, latency),
        datetime.now(UTC),
    )
    logging.getLogger("iot_mail_relay").info("mail %s", outcome, extra={"outcome": outcome, **document})


@pytest.fixture
def capture() -> Iterator[EmfCapture]:
    handler = EmfCapture().attach()
    yield handler
    handler.detach()


def test_counts_by_outcome_and_reason_and_the_median_latency(capture: EmfCapture) -> None:
    log_mail("distributed", latency=100.0)
    log_mail("distributed", latency=300.0)
    log_mail("fallback", "virus", latency=200.0)
    log_mail("retry", latency=None)
    logging.getLogger("iot_mail_relay").warning("record refused: not ours")  # no metrics: not counted
    figures = MailFigures.of(capture.documents())
    assert figures.outcomes == {"distributed": 2, "fallback": 1, "retry": 1}
    assert figures.reasons == {"virus": 1}
    assert figures.relay_latency_median_ms == 200.0
    assert figures.text() == "2 distributed, 1 fallback (virus 1), 1 retry, latency median 200 ms"
    assert MailFigures.of([]).text() == "no mails yet"


def test_each_dimension_set_is_its_own_series(capture: EmfCapture) -> None:
    log_mail("fallback", "rejected")
    data = extract(capture.documents()[0])
    series = {(d.metric, d.dimensions) for d in data if d.metric == "Mails"}
    assert series == {
        ("Mails", (("Outcome", "fallback"),)),
        ("Mails", (("Outcome", "fallback"), ("Reason", "rejected"))),
    }
    assert extract({"message": "no metrics"}) == []


def test_the_rejected_mail_alarm_fires_from_the_functions_metrics(capture: EmfCapture) -> None:
    blueprint = load(TEMPLATE, {})
    (alarm,) = [a for a in blueprint.alarms if a.logical_id == "RejectedMailAlarm"]
    assert alarm.namespace == NAMESPACE == blueprint.function.environment["METRICS_NAMESPACE"]
    inbound, dlq = blueprint.inbound_queue.name, blueprint.dead_letter_queue.name  # type: ignore[union-attr]
    queues = {q: QueueSnapshot(q, 0, 0, 0.0, {}) for q in (inbound, dlq)}

    def state() -> tuple[float | None, bool]:
        (found,) = [
            a for a in evaluate(blueprint, queues, PollerStats(), capture.data()) if a.name == alarm.name
        ]
        return found.value, found.firing

    log_mail("fallback", "no_recipients")
    assert state() == (0.0, False)
    log_mail("fallback", "rejected")
    assert state() == (1.0, True)
    assert metric_value(capture.data(), NAMESPACE, "Mails", {"Outcome": "fallback"}, "Sum", 900) == 2.0
    later = time.time() + 901
    assert metric_value(capture.data(), NAMESPACE, "Mails", {"Outcome": "fallback"}, "Sum", 900, later) == 0.0
    assert metric_value(capture.data(), NAMESPACE, "RelayLatency", {"Outcome": "x"}, "Average", 900) is None


def test_the_status_line_and_subcommand_show_the_figures(tmp_path: Path) -> None:
    figures = MailFigures({"distributed": 3, "fallback": 1}, {"spam": 1}, 110.0)
    quiet = QueueSnapshot("in", 0, 0, 0.0, {})
    status = Status(time.time(), quiet, None, [], 4, 0, figures)
    assert status.line().endswith("; mails: 3 distributed, 1 fallback (spam 1), latency median 110 ms")
    (tmp_path / "status.json").write_text(status.to_json())
    assert "mails (from the function's EMF metrics): 3 distributed, 1 fallback (spam 1)" in show(
        tmp_path / "status.json"
    )
