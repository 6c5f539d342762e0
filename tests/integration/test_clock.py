"""The alarm clock against the template's account in moto, with failures injected into one alarm's claim
or into the queue: the sweep goes on for the other alarms, a claim whose tick was not queued is given
back, and the next sweep queues what the failed one left out (each alarm once)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from app import clock
from app.errors import RetryableError
from tests.support.faults import Faults, _Body, body_has, dynamodb_error
from tests.support.folding import MINUTE, Relay
from tests.support.world import World


def two_alarms_due(world: World) -> list[str]:
    """Two alarms whose digest is due now, their fingerprints in the order the clock sweeps them."""
    now = datetime.now(UTC)
    relay = Relay(world)
    for device, opened in (("pump 3", 12), ("pump 4", 11)):
        relay.mail(f"FIRING: {device} low", now - opened * MINUTE)
        relay.mail(f"FIRING: {device} low", now - 5 * MINUTE)
    assert relay.ports.incidents is not None
    world.account.client("sqs").purge_queue(QueueUrl=queue(world))  # the mails' own notifications
    return [d.fingerprint for d in relay.ports.incidents.due(now + clock.LOOKAHEAD)]


def queue(world: World) -> str:
    return str(world.account.queue_url(world.blueprint.inbound_queue.logical_id))


def ticks_queued(world: World) -> list[str]:
    messages = world.account.client("sqs").receive_message(QueueUrl=queue(world), MaxNumberOfMessages=10)
    return sorted(json.loads(m["Body"])["alarm_tick"]["fingerprint"] for m in messages.get("Messages", []))


def sqs_error(code: str) -> Any:
    """A JSON-protocol error as SQS returns it."""
    body = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": "injected"}).encode()
    return lambda request: AWSResponse(request.url, 400, {}, _Body(body))


@pytest.mark.parametrize("error", ["TransactionConflictException", "ResourceNotFoundException"])
def test_a_claim_that_fails_skips_that_alarm_only(world: World, error: str) -> None:
    first, second = two_alarms_due(world)
    faults = Faults()
    faults.inject("dynamodb", "UpdateItem", dynamodb_error(error), when=body_has(f"A#{second}"))
    try:
        with pytest.raises(RetryableError, match="1 not claimed"):
            clock.lambda_handler({}, None)  # fails for the error metric, after queueing the rest
    finally:
        faults.heal()
    assert clock.lambda_handler({}, None) == {"ticks": 1}  # the next sweep: the one left out
    assert clock.lambda_handler({}, None) == {"ticks": 0}
    assert ticks_queued(world) == sorted([first, second])


def test_ticks_the_queue_refused_are_given_back_and_queued_by_the_next_sweep(world: World) -> None:
    due = two_alarms_due(world)
    faults = Faults()
    faults.inject("sqs", "SendMessageBatch", sqs_error("KmsThrottled"), times=1)
    try:
        with pytest.raises(RetryableError, match="2 not queued"):
            clock.lambda_handler({}, None)
    finally:
        faults.heal()
    assert ticks_queued(world) == []
    assert clock.lambda_handler({}, None) == {"ticks": 2}  # not stranded behind their claims
    assert ticks_queued(world) == sorted(due)
