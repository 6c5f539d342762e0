"""How long a failed record waits before SQS offers it again: seconds at first, minutes as it keeps failing.

Left alone, a record the function reports failed reappears only when the queue's visibility timeout
(1200 s, six times the function's timeout so no batch is redelivered while it is worked on) runs out:
one SES throttle would delay an alarm mail by 20 minutes and a permanent fault would take 100 minutes
to reach the dead-letter queue. So the function shortens it per record, by how often SQS has handed
the record out (its `ApproximateReceiveCount`): a transient failure is retried within seconds and a
record that fails the queue's 5 receives reaches the DLQ after about 18 minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SCHEDULE = (10, 30, 120, 300, 600)  # seconds of invisibility after the 1st, 2nd, 3rd, ... failed receive
SQS_MAX_VISIBILITY = 12 * 60 * 60  # SQS refuses a visibility timeout over 12 hours


def delay(receive_count: int) -> int:
    """Seconds to hide a record that failed on its `receive_count`-th receive (the last step repeats)."""
    step = min(max(receive_count, 1), len(SCHEDULE))
    return min(SCHEDULE[step - 1], SQS_MAX_VISIBILITY)


def receive_count(record: Mapping[str, Any]) -> int:
    """The record's ApproximateReceiveCount (1 when the event does not say, as in hand-written events)."""
    value = (record.get("attributes") or {}).get("ApproximateReceiveCount", "1")
    try:
        return max(int(value), 1)
    except (TypeError, ValueError):
        return 1
