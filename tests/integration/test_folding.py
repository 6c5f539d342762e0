"""Alarm folding through the handler against the template's account in moto (the alarm table, the
clock, the inbound queue), with a simulated clock: a storm reaches each recipient as one first mail, a
digest and a recovery, with nothing lost, nothing counted twice, and every mail relayed when the
table fails."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from moto.dynamodb.models import DynamoDBBackend

from app import clock, handler, records
from app.outcomes import Outcome
from app.records import MailRef
from app.relay import process
from localaws.events import sqs_event_record
from tests.support.faults import Faults, dynamodb_cancelled, dynamodb_error, max_receives, sesv2_error
from tests.support.folding import MINUTE, RECIPIENTS, T0, Relay, alarm, per_recipient, text_of
from tests.support.world import World, local_world


@pytest.fixture
def relay(world: World) -> Relay:
    return Relay(world)


def test_a_storm_is_one_first_mail_one_digest_and_the_recovery(relay: Relay, world: World) -> None:
    assert relay.mail("PROBLEM: Pump 3 pressure 9.1 bar", T0) is Outcome.DISTRIBUTED
    for n in range(1, 10):  # nine repeats, one a minute, readings changing
        outcome = relay.mail(f"PROBLEM: Pump 3 pressure 9.{n} bar", T0 + n * MINUTE, f"t,{n}\n".encode())
        assert outcome is Outcome.FOLDED
    assert len(world.sent()) == 1
    relay.tick(T0 + 9 * MINUTE)  # not due yet: nothing
    assert len(world.sent()) == 1
    relay.tick(T0 + 10 * MINUTE)
    _, digest = world.sent()
    assert digest.message["Subject"] == "Digest, 9 repeats: PROBLEM: Pump 3 pressure 9.1 bar"
    assert digest.message["Auto-Submitted"] == "auto-generated"
    text = text_of(digest)
    for n in range(1, 10):
        assert f"PROBLEM: Pump 3 pressure 9.{n} bar" in text
    links = [w for w in text.split() if w.startswith("https://") and "/mute/" not in w]
    assert len(links) == 9
    assert text.count("/mute/") == 3  # and the links that mute the alarm (tests/integration/test_mute.py)
    assert sorted(world.download(link) for link in links) == sorted(f"t,{n}\n".encode() for n in range(1, 10))
    assert relay.mail("RECOVERY: Pump 3 pressure OK", T0 + 12 * MINUTE) is Outcome.DISTRIBUTED
    *_, recovery = world.sent()
    assert "this alarm lasted 12 min" in text_of(recovery)
    assert "9 repeats" in text_of(recovery)
    assert per_recipient(world.sent()) == dict.fromkeys(RECIPIENTS, 3)
    assert relay.tick(T0 + 2 * 60 * MINUTE) == 0  # nothing left to do


def test_a_redelivered_repeat_is_counted_once(relay: Relay, world: World) -> None:
    relay.mail("ALARM tank 4 level 81%", T0)
    relay.mail("ALARM tank 4 level 82%", T0 + MINUTE)
    key = f"incoming/alarm-{relay.count}.eml"
    for _ in range(3):  # SQS delivers at least once
        assert relay.mail("", T0 + 2 * MINUTE, key=key) is Outcome.FOLDED
    relay.tick(T0 + 10 * MINUTE)
    _, digest = world.sent()
    assert digest.message["Subject"].startswith("Digest, 1 repeat:")


def test_the_first_mail_redelivered_is_relayed_again_and_sent_once(relay: Relay, world: World) -> None:
    relay.mail("DOWN: router 192.168.1.10", T0)
    first = f"incoming/alarm-{relay.count}.eml"
    assert relay.mail("", T0 + MINUTE, key=first) is Outcome.DISTRIBUTED  # the send markers hold it
    assert len(world.sent()) == 1


def test_two_first_mails_at_once_relay_one_and_fold_the_other(
    relay: Relay, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DynamoDB applies a conditional write to an item atomically; moto checks the condition and then
    # writes, unlocked, so two threads can both pass it. Its writes are made atomic here, as AWS's are.
    atomic = threading.RLock()  # a transaction writes through put_item and update_item too
    for name in ("put_item", "update_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with atomic:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)
    for n in (1, 2):
        world.put_mail(f"incoming/race-{n}.eml", alarm("PROBLEM: boiler flame lost"))
    start = threading.Barrier(2)
    outcomes: dict[int, Outcome] = {}

    def deliver(n: int) -> None:
        start.wait()
        outcomes[n] = process(MailRef(world.incoming, f"incoming/race-{n}.eml"), relay.settings, relay.ports)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes.values()) == sorted([Outcome.DISTRIBUTED, Outcome.FOLDED])
    assert len(world.sent()) == 1


def test_a_first_mail_cancelled_by_a_concurrent_transaction_is_decided_again_and_folded(
    relay: Relay, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """On DynamoDB the loser of two transactions on one item is cancelled with the reason
    TransactionConflict, not a failed condition (moto never does this: it is injected)."""
    caplog.set_level(logging.INFO, logger="iot_mail_relay")
    for n in (1, 2):
        world.put_mail(f"incoming/race-{n}.eml", alarm("PROBLEM: boiler flame lost"))
    outcomes: dict[int, Outcome] = {}

    def deliver(n: int) -> None:
        outcomes[n] = process(MailRef(world.incoming, f"incoming/race-{n}.eml"), relay.settings, relay.ports)

    def the_other_commits_meanwhile(request: Any) -> Any:
        deliver(2)  # the mail whose transaction was in flight: it wins
        return dynamodb_cancelled("None", "TransactionConflict")(request)

    faults = Faults()
    faults.inject("dynamodb", "TransactWriteItems", the_other_commits_meanwhile, times=1)
    try:
        deliver(1)  # read the alarm as new, decided "first"; its transaction loses
    finally:
        faults.heal()
    assert outcomes == {1: Outcome.FOLDED, 2: Outcome.DISTRIBUTED}
    assert len(world.sent()) == 1
    lines = [vars(r) for r in caplog.records if getattr(r, "outcome", None) in {"distributed", "folded"}]
    assert sorted(line["fold"] for line in lines) == ["first", "repeat"]
    assert all(line.get("FoldingUnavailable", 0) == 0 for line in lines)


def test_an_alarm_whose_state_expired_before_its_old_rows_folds_again(relay: Relay, world: World) -> None:
    relay.mail("PROBLEM: Pump 3 pressure 9.1 bar", T0)
    relay.mail("PROBLEM: Pump 3 pressure 9.2 bar", T0 + MINUTE)  # row 1
    relay.tick(T0 + 10 * MINUTE)
    relay.tick(T0 + 60 * MINUTE)  # closed when quiet: idle, its items expire in 30 days
    assert relay.ports.incidents is not None
    (stored,) = relay.ports.incidents.alarms()
    # TTL deletes expired items in no set order: the state went first, the old row 1 is still there
    world.account.client("dynamodb").delete_item(
        TableName=relay.ports.incidents.table,
        Key={"pk": {"S": f"A#{stored.state.fingerprint}"}, "sk": {"S": "state"}},
    )
    later = T0 + 31 * 24 * 60 * MINUTE
    assert relay.mail("PROBLEM: Pump 3 pressure 9.5 bar", later) is Outcome.DISTRIBUTED
    assert relay.mail("PROBLEM: Pump 3 pressure 9.6 bar", later + MINUTE) is Outcome.FOLDED
    relay.tick(later + 10 * MINUTE)
    *_, digest = world.sent()
    assert digest.message["Subject"] == "Digest, 1 repeat: PROBLEM: Pump 3 pressure 9.5 bar"
    assert "9.6 bar" in text_of(digest)
    assert "9.2 bar" not in text_of(digest)


def _pump_alarm_with_a_repeat(relay: Relay) -> records.Tick:
    """The pump alarm's first mail and one repeat, and the tick the clock would queue for its digest."""
    relay.mail("PROBLEM: Pump 3 pressure 9.1 bar", T0)
    relay.mail("PROBLEM: Pump 3 pressure 9.2 bar", T0 + MINUTE)
    assert relay.ports.incidents is not None
    (stored,) = relay.ports.incidents.alarms()
    return records.Tick(stored.state.fingerprint, 0)


def test_a_digest_still_queued_goes_out_after_the_next_first_mail_not_before(
    relay: Relay, world: World
) -> None:
    tick = _pump_alarm_with_a_repeat(relay)
    assert relay.ports.incidents is not None
    faults = Faults()
    faults.inject("sesv2", "SendEmail", sesv2_error("SendingPausedException", 400))
    try:
        for at in (T0 + 10 * MINUTE, T0 + 31 * MINUTE):  # the digest, then the quiet close: neither sent
            relay.now = at
            assert process(tick, relay.settings, relay.ports) is Outcome.RETRY
    finally:
        faults.heal()
    assert relay.mail("PROBLEM: Pump 3 pressure 9.5 bar", T0 + 32 * MINUTE) is Outcome.DISTRIBUTED
    assert [m.message["Subject"] for m in world.sent()] == [
        "PROBLEM: Pump 3 pressure 9.1 bar",
        "PROBLEM: Pump 3 pressure 9.5 bar",  # the new alarm is not held back by the old digest
        "Digest, 1 repeat: PROBLEM: Pump 3 pressure 9.1 bar",
    ]
    (stored,) = relay.ports.incidents.alarms()
    assert stored.state.outbox == ()


def test_a_folded_repeat_still_tells_the_operator_who_it_left_out(relay: Relay, world: World) -> None:
    subject = "PROBLEM: Pump 3 pressure 9.1 bar"
    assert relay.mail(subject, T0, recipients=(*RECIPIENTS, "ops@@example.com")) is Outcome.DISTRIBUTED
    assert relay.mail(subject, T0 + MINUTE, recipients=(*RECIPIENTS, "bob@@example.com")) is Outcome.FOLDED
    notices = {n["key"]: n for n in world.notices()}
    assert sorted(notices) == ["incoming/alarm-1.eml", "incoming/alarm-2.eml"]
    repeat = notices["incoming/alarm-2.eml"]
    assert repeat["reason"] == "invalid_recipients"
    assert repeat["invalid_recipients"] == ["bob@@example.com"]


def test_a_nagios_recovery_pairs_and_a_different_device_does_not_fold(relay: Relay, world: World) -> None:
    relay.mail("** PROBLEM Service Alert: web01/HTTP is CRITICAL **", T0)
    assert (
        relay.mail("** PROBLEM Service Alert: web02/HTTP is CRITICAL **", T0 + MINUTE) is Outcome.DISTRIBUTED
    )
    assert (
        relay.mail("** PROBLEM Service Alert: web01/HTTP is CRITICAL **", T0 + 2 * MINUTE) is Outcome.FOLDED
    )
    assert (
        relay.mail("** RECOVERY Service Alert: web01/HTTP is OK **", T0 + 3 * MINUTE) is Outcome.DISTRIBUTED
    )
    subjects = [m.message["Subject"] for m in world.sent()]
    assert subjects[:2] == [
        "** PROBLEM Service Alert: web01/HTTP is CRITICAL **",
        "** PROBLEM Service Alert: web02/HTTP is CRITICAL **",
    ]
    assert subjects[2].startswith("Recovered, 1 repeat in a last digest:")  # before the recovery
    assert subjects[3] == "** RECOVERY Service Alert: web01/HTTP is OK **"


def test_the_mails_log_line_says_what_folding_did(relay: Relay, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="iot_mail_relay")
    relay.mail("Problem: High CPU utilization (over 90% for 5m)", T0)
    relay.mail("Problem: High CPU utilization (over 90% for 5m)", T0 + MINUTE)
    lines = [r for r in caplog.records if getattr(r, "outcome", None) in {"distributed", "folded"}]
    first, repeat = (vars(r) for r in lines)
    assert (first["fold"], repeat["fold"]) == ("first", "repeat")
    assert first["incident"] == repeat["incident"]
    assert repeat["Folded"] == 1
    assert first["Folded"] == 0
    directives = repeat["_aws"]["CloudWatchMetrics"]
    assert {"Name": "Folded", "Unit": "Count"} in directives[1]["Metrics"]
    assert directives[1]["Dimensions"] == [[]]


def test_an_unavailable_table_relays_every_mail_and_says_so(
    relay: Relay, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="iot_mail_relay")
    faults = Faults()
    faults.inject("dynamodb", "GetItem", dynamodb_error("ResourceNotFoundException"))
    try:
        for n in range(3):
            assert relay.mail("PROBLEM: Pump 3 pressure 9.1 bar", T0 + n * MINUTE) is Outcome.DISTRIBUTED
    finally:
        faults.heal()
    assert len(world.sent()) == 3
    lines = [vars(r) for r in caplog.records if getattr(r, "outcome", None) == "distributed"]
    assert [line["FoldingUnavailable"] for line in lines] == [1, 1, 1]
    assert [line["fold"] for line in lines] == ["unavailable"] * 3


def test_an_alarm_state_this_code_cannot_read_relays_the_mail_and_says_so(
    relay: Relay, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    relay.mail("PROBLEM: Pump 3 pressure 9.1 bar", T0)
    relay.mail("RECOVERY: Pump 3 pressure OK", T0 + MINUTE)
    assert relay.ports.incidents is not None
    (stored,) = relay.ports.incidents.alarms()
    dynamodb, table = world.account.client("dynamodb"), relay.ports.incidents.table
    key = {"pk": {"S": f"A#{stored.state.fingerprint}"}, "sk": {"S": "state"}}
    item = dynamodb.get_item(TableName=table, Key=key)["Item"]
    document = json.loads(item["state"]["S"])
    item["state"] = {"S": json.dumps({**document, "format": document["format"] + 1})}  # a newer release's
    dynamodb.put_item(TableName=table, Item=item)
    caplog.set_level(logging.INFO, logger="iot_mail_relay")
    caplog.clear()
    assert relay.mail("PROBLEM: Pump 3 pressure 9.9 bar", T0 + 60 * MINUTE) is Outcome.DISTRIBUTED
    assert len(world.sent()) == 3
    (line,) = [vars(r) for r in caplog.records if getattr(r, "outcome", None) == "distributed"]
    assert (line["fold"], line["FoldingUnavailable"]) == ("unavailable", 1)


def test_folding_off_relays_each_mail_and_leaves_the_table_alone() -> None:
    with local_world({"RepeatFolding": "off"}) as world:
        relay = Relay(world)
        for n in range(3):
            assert relay.mail("PROBLEM: Pump 3 pressure 9.1 bar", T0 + n * MINUTE) is Outcome.DISTRIBUTED
        assert len(world.sent()) == 3
        table = world.environment["INCIDENTS_TABLE"]
        assert world.account.client("dynamodb").scan(TableName=table)["Count"] == 0


def _disk_storm(world: World, first_ago: timedelta = 11 * MINUTE) -> tuple[Relay, Any, str]:
    """A first mail and one repeat of the disk alarm, the mails' own S3 notifications purged from the
    queue so that only what the clock queues is left: the relay, the SQS client and the queue's URL."""
    now = datetime.now(UTC).replace(microsecond=0)
    relay = Relay(world)
    relay.mail("FIRING: disk /var 91% full", now - first_ago)
    relay.mail("FIRING: disk /var 92% full", now - 5 * MINUTE)
    sqs = world.account.client("sqs")
    url = world.account.queue_url(world.blueprint.inbound_queue.logical_id)
    sqs.purge_queue(QueueUrl=url)
    return relay, sqs, url


def _queued_tick(world: World, sqs: Any, url: str) -> dict[str, Any]:
    """The clock's tick for the alarm, as the handler receives it from the queue."""
    (message,) = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"])["Messages"]
    return sqs_event_record(message, world.blueprint.inbound_queue.arn, world.blueprint.region)


def test_the_clock_queues_a_due_tick_and_the_handler_sends_the_digest(world: World) -> None:
    _, sqs, url = _disk_storm(world)
    assert clock.lambda_handler({}, None) == {"ticks": 1}
    assert clock.lambda_handler({}, None) == {"ticks": 0}  # claimed: not queued twice
    record = _queued_tick(world, sqs, url)
    assert handler.lambda_handler({"Records": [record]}, None) == {"batchItemFailures": []}
    _, digest = world.sent()
    assert digest.message["Subject"] == "Digest, 1 repeat: FIRING: disk /var 91% full"


def test_a_digest_that_keeps_failing_is_retried_by_the_queue_then_dead_lettered(world: World) -> None:
    relay, sqs, url = _disk_storm(world)
    assert clock.lambda_handler({}, None) == {"ticks": 1}
    record = _queued_tick(world, sqs, url)
    faults = Faults()
    faults.inject("sesv2", "SendEmail", sesv2_error("SendingPausedException", 400))
    try:
        for receive in range(1, max_receives(world) + 1):  # then the queue's redrive policy dead-letters it
            record["attributes"]["ApproximateReceiveCount"] = str(receive)
            failed = handler.lambda_handler({"Records": [record]}, None)["batchItemFailures"]
            assert failed == [{"itemIdentifier": record["messageId"]}]
    finally:
        faults.heal()
    assert faults.calls["SendEmail"] == max_receives(world)  # each delivery tried it again
    assert len(world.sent()) == 1  # the first mail only
    assert relay.ports.incidents is not None
    (stored,) = relay.ports.incidents.alarms()
    assert [d.count for d in stored.state.outbox] == [1]  # still queued: nothing lost


def test_a_tick_retried_after_a_failed_send_sends_the_digest_once_and_gives_its_claim_back(
    world: World,
) -> None:
    relay, sqs, url = _disk_storm(world)
    assert clock.lambda_handler({}, None) == {"ticks": 1}
    record = _queued_tick(world, sqs, url)
    faults = Faults()
    faults.inject("sesv2", "SendEmail", sesv2_error("SendingPausedException", 400), times=1)
    try:
        failed = handler.lambda_handler({"Records": [record]}, None)["batchItemFailures"]
    finally:
        faults.heal()
    assert failed == [{"itemIdentifier": record["messageId"]}]
    for receive in (2, 3):  # the retry (the clock's claim does not hold it back), and a duplicate
        record["attributes"]["ApproximateReceiveCount"] = str(receive)
        assert handler.lambda_handler({"Records": [record]}, None) == {"batchItemFailures": []}
    subjects = [m.message["Subject"] for m in world.sent()]
    assert subjects == ["FIRING: disk /var 91% full", "Digest, 1 repeat: FIRING: disk /var 91% full"]
    assert relay.ports.incidents is not None
    (stored,) = relay.ports.incidents.alarms()
    assert stored.state.outbox == ()
    item = world.account.client("dynamodb").get_item(
        TableName=world.environment["INCIDENTS_TABLE"],
        Key={"pk": {"S": f"A#{stored.state.fingerprint}"}, "sk": {"S": "state"}},
    )["Item"]
    assert "tick_for" not in item  # the claim is given back: the clock ticks the alarm's next time


def test_a_tick_that_sent_one_of_two_digests_is_retried_and_sends_only_the_other(
    relay: Relay, world: World
) -> None:
    tick = _pump_alarm_with_a_repeat(relay)
    assert relay.ports.incidents is not None
    faults = Faults()
    faults.inject("sesv2", "SendEmail", sesv2_error("SendingPausedException", 400))
    relay.now = T0 + 10 * MINUTE
    assert process(tick, relay.settings, relay.ports) is Outcome.RETRY  # the first digest, unsent
    assert relay.mail("PROBLEM: Pump 3 pressure 9.3 bar", T0 + 11 * MINUTE) is Outcome.FOLDED
    relay.now = T0 + 30 * MINUTE
    assert process(tick, relay.settings, relay.ports) is Outcome.RETRY  # the second queued behind it
    faults.heal()
    attempts = Counter[str]()

    def the_second_send(request: Any) -> bool:
        attempts["send"] += 1
        return attempts["send"] == 2

    faults.inject("sesv2", "SendEmail", sesv2_error("SendingPausedException", 400), when=the_second_send)
    try:
        assert process(tick, relay.settings, relay.ports) is Outcome.RETRY
        assert process(tick, relay.settings, relay.ports) is Outcome.TICK  # the retry
    finally:
        faults.heal()
    subjects = [m.message["Subject"] for m in world.sent()]
    assert subjects == [
        "PROBLEM: Pump 3 pressure 9.1 bar",
        "Digest, 1 repeat: PROBLEM: Pump 3 pressure 9.1 bar",
        "Digest, 1 repeat: PROBLEM: Pump 3 pressure 9.1 bar",
    ]
    assert "9.2 bar" in text_of(world.sent()[1])
    assert "9.3 bar" in text_of(world.sent()[2])
    (stored,) = relay.ports.incidents.alarms()
    assert stored.state.outbox == ()


def test_a_tick_for_an_alarm_not_due_changes_nothing(relay: Relay, world: World) -> None:
    relay.mail("ALERT: door 2 open", T0)
    relay.mail("ALERT: door 2 open", T0 + MINUTE)
    assert relay.ports.incidents is not None
    before = list(relay.ports.incidents.alarms())
    record: dict[str, Any] = {
        "messageId": "t",
        "body": json.dumps({"alarm_tick": {"fingerprint": before[0].state.fingerprint, "due_at": 0}}),
    }

    (tick,) = records.items(record, world.incoming)
    relay.now = T0 + 2 * MINUTE
    assert process(tick, relay.settings, relay.ports) is Outcome.TICK
    assert [s.state for s in relay.ports.incidents.alarms()] == [s.state for s in before]
    assert len(world.sent()) == 1


def test_a_mute_folds_every_repeat_until_unmuted_then_one_digest_counts_them(
    relay: Relay, world: World
) -> None:
    from app import folding

    relay.mail("ALARM: camera 4 motion", T0)
    (stored,) = relay.ports.incidents.alarms() if relay.ports.incidents else []
    relay.now = T0 + MINUTE
    folding.mute(stored.state.fingerprint, T0 + 60 * MINUTE, "guard@example.com", relay.settings, relay.ports)
    for n in range(2, 9):
        assert relay.mail("ALARM: camera 4 motion", T0 + n * MINUTE) is Outcome.FOLDED
    relay.tick(T0 + 20 * MINUTE)  # the digest that was due is held by the mute
    assert len(world.sent()) == 1
    assert relay.mail("OK: camera 4 motion", T0 + 21 * MINUTE) is Outcome.DISTRIBUTED  # recoveries go out
    relay.now = T0 + 22 * MINUTE
    muted = folding.unmute(stored.state.fingerprint, "operator", relay.settings, relay.ports)
    assert muted.digests == 1
    *_, digest = world.sent()
    assert digest.message["Subject"] == "Mute ended, 7 mails folded: OK: camera 4 motion"  # its latest word
    assert "guard@example.com" in text_of(digest)


def test_a_digest_after_a_days_mute_lists_links_that_live_as_long_as_a_new_mails(
    relay: Relay, world: World
) -> None:
    from app import folding

    relay.mail("ALARM: camera 4 motion", T0)
    assert relay.ports.incidents is not None
    (stored,) = relay.ports.incidents.alarms()
    relay.now = T0 + MINUTE
    ends = T0 + MINUTE + timedelta(hours=24)
    folding.mute(stored.state.fingerprint, ends, "guard@example.com", relay.settings, relay.ports)
    assert relay.mail("ALARM: camera 4 motion", T0 + 2 * MINUTE, b"clip-bytes") is Outcome.FOLDED
    relay.tick(ends)
    *_, digest = world.sent()
    assert digest.message["Subject"].startswith("Mute ended, 1 mail folded:")
    text = text_of(digest)
    (link,) = [w for w in text.split() if w.startswith("https://") and "/mute/" not in w]
    # the mail's own links (signed when it came, for UrlExpirySeconds) ran out a minute after the digest
    lives = ends + timedelta(seconds=relay.settings.url_expiry_seconds)
    assert parse_qs(urlsplit(link).query)["exp"] == [str(int(lives.timestamp()))]
    assert f"download links expire {lives:%Y-%m-%d %H:%M} UTC" in text
    assert world.download(link) == b"clip-bytes"


def test_a_tick_that_comes_early_gives_its_claim_back_for_the_next_sweep(world: World) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    relay, _, _ = _disk_storm(world, first_ago=10 * MINUTE - timedelta(seconds=30))  # digest due in 30 s
    assert clock.lambda_handler({}, None) == {"ticks": 1}  # queued with its 30 s delay, and claimed
    assert clock.lambda_handler({}, None) == {"ticks": 0}
    assert relay.ports.incidents is not None
    (stored,) = relay.ports.incidents.alarms()
    relay.now = now  # the tick arrives before the digest is due: nothing to do yet
    early = records.Tick(stored.state.fingerprint, int((now + timedelta(seconds=30)).timestamp()))
    assert process(early, relay.settings, relay.ports) is Outcome.TICK
    assert len(world.sent()) == 1
    assert clock.lambda_handler({}, None) == {"ticks": 1}  # the claim was given back: ticked again
