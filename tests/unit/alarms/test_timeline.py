"""The timeline of one alarm, rule by rule, and properties over random sequences of mails, ticks and
mutes: every mail reaches the recipients exactly once (relayed or listed), and the state survives its
dict form."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.alarms.fingerprint import Identity, identify
from app.alarms.timeline import (
    OUTBOX_RETRY,
    SEEN_MAX,
    Arrival,
    Attachment,
    Closing,
    Decision,
    DigestKind,
    Policy,
    Row,
    State,
    delivered,
    mute,
    on_mail,
    on_tick,
    pair,
    unmute,
)
from tests.support.alarms import RECIPIENTS, SENDER, T0, Relay, minutes

PROPERTIES = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
POLICY = Policy()
MINUTE = timedelta(minutes=1)
PUMP = "ALARM: Pump 3 discharge pressure {:.1f} bar"
PUMP_OK = "NORMAL: Pump 3 discharge pressure {:.1f} bar"


def who(subject: str) -> Identity:
    return identify(SENDER, RECIPIENTS, subject)


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def storm(relay: Relay, start: float, end: float, every: float = 1, template: str = PUMP) -> None:
    """One mail every `every` minutes in [start, end), a tick before each."""
    minute = start
    while minute < end:
        relay.tick(at(minute))
        relay.mail(template.format(9 + minute % 7 / 10), at(minute))
        minute += every


def only_state(relay: Relay) -> State:
    (state,) = relay.states.values()
    return state


# --- first mail, repeats, redeliveries ---------------------------------------------------------------


def test_the_first_mail_is_relayed_and_opens_an_incident() -> None:
    step = on_mail(None, who(PUMP.format(9.1)), Arrival("in/1", PUMP.format(9.1)), at(0.5), POLICY)
    assert step.decision is Decision.RELAY_FIRST
    assert step.row is None
    incident = step.state.incident
    assert incident is not None
    assert step.incident == incident.id == f"{step.state.fingerprint}-{int(at(0).timestamp()) + 30}"
    assert incident.first_key == "in/1"
    assert incident.closes_at == at(30.5)  # the quiet close
    assert step.state.due_at == at(30.5)
    assert step.seen is not None
    assert step.seen.decision is Decision.RELAY_FIRST
    assert step.send == ()


def test_repeats_fold_into_numbered_rows_and_schedule_the_first_digest() -> None:
    relay = Relay()
    relay.mail(PUMP.format(9.1), at(0))
    attachment = Attachment("snap.jpg", 2048, "image/jpeg", "attachments/abc/1/snap.jpg")
    step = relay.mail(PUMP.format(9.4), at(3), key="in/2", attachments=(attachment,))
    assert step.decision is Decision.FOLD
    assert step.row == Row(
        fingerprint=step.state.fingerprint,
        seq=1,
        incident=step.incident or "",
        incoming_key="in/2",
        received_at=at(3),
        subject=PUMP.format(9.4),
        attachments=(attachment,),
    )
    assert step.state.pending == 1
    assert step.state.incident is not None
    assert step.state.incident.next_digest_at == at(10)  # digest_after after the first mail
    assert step.state.incident.closes_at == at(33)  # quiet counts from the last mail
    assert step.state.due_at == at(10)


def test_a_redelivered_first_mail_is_relayed_again_and_changes_nothing() -> None:
    relay = Relay()
    relay.mail(PUMP.format(9.1), at(0), key="in/first")
    storm(relay, 1, 2 + SEEN_MAX)  # the first mail is out of the state's memory of recent mails
    before = only_state(relay)
    assert all(seen.key != "in/first" for seen in before.seen)
    again = on_mail(before, who(PUMP.format(9.1)), Arrival("in/first", PUMP.format(9.1)), at(40), POLICY)
    assert again.decision is Decision.RELAY_FIRST
    assert again.replay
    assert again.state == before
    assert again.row is None


def test_a_redelivered_repeat_changes_nothing() -> None:
    relay = Relay()
    relay.mail(PUMP.format(9.1), at(0))
    relay.mail(PUMP.format(9.2), at(1), key="in/repeat")
    before = only_state(relay)
    again = on_mail(before, who(PUMP.format(9.2)), Arrival("in/repeat", PUMP.format(9.2)), at(2), POLICY)
    assert (again.decision, again.replay, again.row, again.seen) == (Decision.FOLD, True, None, None)
    assert again.state == before


def test_a_decision_kept_by_the_storage_answers_a_late_redelivery() -> None:
    relay = Relay()
    relay.mail(PUMP.format(9.1), at(0))
    kept = relay.mail(PUMP.format(9.2), at(1), key="in/late").seen
    storm(relay, 2, 3 + SEEN_MAX)
    before = only_state(relay)
    assert all(seen.key != "in/late" for seen in before.seen)
    again = on_mail(before, who(PUMP.format(9.2)), Arrival("in/late", PUMP.format(9.2)), at(50), POLICY, kept)
    assert (again.decision, again.replay) == (Decision.FOLD, True)
    assert again.state == before


def test_a_mail_of_another_alarm_is_refused() -> None:
    state = on_mail(None, who(PUMP.format(9.1)), Arrival("in/1", PUMP.format(9.1)), at(0), POLICY).state
    with pytest.raises(ValueError, match="another alarm"):
        on_mail(state, who("ALARM: Pump 4 at 9.1 bar"), Arrival("in/2", "ALARM: Pump 4"), at(1), POLICY)


def test_times_must_be_aware_and_are_kept_to_the_second() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        on_mail(None, who("x"), Arrival("in/1", "x"), datetime(2026, 12, 4, 8, 0), POLICY)
    step = on_mail(None, who("x"), Arrival("in/1", "x"), at(0) + timedelta(microseconds=999_999), POLICY)
    assert step.state.incident is not None
    assert step.state.incident.opened_at == at(0)


@pytest.mark.parametrize(
    "changes",
    [
        {"digest_after": timedelta(seconds=30)},
        {"digest_max_interval": timedelta(minutes=5)},
        {"quiet": timedelta(0)},
        {"flap_transitions": 1},
        {"flap_window": timedelta(seconds=59)},
    ],
)
def test_a_policy_out_of_bounds_is_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        Policy(**changes)  # type: ignore[arg-type]


# --- digests -----------------------------------------------------------------------------------------


def test_digests_come_at_doubling_intervals_capped_by_the_maximum() -> None:
    relay = Relay()
    storm(relay, 0, 12 * 60)
    times = [(sent.at - T0) / MINUTE for sent in relay.digests()]
    assert times == [10, 30, 70, 150, 310, 550]  # gaps 10, 20, 40, 80, 160, then 240 (the cap)
    assert [len(sent.rows) for sent in relay.digests()] == [9, 20, 40, 80, 160, 240]
    state = only_state(relay)
    assert state.incident is not None
    assert state.incident.interval == 240 * 60


def test_a_digest_waits_for_repeats_after_a_pause() -> None:
    relay = Relay()
    storm(relay, 0, 12)  # digest at 10 lists 9 repeats; next interval 20 min
    relay.ticks(at(12), at(25))
    relay.mail(PUMP.format(9.9), at(25))  # within quiet: a repeat
    relay.ticks(at(25), at(35))
    assert [(sent.at - T0) / MINUTE for sent in relay.digests()] == [10, 30]
    assert [len(sent.rows) for sent in relay.digests()] == [9, 3]  # 10, 11 and 25


def test_no_digest_without_repeats() -> None:
    relay = Relay()
    relay.mail(PUMP.format(9.1), at(0))
    relay.ticks(at(0), at(120))
    assert relay.digests() == []
    assert only_state(relay).incident is None
    assert only_state(relay).due_at is None


def test_an_unacknowledged_digest_stays_queued_and_is_due_again() -> None:
    relay = Relay()
    storm(relay, 0, 5)
    state = only_state(relay)
    step = on_tick(state, at(10), POLICY)  # the caller crashes before sending it
    (digest,) = step.send
    assert digest.kind is DigestKind.REPEATS
    assert (digest.after, digest.through, digest.count) == (0, 4, 4)
    assert step.state.due_at == at(10) + OUTBOX_RETRY
    assert on_tick(step.state, at(11), POLICY).send == ()  # not yet due: nothing to send
    retry = on_tick(step.state, at(12), POLICY)
    assert retry.send == (digest,)
    assert retry.state == step.state
    done = delivered(retry.state, digest.id)
    assert done.outbox == ()
    assert delivered(done, digest.id) == done


def test_early_duplicate_and_stale_ticks_change_nothing() -> None:
    relay = Relay()
    storm(relay, 0, 5)
    state = only_state(relay)
    early = on_tick(state, at(9), POLICY)
    assert (early.state, early.send, early.closed) == (state, (), ())
    first = on_tick(state, at(10), POLICY)
    done = delivered(first.state, first.send[0].id)
    for moment in (at(10), at(10.5), at(3)):  # the same tick again, a duplicate, a stale one
        again = on_tick(done, moment, POLICY)
        assert (again.state, again.send, again.closed) == (done, (), ())


def test_a_late_tick_handles_what_fell_due_in_order() -> None:
    relay = Relay()
    for minute in range(5):
        relay.mail(PUMP.format(9 + minute / 10), at(minute))
    relay.tick(at(120))  # no tick for two hours: the digest at 10, then the quiet close at 34
    kinds = [(sent.kind, (sent.at - T0) / MINUTE, len(sent.rows)) for sent in relay.sent[1:]]
    assert kinds == [("repeats", 120, 4)]
    digest = relay.digests()[0].digest
    assert digest is not None
    assert digest.created_at == at(10)  # the digest is the one due at 10; the close found nothing left
    assert only_state(relay).incident is None


# --- recovery and quiet close ------------------------------------------------------------------------


def test_a_recovery_closes_the_incident_after_a_last_digest_of_what_was_left() -> None:
    relay = Relay()
    storm(relay, 0, 14)  # digest at 10 lists 9; 10..13 left
    step = relay.mail(PUMP_OK.format(6.1), at(14.5))
    assert step.decision is Decision.RELAY_RECOVERY
    assert step.recovery is not None
    assert step.recovery.folded == 13
    assert step.recovery.in_last_digest == 4
    assert step.recovery.held == 0
    assert step.recovery.lasted == timedelta(minutes=14, seconds=30)
    assert [closed.how for closed in step.closed] == [Closing.RECOVERY]
    assert step.state.incident is None
    assert [sent.kind for sent in relay.sent[-2:]] == ["last", "relay-recovery"]  # the digest first
    assert len(relay.sent[-2].rows) == 4


def test_a_recovery_with_nothing_left_adds_no_digest() -> None:
    relay = Relay()
    storm(relay, 0, 10)
    relay.tick(at(10))  # the digest lists all 9 repeats
    step = relay.mail(PUMP_OK.format(6.1), at(11))
    assert step.recovery is not None
    assert (step.recovery.folded, step.recovery.in_last_digest) == (9, 0)
    assert relay.sent[-1].kind == "relay-recovery"
    assert relay.sent[-2].kind == "repeats"


def test_a_recovery_without_an_incident_is_relayed_plain() -> None:
    relay = Relay()
    step = relay.mail(PUMP_OK.format(6.1), at(0))
    assert step.decision is Decision.RELAY_PLAIN
    assert step.state.incident is None
    assert step.recovery is None


def test_a_redelivered_recovery_is_relayed_again_with_the_same_line() -> None:
    relay = Relay()
    storm(relay, 0, 5)
    first = relay.mail(PUMP_OK.format(6.1), at(5), key="in/ok")
    before = only_state(relay)
    again = relay.mail(PUMP_OK.format(6.1), at(6), key="in/ok")
    assert again.replay
    assert (again.decision, again.recovery) == (Decision.RELAY_RECOVERY, first.recovery)
    assert again.state == before
    assert relay.relayed().count("in/ok") == 1  # the send marker keeps it once


def test_quiet_closes_after_a_last_digest() -> None:
    relay = Relay()
    storm(relay, 0, 75)  # digests at 10, 30 and 70; the next one would be due at 150
    relay.ticks(at(75), at(200))
    *repeats, last = relay.digests()
    assert [(sent.kind, (sent.at - T0) / MINUTE) for sent in repeats] == [
        ("repeats", 10),
        ("repeats", 30),
        ("repeats", 70),
    ]
    assert last.digest is not None
    assert (last.kind, last.at, len(last.rows), last.digest.closing) == ("last", at(104), 5, Closing.QUIET)
    assert only_state(relay).incident is None
    step = relay.mail(PUMP.format(9.1), at(201))
    assert step.decision is Decision.RELAY_FIRST


# --- pairing -----------------------------------------------------------------------------------------

DOWN = "[PRTG] SRV01 {} Down (Request timed out)"
UP = "[PRTG] SRV01 {} Up (OK)"


def test_pairing_prefers_the_recoverys_own_incident() -> None:
    relay = Relay()
    relay.mail(DOWN.format("Ping"), at(0))
    own = relay.mail("[PRTG] SRV01 HTTP Down", at(1))
    step = relay.mail("[PRTG] SRV01 HTTP Up", at(2))
    assert step.decision is Decision.RELAY_RECOVERY
    assert step.incident == own.incident


def test_a_recovery_pairs_with_the_one_open_incident_of_its_sender_group() -> None:
    relay = Relay()
    opened = relay.mail(DOWN.format("Ping"), at(0))
    step = relay.mail(UP.format("Ping"), at(5))  # its key lacks "request timed out"
    assert who(UP.format("Ping")).fingerprint != opened.state.fingerprint
    assert step.decision is Decision.RELAY_RECOVERY
    assert step.incident == opened.incident
    assert relay.states[opened.state.fingerprint].incident is None
    assert who(UP.format("Ping")).fingerprint not in relay.states  # decided on the paired state


def test_with_two_open_incidents_a_stray_recovery_is_relayed_plain() -> None:
    relay = Relay()
    relay.mail(DOWN.format("Ping"), at(0))
    relay.mail(DOWN.format("HTTP"), at(1))
    step = relay.mail("[PRTG] SRV01 Up (OK)", at(2))
    assert step.decision is Decision.RELAY_PLAIN
    assert sum(state.incident is not None for state in relay.states.values()) == 2


def test_another_sender_or_recipients_never_pair() -> None:
    relay = Relay()
    relay.mail(DOWN.format("Ping"), at(0))
    step = relay.mail(UP.format("Ping"), at(1), recipients=("ops@example.com",))
    assert step.decision is Decision.RELAY_PLAIN


def test_a_redelivered_paired_recovery_is_decided_where_it_was() -> None:
    relay = Relay()
    relay.mail(DOWN.format("Ping"), at(0))
    first = relay.mail(UP.format("Ping"), at(1), key="in/up")
    relay.mail(DOWN.format("HTTP"), at(2))  # now a different incident is the only open one
    again = relay.mail(UP.format("Ping"), at(3), key="in/up")
    assert again.replay
    assert (again.decision, again.incident) == (Decision.RELAY_RECOVERY, first.incident)


def test_pair_leaves_problem_mails_with_their_own_state() -> None:
    relay = Relay()
    relay.mail(DOWN.format("Ping"), at(0))
    (state,) = relay.states.values()
    assert pair(who("[PRTG] SRV01 DNS Down"), "in/x", None, [state]) is None


# --- flapping ----------------------------------------------------------------------------------------


def cycle(relay: Relay, minute: float) -> None:
    relay.mail("** PROBLEM Service Alert: web01/HTTP is CRITICAL **", at(minute))
    relay.mail("** RECOVERY Service Alert: web01/HTTP is OK **", at(minute + 2))


def test_the_fifth_opening_within_the_window_is_one_flapping_notice() -> None:
    relay = Relay()
    for minute in (0, 10, 20, 30):
        cycle(relay, minute)
    assert [sent.kind for sent in relay.sent] == ["relay-first", "relay-recovery"] * 4
    step = relay.mail("** PROBLEM Service Alert: web01/HTTP is CRITICAL **", at(40), key="in/tipping")
    assert step.decision is Decision.FLAPPING
    assert step.row is not None
    (notice,) = relay.digests("flapping")
    assert notice.digest is not None
    assert (notice.digest.cycles, notice.digest.window) == (5, 3600)
    assert [row.incoming_key for row in notice.rows] == ["in/tipping"]  # the mail it replaced is listed
    # everything now folds, recoveries too, and no second notice
    for minute in (42, 50, 52, 60):
        kind = "RECOVERY" if minute % 10 else "PROBLEM"
        state = "OK" if minute % 10 else "CRITICAL"
        assert (
            relay.mail(f"** {kind} Service Alert: web01/HTTP is {state} **", at(minute)).decision
            is Decision.FOLD
        )
    assert len(relay.digests("flapping")) == 1


def test_flapping_digests_come_every_window_and_stable_ends_it() -> None:
    relay = Relay()
    for minute in (0, 10, 20, 30):
        cycle(relay, minute)
    relay.mail("** PROBLEM Service Alert: web01/HTTP is CRITICAL **", at(40))
    for minute in range(41, 100):  # flapping on for an hour, a transition every 2 minutes
        relay.tick(at(minute))
        state = "OK" if minute % 2 else "CRITICAL"
        kind = "RECOVERY" if minute % 2 else "PROBLEM"
        assert (
            relay.mail(f"** {kind} Service Alert: web01/HTTP is {state} **", at(minute)).decision
            is Decision.FOLD
        )
    relay.ticks(at(100), at(170))
    repeats = relay.digests("repeats")
    assert [(sent.at - T0) / MINUTE for sent in repeats] == [100]  # an hour after flapping began
    assert repeats[0].digest is not None
    assert repeats[0].digest.flapping
    (stable,) = relay.digests("stable")
    assert stable.at == at(99 + 60)  # an hour after the last transition
    assert stable.digest is not None
    assert stable.digest.closing is Closing.STABLE
    state = only_state(relay)
    assert (state.incident, state.openings, state.last_kind) == (None, (), None)
    step = relay.mail("** PROBLEM Service Alert: web01/HTTP is CRITICAL **", at(171))
    assert step.decision is Decision.RELAY_FIRST  # afresh


def test_repeats_without_a_transition_end_flapping() -> None:
    relay = Relay()
    for minute in (0, 10, 20, 30):
        cycle(relay, minute)
    relay.mail("** PROBLEM Service Alert: web01/HTTP is CRITICAL **", at(40))
    storm(relay, 41, 120, template="** PROBLEM Service Alert: web01/HTTP is CRITICAL **")
    assert [sent.at for sent in relay.digests("stable")] == [at(100)]  # 60 min after the flapping mail
    later = [step.decision for step in relay.steps[-20:]]  # the mails from 100 to 119
    assert later == [Decision.RELAY_FIRST] + [Decision.FOLD] * 19  # the problem goes on: a new incident


def test_openings_spread_wider_than_the_window_are_not_flapping() -> None:
    relay = Relay()
    for minute in (0, 20, 40, 60, 80, 100):
        cycle(relay, minute)
    assert relay.digests("flapping") == []


# --- mute --------------------------------------------------------------------------------------------


def test_mute_folds_all_but_recoveries_and_its_end_counts_exactly() -> None:
    relay = Relay()
    storm(relay, 0, 5)  # first + 4 folded, not yet in a digest
    fingerprint = only_state(relay).fingerprint
    relay.mute(fingerprint, at(65), "alice@example.com", at(5))
    storm(relay, 5, 20)  # 15 folded while muted; the digest due at 10 does not go out
    assert relay.digests() == []
    recovery = relay.mail(PUMP_OK.format(6.0), at(20))
    assert recovery.decision is Decision.RELAY_RECOVERY  # a recovery still goes out at once
    assert recovery.recovery is not None
    assert (recovery.recovery.folded, recovery.recovery.held, recovery.recovery.in_last_digest) == (19, 19, 0)
    opened = relay.mail(PUMP.format(9.9), at(30))
    assert opened.decision is Decision.FOLD  # a new incident opens silently
    assert opened.state.incident is not None
    assert opened.state.incident.first_key == ""
    relay.ticks(at(30), at(70))
    (end,) = relay.digests()
    assert end.digest is not None
    assert (end.kind, end.at, end.digest.count) == ("mute_end", at(65), 20)
    assert end.digest.mute is not None
    assert end.digest.mute.folded == 16  # 15 repeats + the silent first, folded while muted
    assert end.digest.mute.ended_by is None
    assert len(end.rows) == 20  # the 4 from before the mute too


def test_muting_again_extends_and_a_shorter_mute_does_not_shorten() -> None:
    relay = Relay()
    relay.mail(PUMP.format(9.1), at(0))
    fingerprint = only_state(relay).fingerprint
    relay.mute(fingerprint, at(60), "alice@example.com", at(1))
    relay.mute(fingerprint, at(120), "bob@example.org", at(30))
    relay.mute(fingerprint, at(40), "carol@example.com", at(31))
    muted = only_state(relay).mute
    assert muted is not None
    assert (muted.by, muted.at, muted.until, muted.last_by) == (
        "alice@example.com",
        at(1),
        at(120),
        "carol@example.com",
    )
    relay.ticks(at(31), at(125))
    (end,) = relay.digests("mute_end")
    assert end.at == at(120)


def test_unmute_releases_the_digest_at_once() -> None:
    relay = Relay()
    storm(relay, 0, 3)
    fingerprint = only_state(relay).fingerprint
    relay.mute(fingerprint, at(480), "alice@example.com", at(3))
    storm(relay, 3, 9)
    step = relay.unmute(fingerprint, "operator", at(9))
    (end,) = step.send or relay.digests("mute_end")
    assert relay.sent[-1].kind == "mute_end"
    assert relay.sent[-1].at == at(9)
    assert end.mute is not None
    assert (end.mute.ended_by, end.mute.folded, end.count) == ("operator", 6, 8)
    assert only_state(relay).mute is None
    assert relay.unmute(fingerprint, "operator", at(10)).send == ()  # nothing to unmute
    step = relay.mail(PUMP.format(9.0), at(11))
    assert step.decision is Decision.FOLD  # the incident goes on, its digests again on schedule
    assert step.state.incident is not None
    assert step.state.incident.next_digest_at == at(19)  # digest_after after the mute's digest


def test_a_mute_without_an_incident_still_folds_the_next_alarm() -> None:
    relay = Relay()
    relay.mail(PUMP.format(9.1), at(0))
    relay.ticks(at(0), at(40))  # quiet close: no incident
    state = only_state(relay)
    assert state.incident is None
    relay.mute(state.fingerprint, at(100), "alice@example.com", at(41))
    assert relay.mail(PUMP.format(9.2), at(50)).decision is Decision.FOLD
    assert relay.mail(PUMP_OK.format(6.0), at(52)).decision is Decision.RELAY_RECOVERY


def test_a_mute_must_end_after_it_begins() -> None:
    state = on_mail(None, who("x"), Arrival("in/1", "x"), at(0), POLICY).state
    with pytest.raises(ValueError, match="end after"):
        mute(state, at(0), "alice@example.com", at(0), POLICY)
    assert unmute(state, "x", at(1), POLICY).state == state


# --- properties over random histories ----------------------------------------------------------------

SUBJECTS = (
    "ALARM: Pump 3 at {} bar",
    "NORMAL: Pump 3 at {} bar",
    "ALARM: Pump 4 at {} bar",
    "Pump 4 back to normal {}",
    "[PRTG] SRV01 Ping Down ({} ms)",
    "[PRTG] SRV01 Ping Up (OK)",
)
OPERATIONS = st.tuples(  # (what, which subject or how long a mute, a reading or which alarm)
    st.sampled_from(["mail"] * 8 + ["cycle", "cycle", "again", "tick", "tick", "mute", "unmute"]),
    st.integers(0, 180),
    st.integers(0, 240),
)
MAILED = [0, 0, 0, 1, 1, 2, 3, 4, 5]  # the first alarm and its recovery most
PAUSES = st.one_of(st.integers(0, 3), st.integers(0, 90))  # minutes: storms, and quiet spells


def check_round_trip(relay: Relay) -> None:
    for state in relay.states.values():
        stored = json.loads(json.dumps(state.to_dict()))
        assert State.from_dict(stored) == state
        assert stored["due_at"] == (int(state.due_at.timestamp()) if state.due_at else None)
        assert state.listed_through <= state.folded_through
        assert not state.pending or state.incident is not None or state.mute is not None
    for row in relay.rows.values():
        assert Row.from_dict(json.loads(json.dumps(row.to_dict()))) == row
    for seen in relay.seen.values():
        assert type(seen).from_dict(json.loads(json.dumps(seen.to_dict()))) == seen


@PROPERTIES
@given(st.lists(st.tuples(OPERATIONS, PAUSES), max_size=80), st.booleans())
def test_every_mail_is_relayed_or_listed_exactly_once(
    history: list[tuple[tuple[str, int, int], int]], short: bool
) -> None:
    policy = replace(POLICY, flap_transitions=3) if short else POLICY
    relay = Relay(policy)
    subjects: dict[str, str] = {}
    now = T0
    for (operation, argument, value), pause in history:
        now += timedelta(minutes=pause, seconds=value % 60)
        if operation == "mail":
            subject = SUBJECTS[MAILED[argument % len(MAILED)]].format(value)
            relay.mail(subject, now)
            subjects[relay.received[-1]] = subject
        elif operation == "cycle":  # a problem and its recovery: enough of them make it flap
            for subject in (SUBJECTS[0].format(value), SUBJECTS[1].format(value)):
                relay.mail(subject, now)
                subjects[relay.received[-1]] = subject
                now += timedelta(minutes=1)
        elif operation == "again" and relay.received:
            key = relay.received[argument % len(relay.received)]
            step = next(s for s in relay.steps if s.seen is not None and s.seen.key == key)
            again = relay.mail(subjects[key], now, key=key)
            assert again.replay
            assert (again.decision, again.incident, again.recovery) == (
                step.decision,
                step.incident,
                step.recovery,
            )
        elif operation == "tick":
            relay.tick(now)
        elif operation == "mute" and relay.states:
            fingerprint = sorted(relay.states)[value % len(relay.states)]
            relay.mute(fingerprint, now + timedelta(minutes=argument + 1), "alice@example.com", now)
        elif operation == "unmute" and relay.states:
            relay.unmute(sorted(relay.states)[value % len(relay.states)], "operator", now)
        check_round_trip(relay)
    for moment in minutes(now, now + timedelta(hours=5), timedelta(minutes=7)):  # let everything settle
        relay.tick(moment)
    check_round_trip(relay)
    assert all(state.due_at is None for state in relay.states.values())
    assert relay.accounted() == dict.fromkeys(relay.received, 1)
