"""Mute and unmute committed under the alarm's version: decided again when another invocation changed
the alarm meanwhile, given up (to be retried) after a few attempts, never for an alarm not in the table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app import muting
from app.alarms.fingerprint import identify
from app.alarms.timeline import MUTE_LOG_MAX, DigestKind, Policy, State, Step, new_state
from app.aws.incidents import Conflict, Stored
from app.errors import RetryableError

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
IDENTITY = identify("plc-7@plant.example.com", ("ops@example.com",), "ALARM: door 2 open")


class Table:
    """One alarm in memory; the first `conflicts` commits lose to another writer, which mutes it."""

    def __init__(self, conflicts: int = 0) -> None:
        self.state: State = new_state(IDENTITY)
        self.version = 1
        self.conflicts = conflicts
        self.commits: list[tuple[Step, int | None]] = []

    def load(self, fingerprint: str) -> Stored | None:
        return Stored(self.state, self.version) if fingerprint == IDENTITY.fingerprint else None

    def commit(self, step: Step, version: int | None, now: datetime) -> int:
        self.commits.append((step, version))
        if version != self.version:
            raise AssertionError("committed against a version it did not read")
        if self.conflicts:
            self.conflicts -= 1
            other = muting.mute(
                Table(), IDENTITY.fingerprint, NOW + timedelta(hours=8), "other", Policy(), clock
            )
            self.state, self.version = other.state, self.version + 1
            raise Conflict(IDENTITY.fingerprint)
        self.state, self.version = step.state, self.version + 1
        return self.version


def clock() -> datetime:
    return NOW


def test_a_mute_lost_to_another_writer_is_decided_again_on_what_it_wrote(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(muting.time, "sleep", lambda seconds: None)
    table = Table(conflicts=2)
    changed = muting.mute(table, IDENTITY.fingerprint, NOW + timedelta(hours=1), "guard", Policy(), clock)
    assert [version for _, version in table.commits] == [1, 2, 3]
    assert changed.version == table.version == 4
    mute = changed.state.mute
    assert mute is not None
    assert (mute.by, mute.until, mute.last_by) == (
        "other",
        NOW + timedelta(hours=8),
        "guard",
    )  # extended, kept


def test_a_table_that_keeps_changing_is_a_retry_not_a_lost_mute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(muting.time, "sleep", lambda seconds: None)
    table = Table(conflicts=muting.ATTEMPTS)
    with pytest.raises(RetryableError, match="kept changing"):
        muting.mute(table, IDENTITY.fingerprint, NOW + timedelta(hours=1), "guard", Policy(), clock)
    assert len(table.commits) == muting.ATTEMPTS


def test_an_alarm_not_in_the_table_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="no alarm"):
        muting.mute(Table(), "0" * 32, NOW + timedelta(hours=1), "guard", Policy(), clock)


def test_an_unmute_queues_the_digest_and_hands_it_back_to_send() -> None:
    table = Table()
    muting.mute(table, IDENTITY.fingerprint, NOW + timedelta(hours=1), "guard", Policy(), clock)
    changed = muting.unmute(
        table, IDENTITY.fingerprint, "operator", Policy(), lambda: NOW + timedelta(minutes=5)
    )
    assert changed.state.mute is None
    (digest,) = changed.send
    assert digest.kind is DigestKind.MUTE_END
    assert digest.mute is not None
    assert (digest.mute.by, digest.mute.ended_by) == ("guard", "operator")
    assert changed.at == NOW + timedelta(minutes=5)


def test_every_change_is_logged_in_the_alarm_with_its_write_and_the_log_keeps_the_last_ones() -> None:
    table = Table()
    for n in range(MUTE_LOG_MAX + 3):
        until = NOW + timedelta(hours=1 + n)
        muting.mute(table, IDENTITY.fingerprint, until, f"guard {n}", Policy(), clock, "relayctl as me")
    muting.unmute(table, IDENTITY.fingerprint, "operator", Policy(), clock, "relayctl as you")
    log = table.state.mute_log
    assert len(log) == MUTE_LOG_MAX
    assert [(c.action, c.by) for c in log[-2:]] == [
        ("mute", f"guard {MUTE_LOG_MAX + 2}"),
        ("unmute", "operator"),
    ]
    assert (log[-1].until, log[-1].source) == (None, "relayctl as you")
    assert log[-2].until == NOW + timedelta(hours=MUTE_LOG_MAX + 3)
    for step, _ in table.commits:  # each entry went out in the write of its change
        assert step.state.mute_log[-1].at == NOW
    assert State.from_dict(table.state.to_dict()) == table.state
    older = {k: v for k, v in table.state.to_dict().items() if k != "mute_log"}  # written before the log
    assert State.from_dict(older).mute_log == ()


class RacedTable(Table):
    """Two POSTs of one page at once: the other one's write (the same nonce) lands first."""

    def commit(self, step: Step, version: int | None, now: datetime) -> int:
        if not self.commits:
            self.commits.append((step, version))
            self.state, self.version = step.state, self.version + 1  # theirs: the same change
            raise Conflict(IDENTITY.fingerprint)
        return super().commit(step, version, now)


def test_a_nonce_the_log_holds_changes_nothing_even_when_the_first_write_raced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(muting.time, "sleep", lambda seconds: None)
    until = NOW + timedelta(hours=1)
    raced = RacedTable()
    lost = muting.mute(raced, IDENTITY.fingerprint, until, "guard", Policy(), clock, "link", "n1")
    assert (lost.repeated, len(raced.commits), len(raced.state.mute_log)) == (True, 1, 1)
    table = Table()
    first = muting.mute(table, IDENTITY.fingerprint, until, "guard", Policy(), clock, "link", "n1")
    again = muting.mute(table, IDENTITY.fingerprint, until, "guard", Policy(), clock, "link", "n1")
    assert (first.repeated, again.repeated, again.record) == (False, True, None)
    assert len(table.commits) == 1
    other = muting.mute(table, IDENTITY.fingerprint, until, "guard", Policy(), clock, "link", "n2")
    assert not other.repeated
    assert len(table.commits) == 2
    assert [c.nonce for c in table.state.mute_log] == ["n1", "n2"]
