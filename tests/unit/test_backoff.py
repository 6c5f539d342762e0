"""The retry schedule: seconds after the first failures, minutes later, never beyond SQS's limit."""

from __future__ import annotations

from typing import Any

import pytest

from app import backoff


def test_the_schedule_grows_with_every_failed_receive() -> None:
    delays = [backoff.delay(count) for count in range(1, 6)]
    assert delays == [10, 30, 120, 300, 600]
    assert delays == sorted(delays)


@pytest.mark.parametrize("count", [6, 7, 50, 10_000])
def test_later_receives_keep_the_last_step(count: int) -> None:
    assert backoff.delay(count) == backoff.SCHEDULE[-1] <= backoff.SQS_MAX_VISIBILITY


@pytest.mark.parametrize("count", [0, -3])
def test_a_nonsense_count_is_the_first_receive(count: int) -> None:
    assert backoff.delay(count) == backoff.SCHEDULE[0]


@pytest.mark.parametrize(
    ("record", "count"),
    [
        ({"attributes": {"ApproximateReceiveCount": "3"}}, 3),
        ({"attributes": {"ApproximateReceiveCount": "0"}}, 1),
        ({"attributes": {"ApproximateReceiveCount": "many"}}, 1),
        ({"attributes": {}}, 1),
        ({"attributes": None}, 1),
        ({}, 1),
    ],
)
def test_receive_count_comes_from_the_record(record: dict[str, Any], count: int) -> None:
    assert backoff.receive_count(record) == count


def test_a_permanent_failure_reaches_the_dlq_in_minutes_not_hours() -> None:
    max_receive_count = 5  # the template's redrive policy (tests/template checks the schedule against it)
    total = sum(backoff.delay(count) for count in range(1, max_receive_count + 1))
    assert 15 * 60 <= total <= 20 * 60
