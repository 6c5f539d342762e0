"""Batches: the Lambda deadline and one bad mail must not cost the other records of a batch anything."""

from __future__ import annotations

from collections import Counter

from app.handler import DEADLINE_RESERVE_MS
from tests.support.faults import Faults, deliver, mail, max_receives, s3_error, url_has
from tests.support.world import World

KEYS = [f"incoming/batch-{n}.eml" for n in range(1, 4)]
RECIPIENTS = {key: (f"team-{n}@example.com",) for n, key in enumerate(KEYS, start=1)}


class Clock:
    """A Lambda context: `get_remaining_time_in_millis` answers each of `readings` in turn, then plenty."""

    def __init__(self, *readings: int) -> None:
        self.readings = list(readings)
        self.looks = 0

    def get_remaining_time_in_millis(self) -> int:
        self.looks += 1
        return self.readings.pop(0) if self.readings else 900_000


def put_batch(world: World) -> None:
    for key in KEYS:
        world.put_mail(key, mail(RECIPIENTS[key], [("log.txt", key.encode())]))


def received(world: World) -> Counter[str]:
    return Counter(address for sent in world.sent() for address in sent.destinations)


def test_records_not_started_before_the_deadline_reserve_are_retried_not_cut_off(
    world: World, faults: Faults
) -> None:
    put_batch(world)
    faults.watch("s3", "GetObject")
    clock = Clock(DEADLINE_RESERVE_MS + 30_000, DEADLINE_RESERVE_MS + 1, DEADLINE_RESERVE_MS - 1)
    run = deliver(world, KEYS, context=clock)
    assert clock.looks >= 3, "the handler must look at the clock before each record"
    assert run.receives == Counter({KEYS[0]: 1, KEYS[1]: 1, KEYS[2]: 2})
    assert run.dlq == []
    assert received(world) == Counter({RECIPIENTS[key][0]: 1 for key in KEYS})


def test_a_batch_that_starts_inside_the_reserve_reads_nothing(world: World, faults: Faults) -> None:
    put_batch(world)
    faults.watch("s3", "GetObject")
    clock = Clock(*[DEADLINE_RESERVE_MS - 1] * len(KEYS))
    run = deliver(world, KEYS, context=clock, max_receive_count=1)
    assert sorted(run.dlq) == sorted(KEYS)  # all reported failed (with one receive, straight to the DLQ)
    assert faults.calls["GetObject"] == 0
    assert world.sent() == []
    assert world.keys(world.attachments) == []


def test_one_mail_failing_for_good_does_not_hold_back_its_batch_mates(world: World, faults: Faults) -> None:
    put_batch(world)
    fault = faults.inject("s3", "GetObject", s3_error("AccessDenied", 403), url_has(KEYS[1]))
    run = deliver(world, KEYS)
    assert run.dlq == [KEYS[1]]
    assert run.receives == Counter({KEYS[0]: 1, KEYS[1]: max_receives(world), KEYS[2]: 1})
    assert received(world) == Counter({RECIPIENTS[KEYS[0]][0]: 1, RECIPIENTS[KEYS[2]][0]: 1})
    assert fault.hits == max_receives(world)  # once per receive: botocore does not retry AccessDenied
