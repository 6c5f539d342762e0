"""The mail's metrics in CloudWatch's embedded metric format: valid for every outcome, latency from the
S3 event's time, and dimensions that never carry a key, an address or a Message-ID."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app import metrics
from app.outcomes import Outcome, Reason
from tests.support.emf import assert_valid_emf

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 29, 9, 30, 0, 250_000, tzinfo=UTC)
RECEIVED = NOW - timedelta(seconds=1, milliseconds=750)


def sample(
    outcome: Outcome, reason: Reason | None = None, latency: float | None = 812.0
) -> dict[str, object]:
    return metrics.emf(
        "IoTMailRelay/prod",
        metrics.MailMetrics(
            outcome=str(outcome),
            reason=str(reason) if reason else None,
            recipients=3,
            attachments=2,
            attachment_bytes=204_800,
            processing_ms=123.456,
            relay_latency_ms=latency,
        ),
        NOW,
    )


OUTCOMES = [
    (Outcome.DISTRIBUTED, None),
    *[(Outcome.FALLBACK, reason) for reason in Reason],
    (Outcome.RETRY, None),
]


@pytest.mark.parametrize(("outcome", "reason"), OUTCOMES)
def test_every_outcome_is_a_valid_emf_document(outcome: Outcome, reason: Reason | None) -> None:
    document = sample(outcome, reason)
    assert_valid_emf(document)
    assert document["Outcome"] == str(outcome)
    assert document["Reason"] == (str(reason) if reason else "none")


def test_the_directive_names_the_namespace_dimensions_metrics_and_units() -> None:
    document = sample(Outcome.DISTRIBUTED)
    aws = document["_aws"]
    assert isinstance(aws, dict)
    assert aws["Timestamp"] == int(NOW.timestamp() * 1000)
    (directive,) = aws["CloudWatchMetrics"]
    assert directive["Namespace"] == "IoTMailRelay/prod"
    assert directive["Dimensions"] == [["Outcome"], ["Outcome", "Reason"]]
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units == {
        "Mails": "Count",
        "Recipients": "Count",
        "Attachments": "Count",
        "AttachmentBytes": "Bytes",
        "ProcessingTime": "Milliseconds",
        "RelayLatency": "Milliseconds",
    }
    values = {name: document[name] for name in units}
    assert values == {
        "Mails": 1,
        "Recipients": 3,
        "Attachments": 2,
        "AttachmentBytes": 204_800,
        "ProcessingTime": 123.5,
        "RelayLatency": 812.0,
    }


def test_without_a_latency_the_metric_is_left_out_not_zero() -> None:
    document = sample(Outcome.DISTRIBUTED, latency=None)
    assert_valid_emf(document)
    aws = document["_aws"]
    assert isinstance(aws, dict)
    names = [m["Name"] for m in aws["CloudWatchMetrics"][0]["Metrics"]]
    assert "RelayLatency" not in names
    assert "RelayLatency" not in document


def test_relay_latency_runs_from_the_event_time_to_the_last_acceptance() -> None:
    assert metrics.latency_ms(RECEIVED, NOW) == pytest.approx(1750.0)
    assert metrics.latency_ms(None, NOW) is None
    assert metrics.latency_ms(RECEIVED, None) is None
    assert metrics.latency_ms(NOW, RECEIVED) == 0.0  # clocks a little apart never make it negative


def test_acceptance_keeps_the_last_moment_of_one_mail_only() -> None:
    metrics.accepted(RECEIVED)  # outside any mail: ignored by the next one
    with metrics.Acceptance() as first:
        metrics.accepted(RECEIVED + timedelta(milliseconds=100))
        metrics.accepted(NOW)
    with metrics.Acceptance() as second:
        pass
    assert first.at == NOW
    assert second.at is None  # nothing sent by this delivery (markers were done): no latency


def test_dimension_values_are_only_outcomes_and_reasons() -> None:
    allowed = {str(o) for o in Outcome} | {str(r) for r in Reason} | {"none"}
    for outcome, reason in OUTCOMES:
        document = sample(outcome, reason)
        aws = document["_aws"]
        assert isinstance(aws, dict)
        for dimension_set in aws["CloudWatchMetrics"][0]["Dimensions"]:
            for name in dimension_set:
                assert document[name] in allowed


@pytest.mark.parametrize(
    "broken",
    [
        {"_aws": {"CloudWatchMetrics": []}},  # no Timestamp
        {
            "_aws": {
                "Timestamp": 1,
                "CloudWatchMetrics": [{"Namespace": "x", "Dimensions": [], "Metrics": []}],
            }
        },
        {
            "_aws": {
                "Timestamp": 1,
                "CloudWatchMetrics": [{"Namespace": "x", "Dimensions": [["D"]], "Metrics": [{"Name": "M"}]}],
            },
            "D": 3,  # a dimension must be a string
            "M": 1,
        },
        {
            "_aws": {
                "Timestamp": 1,
                "CloudWatchMetrics": [
                    {"Namespace": "x", "Dimensions": [[]], "Metrics": [{"Name": "M", "Unit": "Mails"}]}
                ],
            },
            "M": 1,
        },
        {
            "_aws": {
                "Timestamp": 1,
                "CloudWatchMetrics": [{"Namespace": "x", "Dimensions": [[]], "Metrics": [{"Name": "M"}]}],
            },
            "M": "1",  # a metric must be numeric
        },
    ],
)
def test_the_checker_itself_rejects_documents_that_break_the_specification(broken: dict[str, object]) -> None:
    with pytest.raises(AssertionError):
        assert_valid_emf(broken)


def test_folding_counts_go_without_dimensions_beside_the_mails_own() -> None:
    document = metrics.emf(
        "IoTMailRelay/prod",
        metrics.MailMetrics(
            outcome=str(Outcome.FOLDED),
            reason=None,
            recipients=0,
            attachments=1,
            attachment_bytes=10,
            processing_ms=5.0,
            relay_latency_ms=None,
            counts={"Folded": 1, "Digests": 0},
        ),
        NOW,
    )
    assert_valid_emf(document)
    mail, folding = document["_aws"]["CloudWatchMetrics"]  # type: ignore[index]
    assert folding["Dimensions"] == [[]]
    assert [m["Name"] for m in folding["Metrics"]] == ["Folded", "Digests"]
    assert "Folded" not in [m["Name"] for m in mail["Metrics"]]
    assert (document["Folded"], document["Digests"], document["Mails"]) == (1, 0, 1)


def test_a_line_that_is_not_a_mail_counts_no_mail() -> None:
    document = metrics.counts("IoTMailRelay/prod", {"Digests": 2}, NOW)
    assert_valid_emf(document)
    assert "Mails" not in document
    assert document["Digests"] == 2
    with pytest.raises(ValueError, match="not folding metrics"):
        metrics.counts("IoTMailRelay/prod", {"Mails": 1}, NOW)
