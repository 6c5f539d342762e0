"""The sandbox's evaluation of the alarms set on moto's alarms (sandbox/alarmstate.py), without moto: the
end-to-end test sees relayctl status report a firing alarm."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.alarmstate import AlarmMirror
from sandbox.status import AlarmState

pytestmark = pytest.mark.unit


class _CloudWatch:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def set_alarm_state(self, **kwargs: Any) -> None:
        self.calls.append((kwargs["AlarmName"], kwargs["StateValue"], kwargs["StateReason"]))


def _alarm(name: str, value: float | None, firing: bool = False) -> AlarmState:
    return AlarmState(name, "Metric", value, 5, "GreaterThanThreshold", firing)


def test_each_created_alarm_is_set_to_the_evaluation_once_per_change() -> None:
    cloudwatch = _CloudWatch()
    mirror = AlarmMirror(cloudwatch, {"dlq", "rate", "bounce"})
    mirror.update([_alarm("dlq", 0), _alarm("rate", 7, True), _alarm("bounce", None), _alarm("math", 1)])
    assert cloudwatch.calls == [
        ("dlq", "OK", "sandbox's evaluation of the current value: Metric = 0, GreaterThanThreshold 5"),
        ("rate", "ALARM", "sandbox's evaluation of the current value: Metric = 7, GreaterThanThreshold 5"),
        ("bounce", "INSUFFICIENT_DATA", "sandbox: Metric is not emulated"),
    ]  # "math" was never created in moto: left out
    cloudwatch.calls.clear()
    mirror.update([_alarm("dlq", 1), _alarm("rate", 3), _alarm("bounce", None)])
    assert cloudwatch.calls == [
        ("rate", "OK", "sandbox's evaluation of the current value: Metric = 3, GreaterThanThreshold 5")
    ]  # only what changed state: a new value alone sets nothing
