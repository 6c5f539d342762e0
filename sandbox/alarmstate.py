"""The sandbox's evaluation of the template's alarms, written onto the alarms it created in moto.

Nothing evaluates moto's CloudWatch alarms: left alone they keep the state they were created with (`OK`),
even with the DLQ full, and `relayctl status` against the sandbox would say so. The sandbox evaluates the
alarms' conditions itself (`sandbox.status`); this sets each alarm's state from that evaluation with
`SetAlarmState` (as an operator testing an alarm does in AWS), only when it changes, so relayctl and the
sandbox's own status agree. An alarm whose metric the sandbox cannot emulate is `INSUFFICIENT_DATA`, as in
CloudWatch without data points; an alarm on metric math was not created, and is left out.
"""

from __future__ import annotations

from typing import Any

from sandbox.status import AlarmState


def state_of(alarm: AlarmState) -> tuple[str, str]:
    """The CloudWatch state and reason for what the sandbox found."""
    if alarm.value is None:
        return "INSUFFICIENT_DATA", f"sandbox: {alarm.metric} is not emulated"
    figure = f"{alarm.metric} = {alarm.value:g}, {alarm.comparison} {alarm.threshold:g}"
    return ("ALARM" if alarm.firing else "OK"), f"sandbox's evaluation of the current value: {figure}"


class AlarmMirror:
    """Sets moto's alarms to the sandbox's evaluation; `update` after each evaluation."""

    def __init__(self, cloudwatch: Any, created: set[str]) -> None:
        self._cloudwatch = cloudwatch
        self._created = created  # the alarms the sandbox created in moto
        self._states: dict[str, str] = {}

    def update(self, alarms: list[AlarmState]) -> None:
        for alarm in alarms:
            if alarm.name not in self._created:
                continue
            state, reason = state_of(alarm)
            if self._states.get(alarm.name) == state:
                continue
            self._cloudwatch.set_alarm_state(AlarmName=alarm.name, StateValue=state, StateReason=reason)
            self._states[alarm.name] = state
