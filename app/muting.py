"""Mute and unmute an alarm in the alarm table: the timeline's `mute`/`unmute`, committed under the alarm's
version and decided again when another invocation changed it meanwhile.

Three callers share it, and each does with the outcome what its role allows: the relay (`app.folding`,
which then sends what the change queued, an unmute's digest), the mute page behind the link URL
(`app.mute_page`: its role may read and write the alarm table and nothing else, so what a mute queued,
a digest that fell due a moment before, waits in the alarm's outbox for the clock's next tick), and
relayctl (which asks the relay for that tick at once). So this module sends nothing, and imports
neither the mail code nor the function's client factory: relayctl installs without them.

A mute names the fingerprint, not an incident: it holds for every mail of the alarm and all its
recipients until it ends, across incidents opening and closing underneath; a recovery still goes out.

Every change is recorded in the alarm's mute log (`State.mute_log`: who, when, until, from where), in
the same conditional write as the change itself, so the record and the mute cannot part. A mute page's
POST also records a digest of its page nonce: the same POST again (resent, or replayed within the
nonce's quarter of an hour) finds it and changes nothing (`Changed.repeated`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from app.alarms.timeline import Digest, MuteChange, Policy, State, Step, logged
from app.alarms.timeline import mute as timeline_mute
from app.alarms.timeline import unmute as timeline_unmute
from app.aws.incidents import Conflict, Stored
from app.errors import RetryableError

ATTEMPTS = 6  # reads and conditional writes of one alarm before giving up (RetryableError)


class Table(Protocol):
    """What muting needs of the alarm table (`app.aws.incidents.Incidents`)."""

    def load(self, fingerprint: str) -> Stored | None: ...

    def commit(self, step: Step, version: int | None, now: datetime) -> int: ...


@dataclass(frozen=True)
class Changed:
    """The alarm after a mute or an unmute, as committed, and the digests waiting to be sent."""

    state: State
    version: int
    at: datetime  # the time the change was decided by
    send: tuple[Digest, ...]  # the outbox: an unmute's digest, and any queued before it
    record: MuteChange | None  # the mute log's entry written; None when `repeated`
    repeated: bool = False  # the nonce had muted already: nothing was written


def mute(
    table: Table,
    fingerprint: str,
    until: datetime,
    by: str,
    policy: Policy,
    clock: Callable[[], datetime],
    source: str = "",
    nonce: str = "",
) -> Changed:
    """Fold every mail of the alarm but its recoveries until `until` (muting again extends, never
    shortens). `source` says where the request came from, for the mute log; a `nonce` the log holds
    already changes nothing. Raises LookupError for an alarm the table does not hold, ValueError when
    `until` is not after now, Unavailable when the table fails."""

    def change(state: State, now: datetime) -> Step:
        return timeline_mute(state, until, by, now, policy)

    return _change(table, fingerprint, clock, change, "mute", by, source, nonce)


def unmute(
    table: Table, fingerprint: str, by: str, policy: Policy, clock: Callable[[], datetime], source: str = ""
) -> Changed:
    """End the alarm's mute now; its digest (what it folded) is queued in the outbox."""

    def change(state: State, now: datetime) -> Step:
        return timeline_unmute(state, by, now, policy)

    return _change(table, fingerprint, clock, change, "unmute", by, source, "")


def _change(
    table: Table,
    fingerprint: str,
    clock: Callable[[], datetime],
    change: Callable[[State, datetime], Step],
    action: str,
    by: str,
    source: str,
    nonce: str,
) -> Changed:
    for attempt in range(ATTEMPTS):
        stored = table.load(fingerprint)
        if stored is None:
            raise LookupError(f"no alarm {fingerprint}")
        now = clock()
        if nonce and any(entry.nonce == nonce for entry in stored.state.mute_log):
            return Changed(stored.state, stored.version, now, (), None, repeated=True)
        step = change(stored.state, now)
        mute = step.state.mute
        record = MuteChange(
            action, by, now.replace(microsecond=0), mute.until if mute else None, source, nonce
        )
        step = replace(step, state=logged(step.state, record))
        try:
            version = table.commit(step, stored.version, now)
        except Conflict:
            time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not a secret
            continue
        return Changed(step.state, version, now, step.send, record)
    raise RetryableError(f"the alarm {fingerprint} kept changing under {ATTEMPTS} attempts")
