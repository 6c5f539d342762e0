"""The alarm table's adapter against the template's table in moto, with DynamoDB's answers to contention
injected where moto never gives them: another writer winning is a Conflict (read again, decide again),
never "unavailable"; only a real failure is Unavailable."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.alarms.fingerprint import identify
from app.alarms.timeline import Arrival, Policy, Step, on_mail
from app.aws.incidents import AlreadyDecided, Conflict, Incidents, Unavailable
from tests.support.faults import Faults, dynamodb_cancelled, dynamodb_error
from tests.support.world import World

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
IDENTITY = identify("plc-7@plant.example.com", ("ops@example.com",), "PROBLEM: boiler flame lost")


@pytest.fixture
def incidents(world: World) -> Incidents:
    return Incidents(world.environment["INCIDENTS_TABLE"])


@pytest.fixture
def faults() -> Faults:
    return Faults()


def first(key: str = "incoming/1.eml") -> Step:
    return on_mail(None, IDENTITY, Arrival(key, "PROBLEM: boiler flame lost"), NOW, Policy())


def test_a_transaction_cancelled_by_a_concurrent_one_is_a_conflict(
    incidents: Incidents, faults: Faults
) -> None:
    step = first()  # writes: the mail's decision, then the state
    faults.inject(
        "dynamodb", "TransactWriteItems", dynamodb_cancelled("None", "TransactionConflict"), times=1
    )
    with pytest.raises(Conflict):
        incidents.commit(step, None, NOW)
    assert incidents.load(IDENTITY.fingerprint) is None  # nothing was written: decided again, then
    assert incidents.commit(step, None, NOW) == 1


def test_a_decision_held_by_a_concurrent_delivery_of_the_same_mail_is_a_conflict_too(
    incidents: Incidents, faults: Faults
) -> None:
    faults.inject(
        "dynamodb", "TransactWriteItems", dynamodb_cancelled("TransactionConflict", "None"), times=1
    )
    with pytest.raises(Conflict):
        incidents.commit(first(), None, NOW)


def test_a_decision_already_kept_is_already_decided_and_a_lost_state_a_conflict(
    incidents: Incidents, faults: Faults
) -> None:
    incidents.commit(first(), None, NOW)
    with pytest.raises(AlreadyDecided):  # the same mail again: its decision is there
        incidents.commit(first(), None, NOW)
    with pytest.raises(Conflict):  # another mail against the state as it was before
        incidents.commit(first("incoming/2.eml"), None, NOW)


@pytest.mark.parametrize("reason", ["ThrottlingError", "ValidationError", "ProvisionedThroughputExceeded"])
def test_a_transaction_cancelled_for_another_reason_is_unavailable(
    incidents: Incidents, faults: Faults, reason: str
) -> None:
    faults.inject("dynamodb", "TransactWriteItems", dynamodb_cancelled("None", reason))
    with pytest.raises(Unavailable):
        incidents.commit(first(), None, NOW)


def test_a_state_write_refused_for_an_ongoing_transaction_is_a_conflict(
    incidents: Incidents, faults: Faults
) -> None:
    step = first()
    version = incidents.commit(step, None, NOW)
    faults.inject("dynamodb", "PutItem", dynamodb_error("TransactionConflictException"), times=1)
    with pytest.raises(Conflict):
        incidents.save(step.state, version, NOW)
    assert incidents.save(step.state, version, NOW) == version + 1
    faults.inject("dynamodb", "PutItem", dynamodb_error("ResourceNotFoundException"))
    with pytest.raises(Unavailable):
        incidents.save(step.state, version + 1, NOW)


def test_a_claim_refused_for_an_ongoing_transaction_is_a_conflict_not_a_lost_claim(
    incidents: Incidents, faults: Faults
) -> None:
    step = first()
    incidents.commit(step, None, NOW)
    due = step.state.due_at
    assert due is not None
    faults.inject("dynamodb", "UpdateItem", dynamodb_error("TransactionConflictException"), times=1)
    with pytest.raises(Conflict):
        incidents.claim_tick(IDENTITY.fingerprint, due, NOW)
    assert incidents.claim_tick(IDENTITY.fingerprint, due, NOW) is True  # nobody else had claimed it
    assert incidents.claim_tick(IDENTITY.fingerprint, due, NOW + timedelta(minutes=1)) is False
    faults.inject("dynamodb", "UpdateItem", dynamodb_error("ResourceNotFoundException"))
    with pytest.raises(Unavailable):
        incidents.claim_tick(IDENTITY.fingerprint, due, NOW + timedelta(hours=1))


def test_a_claim_is_given_back_only_by_the_sweep_that_made_it(incidents: Incidents) -> None:
    step = first()
    incidents.commit(step, None, NOW)
    due = step.state.due_at
    assert due is not None
    assert incidents.claim_tick(IDENTITY.fingerprint, due, NOW) is True
    incidents.release_tick(IDENTITY.fingerprint, due, NOW + timedelta(minutes=1))  # not its claim
    assert incidents.claim_tick(IDENTITY.fingerprint, due, NOW + timedelta(minutes=2)) is False
    incidents.release_tick(IDENTITY.fingerprint, due, NOW)
    assert incidents.claim_tick(IDENTITY.fingerprint, due, NOW + timedelta(minutes=2)) is True


@pytest.mark.parametrize(
    "change",
    [
        lambda item: item | {"state": {"S": item["state"]["S"].replace('"format":1', '"format":2')}},
        lambda item: item | {"state": {"S": "{not json"}},
        lambda item: {k: v for k, v in item.items() if k != "version"},
    ],
    ids=["another format", "not json", "no version"],
)
def test_an_item_this_code_cannot_read_is_unavailable(
    world: World, incidents: Incidents, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    incidents.commit(first(), None, NOW)
    dynamodb = world.account.client("dynamodb")
    key = {"pk": {"S": f"A#{IDENTITY.fingerprint}"}, "sk": {"S": "state"}}
    item = dynamodb.get_item(TableName=incidents.table, Key=key)["Item"]
    dynamodb.put_item(TableName=incidents.table, Item=change(item))
    with pytest.raises(Unavailable, match="cannot be read"):
        incidents.load(IDENTITY.fingerprint)
    with pytest.raises(Unavailable, match="cannot be read"):
        list(incidents.alarms())
