"""Which mails are one alarm: subject keys of real monitoring subjects, each masking rule, recoveries,
the route's overrides, and properties of the key over generated subjects."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.alarms.fingerprint import (
    MAX_SUBJECT_CHARS,
    STATE_WORDS,
    identify,
    is_recovery,
    override_for,
    subject_key,
)
from app.routing.document import Override

PROPERTIES = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Default subjects of the monitoring tools, as they render: (problem, its repeat, its recovery).
PAIRS = {
    # Zabbix 5.0+ media type "Email" message templates: "Problem: {EVENT.NAME}" and
    # "Resolved in {EVENT.DURATION}: {EVENT.NAME}"; before 5.0 the recovery was "Resolved: {EVENT.NAME}".
    "zabbix": (
        "Problem: High CPU utilization (over 90% for 5m)",
        "Problem: High CPU utilization (over 90% for 5m)",
        "Resolved in 5m 3s: High CPU utilization (over 90% for 5m)",
    ),
    "zabbix-old": (
        "Problem: Interface eth0(): Link down",
        "Problem: Interface eth0(): Link down",
        "Resolved: Interface eth0(): Link down",
    ),
    "zabbix-days": (
        "Problem: /: Disk space is critically low (used > 90%)",
        "Problem: /: Disk space is critically low (used > 90%)",
        "Resolved in 1d 2h 3m: /: Disk space is critically low (used > 90%)",
    ),
    # Nagios notify-service-by-email / notify-host-by-email:
    # "** $NOTIFICATIONTYPE$ Service Alert: $HOSTALIAS$/$SERVICEDESC$ is $SERVICESTATE$ **"
    "nagios-service": (
        "** PROBLEM Service Alert: web01/HTTP is CRITICAL **",
        "** PROBLEM Service Alert: web01/HTTP is WARNING **",
        "** RECOVERY Service Alert: web01/HTTP is OK **",
    ),
    "nagios-host": (
        "** PROBLEM Host Alert: web01 is DOWN **",
        "** PROBLEM Host Alert: web01 is DOWN **",
        "** RECOVERY Host Alert: web01 is UP **",
    ),
    # Icinga 2 mail-service-notification.sh: "[$NOTIFICATIONTYPE] $SERVICEDISPLAYNAME on $HOSTDISPLAYNAME
    # is $SERVICESTATE!"
    "icinga": (
        "[PROBLEM] ping4 on db-02 is CRITICAL!",
        "[PROBLEM] ping4 on db-02 is CRITICAL!",
        "[RECOVERY] ping4 on db-02 is OK!",
    ),
    # PRTG "[%sitename] %device %name %status %down (%message)", its message carrying the reading.
    "prtg": (
        "[PRTG Network Monitor] Sensor Ping 12 (Probe Device 192.168.1.10) Down (Ping: 12 ms)",
        "[PRTG Network Monitor] Sensor Ping 12 (Probe Device 192.168.1.10) Down (Ping: 2000 ms)",
        "[PRTG Network Monitor] Sensor Ping 12 (Probe Device 192.168.1.10) Up (Ping: 3 ms)",
    ),
    # Alertmanager's default email.default.subject: "[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:
    # {{ .Alerts.Firing | len }}{{ end }}] {{ .GroupLabels.SortedPairs.Values | join " " }} (...)".
    "alertmanager": (
        "[FIRING:1] HighLatency api (eu-west-1 critical)",
        "[FIRING:3] HighLatency api (eu-west-1 critical)",
        "[RESOLVED] HighLatency api (eu-west-1 critical)",
    ),
    # A SCADA pressure alarm with its reading and time; cleared by the same text.
    "scada": (
        "ALARM: PT-101 discharge pressure 9.4 bar at 12:04:33",
        "ALARM: PT-101 discharge pressure 9.7 bar at 12:05:33",
        "CLEARED: PT-101 discharge pressure 6.1 bar at 12:30:02",
    ),
    # Camera / NVR motion mails (time stamp in the subject).
    "nvr": (
        "Alarm: Motion at 2025-11-08 10:30:45 on Channel 3",
        "Alarm: Motion at 2025-11-08 10:31:02 on Channel 3",
        "Alarm cleared: Motion at 2025-11-08 10:45:00 on Channel 3",
    ),
}


@pytest.mark.parametrize("name", PAIRS)
def test_real_subjects_fold_and_pair(name: str) -> None:
    problem, repeat, recovery = PAIRS[name]
    assert subject_key(problem) == subject_key(repeat) == subject_key(recovery)
    assert not is_recovery(problem)
    assert not is_recovery(repeat)
    assert is_recovery(recovery)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("ALARM: Pump 3 at 9.1 bar 12:04:33", "ALARM: Pump 4 at 9.1 bar 12:04:33"),
        ("Motion Detection Alarm on Channel 3", "Motion Detection Alarm on Channel 4"),
        ("[Front Door cam4] Motion Detected", "[Front Door cam5] Motion Detected"),
        ("ALARM: PT-101 discharge pressure 9.4 bar", "ALARM: PT-102 discharge pressure 9.4 bar"),
        ("** PROBLEM Host Alert: web01 is DOWN **", "** PROBLEM Host Alert: web02 is DOWN **"),
        ("Sensor Ping (Probe Device 192.168.1.10) Down", "Sensor Ping (Probe Device 192.168.1.11) Down"),
        ("Modbus 10.0.0.7:502 timeout", "Modbus 10.0.0.7:503 timeout"),
        ("Problem: Interface eth0(): Link down", "Problem: Interface eth1(): Link down"),
        ("Switch 00:1a:2b:3c:4d:5e port flapping", "Switch 00:1a:2b:3c:4d:5f port flapping"),
        ("SNMP trap 1.3.6.1.4.1.9.9.41 received", "SNMP trap 1.3.6.1.4.1.9.9.42 received"),
        ("Problem: High CPU on web01.example.com", "Problem: High CPU on web02.example.com"),
        ("Pump 3 at 9.1 bar", "Pump 3 at 9.1 bar failure"),
        ("Temp > 30", "Temp < 30"),
        ("Zone 3 A open", "Zone 4 A open"),
        ("Sensor 3 may fail", "Sensor 4 may fail"),
        ("Störung: Pumpe 3", "Störung: Pumpe 4"),
    ],
)
def test_identifiers_keep_alarms_apart(one: str, other: str) -> None:
    assert subject_key(one) != subject_key(other)


# Each masking rule: the two subjects differ only in a reading, so they are one alarm.
@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Pump 3 at 9.1 bar", "Pump 3 at 9.4 bar"),  # decimal with a unit after a space
        ("Pump 3 at 9,1", "Pump 3 at 9,4"),  # decimal comma
        ("Pump 3 at 12:04", "Pump 3 at 12:05"),  # time
        ("Pump 3 at 12:04:33", "Pump 3 at 23:59:01"),
        ("Pump 3 at 12:04:33.250", "Pump 3 at 12:04:34.999"),
        ("Pump 3 at 9:45 PM", "Pump 3 at 10:02 AM"),
        ("Pump 3 at 12:04:33 +0100", "Pump 3 at 12:05:00 +0100"),
        ("Pump 3 on 2026-12-04", "Pump 3 on 2026-12-05"),  # ISO date
        ("Pump 3 at 2026-12-04T12:04:33Z", "Pump 3 at 2026-12-05T01:00:00+01:00"),  # ISO time stamp
        ("Pump 3 at 20261204T120433Z", "Pump 3 at 20261205T000001Z"),
        ("Pump 3 on 2026/12/04", "Pump 3 on 2026/12/05"),
        ("Pump 3 on 04.12.2026", "Pump 3 on 05.12.2026"),  # numeric dates
        ("Pump 3 on 04-12-2026", "Pump 3 on 05-12-2026"),
        ("Pump 3 on 12/04/2026", "Pump 3 on 12/05/2026"),
        ("Pump 3 on 12/04/26", "Pump 3 on 12/05/26"),
        ("Pump 3 on Dec 4", "Pump 3 on Dec 5"),  # named dates
        ("Pump 3 on December 4th, 2026", "Pump 3 on January 1st, 2027"),
        ("Pump 3 on 4 December 2026", "Pump 3 on 5 December 2026"),
        ("Pump 3 in Dec 2026", "Pump 3 in Jan 2027"),
        ("Pump 3 Thu, 04 Dec 2026 12:04:33 +0000", "Pump 3 Fri, 05 Dec 2026 00:00:01 +0000"),
        ("Pump 3 Thu 12:04", "Pump 3 Fri 08:00"),
        (
            "Pump 3 event 123e4567-e89b-12d3-a456-426614174000",
            "Pump 3 event 9f86d081-884c-7d65-9a2f-eaa0c55ad015",
        ),
        ("Pump 3 trace 9f86d081884c7d65", "Pump 3 trace 0a1b2c3d4e5f6789"),  # hex id
        ("Pump 3 for 5m", "Pump 3 for 15m"),  # glued durations
        ("Pump 3 for 1h30m", "Pump 3 for 2h5m"),
        ("Pump 3 in 250ms", "Pump 3 in 12ms"),
        ("Pump 3 load 90%", "Pump 3 load 100 %"),  # percent
        ("Pump 3 at 23°C", "Pump 3 at 24 °C"),  # degrees
        ("Pump 3 ping 12 ms", "Pump 3 ping 2000 ms"),  # units after a space
        ("Pump 3 sent 3.2 kB", "Pump 3 sent 12 MB"),
        ("Pump 3 at 1450 rpm", "Pump 3 at 1500 rpm"),
        ("Pump 3 count 123456", "Pump 3 count 123457"),  # long numbers
        ("Pump 3 at 1764842673", "Pump 3 at 1764842733"),  # epoch
        ("Pump 3 value=23", "Pump 3 value=24"),  # after =
        ("Pump 3 value = 23.5", "Pump 3 value = 7"),
        ("Pump 3 Ping: 12", "Pump 3 Ping: 13"),  # after a colon and a space
    ],
)
def test_readings_are_masked(one: str, other: str) -> None:
    assert subject_key(one) == subject_key(other)
    assert "3" in subject_key(one).split()  # the pump's number survives every rule


@pytest.mark.parametrize(
    ("subject", "key"),
    [
        ("** PROBLEM Service Alert: web01/HTTP is CRITICAL **", "service web01/http is"),
        ("[FIRING:2] HighLatency api", "highlatency api"),
        (
            "✅ Resolved in 5m 3s: Zabbix agent is not available (for 3m)",
            "zabbix agent is not available for #",
        ),
        ("Updated problem in 1h 2m: Zabbix agent is not available", "updated zabbix agent is not available"),
        ("[PRTG] SRV01 Ping Down ended (now: Up) (OK)", "prtg srv01 ping"),
        ("[PRTG] SRV01 Ping Warning (before: Down)", "prtg srv01 ping"),
        ("Pump 3 at 9.1 bar 12:04:33", "pump 3 at #"),
        ("  PUMP   3\tat\u00a0 9.1 bar ", "pump 3 at #"),
        ("Backup-UP-3 ok", "backup-up-3"),  # a state word inside an identifier stays
        ("mac 00:11:22:33:44:55", "mac 00 11 22 33 44 55"),  # kept (not a time), split into words
        ("230 V on line 3", "230 v on line 3"),  # one letter after a space is not a unit
        ("fw 2.1.14 on PLC-12", "fw 2.1.14 on plc-12"),  # dotted numbers of three parts stay
    ],
)
def test_keys(subject: str, key: str) -> None:
    assert subject_key(subject) == key


@pytest.mark.parametrize(
    ("subject", "recovery"),
    [
        ("Problem: Cluster health is not OK", False),  # `not` before a recovery word
        ("Problem: Host is NOT UP", False),
        ("Resolved: Interface eth0: Link down", True),  # a recovery word wins over problem words
        ("ALARM CLEARED: Tank 3 level", True),
        ("[Billing API] OK: Checkout errors is no longer in alert status", True),
        ("[PRTG] SRV01 Ping Down ended (now: Up)", True),
        ("[PRTG] SRV01 Ping Down ended", True),  # PRTG's `ended` after a problem word
        ("[PRTG] SRV01 Ping Down ended (now: Warning)", False),  # ... unless it goes on with a problem
        ("[PRTG] SRV01 Ping Warning (before: Down)", False),
        ("[PRTG] SRV01 Ping Up (before: Down)", True),
        ("UPS 3 on battery", False),  # whole words only
        ("Backup-UP-3 failed", False),
        ("Temperature back to normal", True),
        ("Motion detected", False),
    ],
)
def test_recovery_words(subject: str, recovery: bool) -> None:
    assert is_recovery(subject) is recovery


def test_the_fingerprint_is_sender_recipients_and_key() -> None:
    base = identify("PLC-7@Plant.example.com", ["b@example.org", "A@example.com"], "Pump 3 at 9.1 bar")
    assert base.sender == "plc-7@plant.example.com"
    assert base.recipients == ("a@example.com", "b@example.org")
    assert base == identify(
        "plc-7@plant.example.com", ["a@example.com", "B@example.org"], "PUMP 3 at 9.4 bar"
    )
    assert len(base.fingerprint) == 32
    assert re.fullmatch("[0-9a-f]{32}", base.fingerprint)
    others = [
        identify("plc-8@plant.example.com", ["a@example.com", "b@example.org"], "Pump 3 at 9.1 bar"),
        identify("plc-7@plant.example.com", ["a@example.com"], "Pump 3 at 9.1 bar"),
        identify("plc-7@plant.example.com", ["a@example.com", "b@example.org"], "Pump 4 at 9.1 bar"),
    ]
    assert len({base.fingerprint, *(o.fingerprint for o in others)}) == 4
    assert others[2].group == base.group  # same sender and recipients: one sender group
    assert len({base.group, others[0].group, others[1].group}) == 3
    assert identify(None, ["a@example.com"], "x").sender == ""


def test_a_recovery_shares_the_problems_fingerprint() -> None:
    problem, _, recovery = PAIRS["nagios-service"]
    first = identify("nagios@example.com", ["ops@example.com"], problem)
    last = identify("nagios@example.com", ["ops@example.com"], recovery)
    assert first.fingerprint == last.fingerprint
    assert (first.recovery, last.recovery) == (False, True)


def test_a_key_pattern_names_the_alarm() -> None:
    rule = Override(key=re.compile(r"^(?P<key>\S+ \S+)", re.IGNORECASE))
    one = identify("s@x.example", ["a@example.com"], "Kamera 3 Bewegung 12345", rule)
    assert one.key == "kamera 3"
    assert (
        one.fingerprint
        == identify("s@x.example", ["a@example.com"], "KAMERA 3 Alarm 99999", rule).fingerprint
    )
    # no match: the default key applies
    assert identify("s@x.example", ["a@example.com"], "x", rule).key == subject_key("x")


def test_a_key_pattern_with_an_empty_group_falls_back() -> None:
    rule = Override(key=re.compile(r"^(?P<key>\d*)"))
    assert identify("s@x.example", ["a@example.com"], "Pump 3 at 9.1 bar", rule).key == "pump 3 at #"


def test_a_recovery_pattern_alone_decides() -> None:
    rule = Override(recovery=re.compile(r"\bgeht\b", re.IGNORECASE))
    assert identify("s@x.example", ["a@example.com"], "Störung geht: Pumpe 3", rule).recovery
    assert not identify("s@x.example", ["a@example.com"], "RESOLVED: Pumpe 3", rule).recovery


def test_patterns_see_a_bounded_subject() -> None:
    rule = Override(key=re.compile(r"(?P<key>z)$"))
    long = "a" * MAX_SUBJECT_CHARS + "z"
    assert identify("s@x.example", ["a@example.com"], long, rule).key == subject_key(long[:MAX_SUBJECT_CHARS])
    assert len(subject_key("pump " * 1000)) < MAX_SUBJECT_CHARS


def test_the_first_scope_with_a_rule_wins() -> None:
    route, group = Override(key=re.compile("(?P<key>r)")), Override(key=re.compile("(?P<key>g)"))
    alarms = {"cam@relay.example.com": route, "lobby": group}
    assert override_for(alarms, ["CAM@relay.example.com", "lobby"]) is route
    assert override_for(alarms, ["other@relay.example.com", "Lobby"]) is group
    assert override_for(alarms, ["nope"]) is None


# --- properties -------------------------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        *"0123456789abcxyz .:,-/=%°#()[]*!<>_@'",
        "\t",
        "✅",
        "Problem: ",
        "RESOLVED",
        "down",
        "Up",
        "ok",
        "not",
        "in",
        "ended",
        "now",
        "before",
        "firing:",
        "ms",
        "bar",
        "Dec",
        "Thu",
        "may",
        "12:04",
        "9.1",
        "5m",
        "192.168.1.1",
        "cam",
        "PLC-",
        "ß",
    ]
)
_SUBJECTS = st.one_of(st.lists(_PIECES, max_size=30).map("".join), st.text(max_size=60))


@PROPERTIES
@given(_SUBJECTS)
def test_the_key_is_stable_under_normalising_again(subject: str) -> None:
    key = subject_key(subject)
    assert subject_key(key) == key


@PROPERTIES
@given(_SUBJECTS)
def test_the_key_never_contains_a_state_word(subject: str) -> None:
    assert not STATE_WORDS & set(subject_key(subject).split())


@PROPERTIES
@given(st.lists(_PIECES, max_size=30), st.data())
def test_the_key_ignores_case_and_whitespace(pieces: list[str], data: st.DataObject) -> None:
    subject = "".join(pieces)
    flips = data.draw(st.lists(st.booleans(), min_size=len(subject), max_size=len(subject)))
    recased = "".join(
        c.swapcase() if flip and c.isascii() else c for c, flip in zip(subject, flips, strict=True)
    )
    spacing = data.draw(st.sampled_from(["  ", "\t", " \u00a0", "\n "]))
    respaced = " " + re.sub(r"\s+", spacing, recased) + spacing
    assert subject_key(respaced) == subject_key(subject)
    assert is_recovery(respaced) == is_recovery(subject)


_NOUNS = st.sampled_from(["Pump", "Camera", "Channel", "Zone", "Sensor", "Tank", "Door", "Line"])
_NUMBERS = st.integers(min_value=0, max_value=9999)


@st.composite
def _identifier_pair(draw: st.DrawFn) -> tuple[str, str]:
    """Two identifiers of one shape that differ only in their number."""
    one, other = draw(st.lists(_NUMBERS, min_size=2, max_size=2, unique=True))
    shape = draw(
        st.sampled_from(["{noun} {n}", "{word}{n}", "{word}-{n}", "10.0.{m}.{k}", "{word}{n}.example.com"])
    )
    noun = draw(_NOUNS)
    word = draw(st.sampled_from(["cam", "plc", "pt", "web", "nvr", "eth"]))

    def render(n: int) -> str:
        return shape.format(noun=noun, word=word, n=n, m=n // 256, k=n % 256)

    return render(one), render(other)


_READINGS = [  # one kind of reading: two of them differ only in value
    st.builds(
        lambda v, u: f"{v / 10:.1f} {u}", st.integers(0, 9999), st.sampled_from(["bar", "ms", "kB", "psi"])
    ),
    st.builds(lambda v: f"{v}%", st.integers(0, 100)),
    st.builds(
        lambda h, m, s: f"{h:02}:{m:02}:{s:02}", st.integers(0, 23), st.integers(0, 59), st.integers(0, 59)
    ),
    st.builds(lambda d, h: f"2026-12-{d:02}T{h:02}:00:00Z", st.integers(1, 28), st.integers(0, 23)),
    st.builds(lambda d: f"{d:02}.12.2026", st.integers(1, 28)),
    st.builds(lambda n: f"count {n}", st.integers(10000, 10**9)),
    st.builds(lambda n: f"value={n}", st.integers(0, 999)),
    st.builds(lambda n: f"for {n}m", st.integers(1, 99)),
]


@st.composite
def _reading_pair(draw: st.DrawFn) -> tuple[str, str]:
    kind = draw(st.sampled_from(_READINGS))
    return draw(kind), draw(kind)


_PREFIXES = st.sampled_from(
    ["", "Problem: ", "** PROBLEM Service Alert: ", "[FIRING:3] ", "ALARM ", "Alarm: "]
)
_MIDDLES = st.sampled_from(["pressure high at", "motion detected", "is CRITICAL", "level", "timeout"])


@PROPERTIES
@given(_identifier_pair(), _PREFIXES, _MIDDLES, _reading_pair())
def test_masking_folds_readings_and_never_merges_identifiers(
    identifiers: tuple[str, str], prefix: str, middle: str, readings: tuple[str, str]
) -> None:
    one, other = identifiers
    reading, other_reading = readings

    def subject(identifier: str, value: str) -> str:
        return f"{prefix}{identifier} {middle} {value}"

    assert subject_key(subject(one, reading)) == subject_key(subject(one, other_reading))
    assert subject_key(subject(one, reading)) != subject_key(subject(other, reading))
    assert subject_key(subject(one, reading)) != subject_key(subject(other, other_reading))
