"""alarms: list, show, mute and unmute against the template's account in moto, with alarms the relay
folded there (its handler run in this process on a simulated clock, which relayctl shares)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from app import download, handler, records
from app.outcomes import Outcome
from localaws.account import environ
from localaws.events import sqs_event_record
from relayctl import alarms
from tests.support import ROOT
from tests.support.folding import MINUTE, T0, per_recipient, text_of
from tests.support.folding import Relay as Folding
from tests.support.relayctl import STACK, Relay
from tests.support.world import World

PUMP = "PROBLEM: Pump 3 pressure {} bar"


@pytest.fixture
def folding(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> Iterator[Folding]:
    """The relay's handler in this process against the same account; relayctl reads its clock."""
    values = relay.account.environment()
    with environ(values):
        handler.reset()
        download.reset()
        try:
            relaying = Folding(World(relay.account, values))
            monkeypatch.setattr(alarms, "_now", lambda: relaying.now)
            yield relaying
        finally:
            handler.reset()
            download.reset()


def table_options(relay: Relay) -> list[str]:
    return ["--incidents-table", relay.blueprint.function.environment["INCIDENTS_TABLE"]]


def incident_of(relay: Relay, subject_start: str) -> dict[str, Any]:
    listed = relay.run_json("alarms", "list", *table_options(relay))
    (found,) = [a for a in listed["alarms"] if a["subject"].startswith(subject_start)]
    return found


def pump_storm(folding: Folding, repeats: int, start: datetime = T0) -> None:
    assert folding.mail(PUMP.format("9.0"), start) is Outcome.DISTRIBUTED
    for n in range(1, repeats + 1):
        outcome = folding.mail(PUMP.format(f"9.{n}"), start + n * MINUTE, b"t,v\n" if n == 2 else None)
        assert outcome is Outcome.FOLDED


def test_list_counts_open_flapping_muted_and_closed_alarms(relay: Relay, folding: Folding) -> None:
    pump_storm(folding, repeats=2)
    folding.mail("ALARM: door 2 open", T0 + 3 * MINUTE)
    folding.mail("OK: door 2 open", T0 + 4 * MINUTE)
    for cycle in range(5):  # the fifth opening within the hour makes it flapping
        folding.mail("DOWN: uplink 7", T0 + (5 + 2 * cycle) * MINUTE)
        folding.mail("UP: uplink 7", T0 + (6 + 2 * cycle) * MINUTE)
    folding.tick(T0 + 20 * MINUTE)  # the clock ran: the pump's digest went out at 08:10
    pump = incident_of(relay, "PROBLEM: Pump 3")
    code, out, err = relay.run("alarms", "mute", pump["incident"], "--for", "2h", *table_options(relay))
    assert code == 0, err
    assert (
        out.strip() == f"alarm {pump['fingerprint']} muted until 2026-12-04 10:20:00 UTC (by operator moto)"
    )

    listed = relay.run_json("alarms", "list", *table_options(relay))

    assert listed["counts"] == {"alarms": 3, "open": 2, "flapping": 1, "muted": 1, "closed_incidents": 5}
    by_status = {a["status"]: a for a in listed["alarms"]}
    assert set(by_status) == {"open", "flapping", "closed"}
    assert by_status["open"]["subject"] == PUMP.format("9.0")
    assert by_status["open"]["folded"] == 2
    assert by_status["open"]["muted"]["until"] == "2026-12-04 10:20:00+00:00"
    assert by_status["open"]["muted"]["by"] == "operator moto"
    assert by_status["closed"]["subject"] == "OK: door 2 open"
    assert by_status["closed"]["last_closed"]["how"] == "recovery"
    assert by_status["flapping"]["closed_incidents"] == 4
    assert by_status["open"]["recipients"] == sorted(by_status["open"]["recipients"])
    code, out, _ = relay.run("alarms", "list", *table_options(relay))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "3 alarms: 2 open (1 flapping), 1 muted; 5 incidents closed in the last 30 days"
    assert f"open      {pump['incident']}  since 2026-12-04 08:00:00 UTC, 2 repeats folded" in lines
    assert (
        f"closed    {by_status['closed']['fingerprint']}  last closed 2026-12-04 08:04:00 UTC (recovery)"
        in lines
    )
    assert "          muted until 2026-12-04 10:20:00 UTC by operator moto" in lines


def test_show_an_incident_lists_its_timeline(relay: Relay, folding: Folding) -> None:
    pump_storm(folding, repeats=3)
    folding.tick(T0 + 10 * MINUTE)  # the first digest: the three repeats
    folding.mail(PUMP.format("9.4"), T0 + 11 * MINUTE)
    assert folding.mail("RECOVERY: Pump 3 pressure OK", T0 + 12 * MINUTE) is Outcome.DISTRIBUTED
    listed = relay.run_json("alarms", "list", *table_options(relay))
    ((closed,),) = [[a["last_closed"]] for a in listed["alarms"]]
    incident = closed["incident"]

    shown = relay.run_json("alarms", "show", incident, *table_options(relay))

    events = [(e["at"], e["event"], e["text"]) for e in shown["timeline"]]
    assert [event for _, event, _ in events] == [
        "opened",
        "folded",
        "folded",
        "folded",
        "digest",
        "folded",
        "digest",
        "closed",
    ]
    assert events[0][0] == "2026-12-04 08:00:00+00:00"
    assert [text for _, event, text in events if event == "folded"] == [
        "#1 PROBLEM: Pump 3 pressure 9.1 bar",
        "#2 PROBLEM: Pump 3 pressure 9.2 bar (1 attachment)",
        "#3 PROBLEM: Pump 3 pressure 9.3 bar",
        "#4 PROBLEM: Pump 3 pressure 9.4 bar",
    ]
    digests = [e for e in shown["timeline"] if e["event"] == "digest"]
    assert [(d["kind"], d["count"], d["rows"], d["state"]) for d in digests] == [
        ("repeats", 3, [1, 3], "sent"),
        ("last", 1, [4, 4], "sent"),
    ]
    assert digests[0]["at"] == "2026-12-04 08:10:00+00:00"
    assert events[-1][2] == "recovered after 12 min; 4 repeats folded"
    code, out, _ = relay.run("alarms", "show", incident, *table_options(relay))
    assert code == 0
    assert "2026-12-04 08:02:00 UTC  folded   #2 PROBLEM: Pump 3 pressure 9.2 bar (1 attachment)" in out
    assert "2026-12-04 08:12:00 UTC  closed   recovered after 12 min; 4 repeats folded" in out
    # the whole alarm by its fingerprint: the same incident, and the next one
    folding.mail(PUMP.format("9.9"), T0 + 60 * MINUTE)
    whole = relay.run_json("alarms", "show", incident.split("-")[0], *table_options(relay))
    assert [e["event"] for e in whole["timeline"]].count("opened") == 2
    assert whole["open_incident"] != incident


def test_mute_from_the_command_line_folds_and_unmute_releases_the_digest(
    relay: Relay, folding: Folding
) -> None:
    pump_storm(folding, repeats=1)
    folding.now = T0 + 2 * MINUTE
    pump = incident_of(relay, "PROBLEM: Pump 3")
    muted = relay.run_json(
        "alarms", "mute", pump["incident"], "--for", "2h", "--by", "night shift", *table_options(relay)
    )
    assert muted["muted"]["until"] == "2026-12-04 10:02:00+00:00"
    assert muted["digests_waiting"] == 0
    for n in range(3, 40):  # past the digest the storm would have had at 08:10
        assert folding.mail(PUMP.format(f"9.{n}"), T0 + n * MINUTE) is Outcome.FOLDED
        folding.tick(T0 + n * MINUTE + timedelta(seconds=30))
    assert len(folding.world.sent()) == 1
    relay.drain(relay.queue_url)  # the mails' own S3 notifications, out of the way
    folding.now = T0 + 41 * MINUTE

    code, out, err = relay.run(
        "alarms", "unmute", pump["fingerprint"], *table_options(relay), "--queue-url", relay.queue_url
    )

    assert code == 0, err
    assert out.splitlines() == [
        f"alarm {pump['fingerprint']} unmuted (by operator moto)",
        "1 digest waiting to be sent: the relay sends it now",
    ]
    (message,) = relay.drain(relay.queue_url)
    (tick,) = records.items(
        {"messageId": message["MessageId"], "body": message["Body"]}, folding.world.incoming
    )
    assert isinstance(tick, records.Tick)
    assert tick.fingerprint == pump["fingerprint"]
    assert handler_processes(folding, tick) is Outcome.TICK
    _, digest = folding.world.sent()
    assert digest.message["Subject"] == "Mute ended, 37 mails folded: PROBLEM: Pump 3 pressure 9.0 bar"
    text = text_of(digest)
    assert "Muted by night shift at 2026-12-04 08:02:00 UTC: 37 mails folded." in text
    assert "Unmuted by operator moto at 2026-12-04 08:41:00 UTC." in text
    assert "Also listed: 1 repeat folded before the mute" in text
    assert per_recipient(folding.world.sent()) == dict.fromkeys(digest.destinations, 2)
    assert relay.run("alarms", "unmute", pump["fingerprint"], *table_options(relay))[1].strip() == (
        f"alarm {pump['fingerprint']} is not muted"
    )
    shown = relay.run_json("alarms", "show", pump["fingerprint"], *table_options(relay))
    (ended,) = [e for e in shown["timeline"] if e["event"] == "digest"]
    assert ended["mute"]["ended_by"] == "operator moto"
    assert ended["text"].startswith(
        "mute end (sent): muted by night shift at 2026-12-04 08:02:00 UTC, 37 mails folded"
    )


def test_mutes_and_unmutes_from_the_command_line_are_audited_in_the_alarm_and_on_stderr(
    relay: Relay, folding: Folding
) -> None:
    """Each change writes who, when, until and from where (relayctl and the caller's ARN) into the
    alarm's mute log with the change itself, and prints one JSON line to stderr; `show` lists them all,
    the extension in the middle too."""
    pump_storm(folding, repeats=1)
    fingerprint = incident_of(relay, "PROBLEM: Pump 3")["fingerprint"]
    source = "relayctl as arn:aws:sts::123456789012:user/moto"  # moto's caller identity
    lines = []
    for minute, argv in (
        (2, ("mute", fingerprint, "--for", "1h", "--by", "night shift")),
        (3, ("mute", fingerprint, "--for", "2h")),
        (4, ("unmute", fingerprint)),
    ):
        folding.now = T0 + minute * MINUTE
        code, _, err = relay.run("alarms", *argv, *table_options(relay))
        assert code == 0, err
        (line,) = err.splitlines()
        lines.append(json.loads(line))
    assert lines == [
        {
            "message": "alarm muted",
            "fingerprint": fingerprint,
            "action": "mute",
            "by": "night shift",
            "at": "2026-12-04 08:02:00+00:00",
            "until": "2026-12-04 09:02:00+00:00",
            "source": source,
        },
        {
            "message": "alarm muted",
            "fingerprint": fingerprint,
            "action": "mute",
            "by": "operator moto",
            "at": "2026-12-04 08:03:00+00:00",
            "until": "2026-12-04 10:03:00+00:00",
            "source": source,
        },
        {
            "message": "alarm unmuted",
            "fingerprint": fingerprint,
            "action": "unmute",
            "by": "operator moto",
            "at": "2026-12-04 08:04:00+00:00",
            "until": None,
            "source": source,
        },
    ]
    shown = relay.run_json("alarms", "show", fingerprint, *table_options(relay))
    logged = [(e["event"], e["by"], e["until"], e["source"]) for e in shown["timeline"] if "source" in e]
    assert logged == [
        ("muted", "night shift", "2026-12-04 09:02:00+00:00", source),
        ("muted", "operator moto", "2026-12-04 10:03:00+00:00", source),
        ("unmuted", "operator moto", None, source),
    ]
    code, out, _ = relay.run("alarms", "show", fingerprint, *table_options(relay))
    assert (
        f"2026-12-04 08:03:00 UTC  muted    by operator moto until 2026-12-04 10:03:00 UTC ({source})" in out
    )
    assert f"2026-12-04 08:04:00 UTC  unmuted  by operator moto ({source})" in out


def test_without_an_answer_from_sts_the_audit_names_the_local_user(
    relay: Relay, folding: Folding, monkeypatch: pytest.MonkeyPatch
) -> None:
    pump_storm(folding, repeats=1)
    fingerprint = incident_of(relay, "PROBLEM: Pump 3")["fingerprint"]
    monkeypatch.setattr(alarms, "_caller", lambda aws: None)
    monkeypatch.setattr(alarms.getpass, "getuser", lambda: "tech7")
    code, out, err = relay.run("alarms", "mute", fingerprint, "--for", "30m", *table_options(relay))
    assert code == 0, err
    assert "(by the operator)" in out
    assert json.loads(err)["source"] == "relayctl as local user tech7"


def handler_processes(folding: Folding, tick: records.Tick) -> Outcome:
    """The tick as the relay's handler would take it off the queue (with the simulated clock)."""
    from app.relay import process

    return process(tick, folding.settings, folding.ports)


def test_the_queued_tick_goes_through_the_handler_from_the_queue(relay: Relay, folding: Folding) -> None:
    """What relayctl puts on the queue is a record the function's handler accepts as is."""
    pump_storm(folding, repeats=1)
    pump = incident_of(relay, "PROBLEM: Pump 3")
    folding.now = T0 + 2 * MINUTE
    relay.run_json("alarms", "mute", pump["fingerprint"], "--for", "30m", *table_options(relay))
    relay.drain(relay.queue_url)
    relay.run_json(
        "alarms", "unmute", pump["fingerprint"], *table_options(relay), "--queue-url", relay.queue_url
    )
    (message,) = relay.sqs.receive_message(QueueUrl=relay.queue_url, MessageSystemAttributeNames=["All"])[
        "Messages"
    ]
    record = sqs_event_record(message, relay.blueprint.inbound_queue.arn, relay.blueprint.region)
    assert handler.lambda_handler({"Records": [record]}, None) == {"batchItemFailures": []}
    assert folding.world.sent()[-1].message["Subject"].startswith("Mute ended, 0 mails folded")


def test_alarms_finds_its_table_and_queue_through_the_stack(relay: Relay, folding: Folding) -> None:
    pump_storm(folding, repeats=1)
    listed = relay.run_json("alarms", "list", "--stack", STACK)
    assert listed["counts"]["alarms"] == 1
    (alarm,) = listed["alarms"]
    folding.now = T0 + 2 * MINUTE
    assert relay.run_json("alarms", "mute", alarm["fingerprint"], "--for", "1h", "--stack", STACK)["changed"]
    relay.drain(relay.queue_url)
    unmuted = relay.run_json("alarms", "unmute", alarm["fingerprint"], "--stack", STACK)
    assert unmuted["tick_queued"] is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["alarms", "list"], "no alarm table: pass --incidents-table or --stack NAME"),
        (["alarms", "show"], "alarms show needs an ID"),
        (["alarms", "list", "0" * 32], "alarms list takes no ID"),
        (["alarms", "show", "not-an-id"], "'not-an-id' is neither an incident id"),
        (["alarms", "show", "0" * 32], f"no alarm {'0' * 32} in the alarm table"),
        (["alarms", "mute", "0" * 32], "alarms mute needs --for DURATION"),
        (["alarms", "unmute", "0" * 32, "--for", "1h"], "alarms unmute takes no --for"),
    ],
)
def test_mistakes_are_one_line_errors(relay: Relay, argv: list[str], message: str) -> None:
    options = [] if argv[1:] == ["list"] else table_options(relay)
    code, out, err = relay.run(*argv, *options)
    assert (code, out) == (1, "")
    assert err.strip() == f"relayctl: error: {message}" or err.strip().startswith(
        f"relayctl: error: {message}"
    )


@pytest.mark.parametrize("value", ["2", "0h", "-1h", "2w", "31d", "1.5h", ""])
def test_a_bad_duration_is_a_usage_error(relay: Relay, value: str) -> None:
    with pytest.raises(SystemExit) as exited:
        relay.run("alarms", "mute", "0" * 32, "--for", value)
    assert exited.value.code == 2


def test_durations() -> None:
    assert alarms.duration("30m") == timedelta(minutes=30)
    assert alarms.duration("2H") == timedelta(hours=2)
    assert alarms.duration("30d") == timedelta(days=30)


def test_the_alarms_command_needs_neither_the_mail_parser_nor_the_tracing_library() -> None:
    """`pip install .` brings boto3 only: the command must import without flanker and X-Ray."""
    probe = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('flanker', 'aws_xray_sdk', 'PIL'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import relayctl.cli, relayctl.alarms\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
