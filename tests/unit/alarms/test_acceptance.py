"""The acceptance scenarios of alarm folding and muting at the pure level, on a simulated clock:
a day-long storm, the monitoring tools' pairs, devices kept apart, recovery pairing, quiet close,
flapping, mute, and redeliveries. (The state's round trip through its dict form is a property in
test_timeline.py.)"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from app.alarms.timeline import Closing, Decision
from tests.support.alarms import RECIPIENTS, T0, Relay, minutes

MINUTE = timedelta(minutes=1)


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def when(relay: Relay) -> list[tuple[str, float]]:
    return [(sent.kind, (sent.at - T0) / MINUTE) for sent in relay.sent]


def test_a_day_of_one_alarm_a_minute_is_a_handful_of_mails_and_loses_none() -> None:
    relay = Relay()
    for number, moment in enumerate(minutes(at(0), at(24 * 60 - 1))):
        relay.tick(moment)
        pressure = 8 + number % 13 / 10
        relay.mail(f"ALARM: PT-101 discharge pressure {pressure:.1f} bar at {moment:%H:%M:%S}", moment)
    relay.ticks(at(24 * 60), at(26 * 60))  # the storm stops; the clock goes on

    assert len(relay.received) == 24 * 60
    per_recipient = relay.per_recipient()
    assert set(per_recipient) == {r.lower() for r in RECIPIENTS}
    assert all(count <= 12 for count in per_recipient.values()), per_recipient
    # relayed + listed == received, and every repeat in exactly one digest
    assert len(relay.relayed()) + len(relay.listed()) == len(relay.received)
    assert relay.accounted() == dict.fromkeys(relay.received, 1)
    assert relay.relayed() == [relay.received[0]]
    digests = relay.digests()
    assert [d.digest.count for d in digests if d.digest] == [len(d.rows) for d in digests]  # counts exact
    assert when(relay) == [
        ("relay-first", 0),
        *(("repeats", minute) for minute in (10, 30, 70, 150, 310, 550, 790, 1030, 1270)),
        ("last", 24 * 60 - 1 + 30),  # quiet after the last mail: what the last digest did not list
    ]


# Problem, repeats and recovery as the tools send them (see test_fingerprint.py for their sources).
TOOLS = {
    "zabbix": (
        "Problem: High CPU utilization (over 90% for 5m)",
        "Resolved in {minutes}m 0s: High CPU utilization (over 90% for 5m)",
    ),
    "nagios": (
        "** PROBLEM Service Alert: web01/HTTP is CRITICAL **",
        "** RECOVERY Service Alert: web01/HTTP is OK **",
    ),
    "icinga": ("[PROBLEM] ping4 on db-02 is CRITICAL!", "[RECOVERY] ping4 on db-02 is OK!"),
    "prtg": (
        "[PRTG Network Monitor] Sensor Ping 12 (Probe Device 192.168.1.10) Down (Ping: {minutes}00 ms)",
        "[PRTG Network Monitor] Sensor Ping 12 (Probe Device 192.168.1.10) Up (Ping: 3 ms)",
    ),
    "alertmanager": (
        "[FIRING:{minutes}] HighLatency api (critical)",
        "[RESOLVED] HighLatency api (critical)",
    ),
}


@pytest.mark.parametrize("tool", TOOLS)
def test_each_tools_repeats_fold_and_its_recovery_closes_them(tool: str) -> None:
    problem, recovery = TOOLS[tool]
    relay = Relay()
    decisions = [relay.mail(problem.format(minutes=m + 1), at(m)).decision for m in range(15)]
    step = relay.mail(recovery.format(minutes=16), at(16))
    assert decisions == [Decision.RELAY_FIRST] + [Decision.FOLD] * 14
    assert step.decision is Decision.RELAY_RECOVERY
    assert step.recovery is not None
    assert (step.recovery.folded, step.recovery.in_last_digest) == (14, 5)
    assert step.recovery.lasted == timedelta(minutes=16)
    assert len(relay.states) == 1  # one alarm, paired by its fingerprint
    # no tick ran: the mail at 10 found the digest due and sent it first
    assert when(relay) == [("relay-first", 0), ("repeats", 10), ("last", 16), ("relay-recovery", 16)]
    assert [len(sent.rows) for sent in relay.digests()] == [9, 5]
    assert relay.accounted() == dict.fromkeys(relay.received, 1)


def test_different_devices_do_not_fold_together() -> None:
    relay = Relay()
    devices = ("Pump 3", "Pump 4", "cam4", "cam5", "PLC-12", "10.0.0.7", "10.0.0.8")
    for minute in range(20):
        for device in devices:
            relay.mail(
                f"ALARM: {device} pressure {9 + minute / 10:.1f} bar at {at(minute):%H:%M:%S}", at(minute)
            )
    firsts = [sent for sent in relay.sent if sent.kind == "relay-first"]
    assert len(firsts) == len(devices) == len(relay.states)
    relay.ticks(at(20), at(90))
    for state in relay.states.values():  # each folded only its own repeats
        assert state.folded_through == 19
        assert state.listed_through == 19


def test_a_recovery_with_another_key_pairs_with_the_one_open_incident_of_its_sender() -> None:
    relay = Relay()
    opened = relay.mail("HI-HI ALARM: PT-101 discharge pressure HIGH 9.4 bar", at(0))
    relay.mail("HI-HI ALARM: PT-101 discharge pressure HIGH 9.6 bar", at(1))
    step = relay.mail("NORMAL: PT-101 discharge pressure 6.1 bar", at(5))  # no "hi-hi ... high": another key
    assert step.decision is Decision.RELAY_RECOVERY
    assert step.incident == opened.incident
    assert step.recovery is not None
    assert step.recovery.folded == 1
    # two open incidents of the same sender: a stray recovery cannot tell which, and is relayed plain
    relay.mail("[PRTG] SRV01 Ping Down (Request timed out)", at(10))
    relay.mail("[PRTG] SRV01 HTTP Down (Connection refused)", at(11))
    stray = relay.mail("[PRTG] SRV01 Ping Up (OK)", at(12))
    assert stray.decision is Decision.RELAY_PLAIN
    assert sum(state.incident is not None for state in relay.states.values()) == 2


def test_a_quiet_incident_closes_with_a_last_digest() -> None:
    relay = Relay()
    for minute in range(75):  # digests at 10, 30 and 70; the next would be at 150
        relay.tick(at(minute))
        relay.mail(
            f"Alarm: Motion at 2026-12-04 {8 + minute // 60:02}:{minute % 60:02}:07 on Channel 3", at(minute)
        )
    relay.ticks(at(75), at(200))
    assert when(relay)[-1] == ("last", 74 + 30)
    last = relay.sent[-1]
    assert last.digest is not None
    assert last.digest.closing is Closing.QUIET
    assert len(last.rows) == last.digest.count == 5
    (state,) = relay.states.values()
    assert state.incident is None
    assert state.due_at is None
    assert relay.accounted() == dict.fromkeys(relay.received, 1)


def test_the_fifth_cycle_sends_one_flapping_mail_and_an_hour_without_a_transition_ends_it() -> None:
    relay = Relay()
    problem, recovery = "** PROBLEM Host Alert: gw-3 is DOWN **", "** RECOVERY Host Alert: gw-3 is UP **"
    minute = 0
    for _ in range(8):  # eight down/up cycles, 6 minutes apart
        relay.tick(at(minute))
        relay.mail(problem, at(minute))
        relay.mail(recovery, at(minute + 3))
        minute += 6
    relay.ticks(at(minute), at(minute + 120))
    kinds = [kind for kind, _ in when(relay)]
    assert kinds[:8] == ["relay-first", "relay-recovery"] * 4
    assert kinds.count("flapping") == 1
    assert kinds[8] == "flapping"  # the 5th cycle's problem, instead of relaying it
    assert "relay-first" not in kinds[9:]
    assert "relay-recovery" not in kinds[9:]
    (stable,) = relay.digests("stable")
    assert stable.at == at(7 * 6 + 3 + 60)  # an hour after the last transition (the 8th recovery)
    assert relay.accounted() == dict.fromkeys(relay.received, 1)
    assert relay.mail(problem, at(minute + 121)).decision is Decision.RELAY_FIRST  # afresh


def test_a_mute_folds_all_but_recoveries_extends_counts_exactly_and_unmute_releases_it() -> None:
    relay = Relay()
    subject = "ALARM: Pump 3 at {:.1f} bar"
    relay.mail(subject.format(9.0), at(0))
    (fingerprint,) = relay.states
    relay.mute(fingerprint, at(60), "guard@example.com", at(1))  # 1 hour from the mail's link
    for minute in range(2, 50):
        relay.tick(at(minute))
        relay.mail(subject.format(9 + minute / 100), at(minute))
    assert when(relay) == [("relay-first", 0)]  # no digest while muted
    ok = relay.mail("NORMAL: Pump 3 at 6.0 bar", at(50))
    assert ok.decision is Decision.RELAY_RECOVERY  # relayed at once, mute or not
    relay.mute(fingerprint, at(480), "guard@example.com", at(51))  # 8 hours: extends
    for minute in range(52, 70):
        relay.tick(at(minute))
        relay.mail(subject.format(9 + minute / 100), at(minute))  # a new incident, opened silently
    relay.ticks(at(70), at(100))
    assert [kind for kind, _ in when(relay)] == ["relay-first", "relay-recovery"]
    relay.unmute(fingerprint, "operator", at(100))
    end = relay.sent[-1]
    assert end.digest is not None
    assert end.digest.mute is not None
    assert (end.kind, end.at) == ("mute_end", at(100))
    assert end.digest.mute.folded == end.digest.count == 48 + 18  # exactly what was folded
    assert (end.digest.mute.by, end.digest.mute.ended_by) == ("guard@example.com", "operator")
    assert relay.accounted() == dict.fromkeys(relay.received, 1)


def test_duplicate_ticks_and_redelivered_mails_change_nothing() -> None:
    clean, noisy = Relay(), Relay()
    problem = "Problem: Zabbix agent is not available (for {}m)"
    script: list[tuple[str, float, str]] = []
    for minute in range(0, 200, 2):
        script.append(("tick", minute, ""))
        script.append(("mail", minute, problem.format(minute % 9 + 1)))
        if minute == 120:
            script.append(("mail", minute + 1, "Resolved in 2h 1m: Zabbix agent is not available (for 3m)"))
    for what, minute, subject in script:
        key = f"in/{minute}/{subject}"
        for relay, times in ((clean, 1), (noisy, 2)):
            for _ in range(times):  # the noisy relay gets every tick and every mail twice
                if what == "tick":
                    relay.tick(at(minute))
                else:
                    relay.mail(subject, at(minute), key=key)
            if relay is noisy and what == "tick":
                relay.tick(at(minute - 1))  # and a stale tick
    clean.ticks(at(200), at(400))
    noisy.ticks(at(200), at(400))
    noisy.ticks(at(200), at(400))
    assert noisy.sent == clean.sent
    assert noisy.states == clean.states
    assert noisy.rows == clean.rows
    assert Counter(step.replay for step in noisy.steps) == {False: len(clean.steps), True: len(clean.steps)}
