"""Scheduled rules, as EventBridge runs them: each rule's function is invoked with a scheduled event at
the rule's rate, in the sandbox's process (the alarm clock, every minute). `rate(...)` expressions only;
a `cron(...)` rule is reported and not run."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from localaws.blueprint import Blueprint, Schedule
from localaws.events import LambdaContext, scheduled_event

log = logging.getLogger("sandbox.schedule")

_RATE = re.compile(r"^rate\((?P<value>[1-9][0-9]*) (?P<unit>minutes?|hours?|days?)\)$")
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def period_seconds(expression: str) -> float | None:
    """Seconds between runs of a `rate(...)` expression; None for anything else (cron)."""
    found = _RATE.match(expression.strip())
    if found is None:
        return None
    return int(found["value"]) * _SECONDS[found["unit"].rstrip("s")]


class Scheduler:
    """One thread per rate rule: a run at start, then one every period, until `stop`."""

    def __init__(
        self, blueprint: Blueprint, handler: Callable[[str], Callable[[dict[str, Any], Any], Any]]
    ) -> None:
        self.blueprint = blueprint
        self.handler = handler  # function logical id -> its handler (imported on first use)
        self.runs: dict[str, int] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for schedule in self.blueprint.schedules:
            period = period_seconds(schedule.expression)
            if not schedule.enabled:
                continue
            if period is None:
                log.warning(
                    "%s: %s is not run by the sandbox (rate expressions only)",
                    schedule.logical_id,
                    schedule.expression,
                )
                continue
            thread = threading.Thread(
                target=self._run, args=(schedule, period), name=f"sandbox-{schedule.logical_id}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run(self, schedule: Schedule, period: float) -> None:
        b = self.blueprint
        function = b.functions[schedule.function_id]
        rule_arn = f"arn:aws:events:{b.region}:{b.account_id}:rule/{b.stack_name}-{schedule.logical_id}"
        while not self._stop.is_set():
            try:
                context = LambdaContext(
                    function.name, function.arn, function.memory_mb, function.timeout_seconds
                )
                self.handler(schedule.function_id)(scheduled_event(rule_arn, b.region), context)
                self.runs[schedule.logical_id] = self.runs.get(schedule.logical_id, 0) + 1
            except Exception:
                log.exception("%s: the scheduled invocation of %s failed", schedule.logical_id, function.name)
            self._stop.wait(period)
