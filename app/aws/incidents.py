"""The alarm table (DynamoDB): the only code that knows how alarm folding is stored.

One item per alarm (fingerprint) holds its `timeline.State` and a `version`; every write of it is a
`PutItem` conditional on the version read, so two invocations deciding the same alarm at once cannot both
win (the loser reads again and decides again: the second of two "first" mails becomes a repeat). A mail's
decision is kept under its incoming key, written only if absent, in the same transaction as the state and
the folded mail's row: a redelivered mail finds its decision and changes nothing, so a repeat is never
counted twice. Closed incidents keep a small record for `relayctl alarms`.

    pk = "A#<fingerprint>"  sk = "state"            the alarm's State (JSON), version, group, due_at
    pk = "A#<fingerprint>"  sk = "row#<seq>"        a folded mail (JSON)
    pk = "A#<fingerprint>"  sk = "closed#<incident>" a closed incident (JSON)
    pk = "A#<fingerprint>"  sk = "digest#<id>"      a digest the relay queued (JSON), for its history
    pk = "K#<incoming key>" sk = "seen"             a mail's decision (JSON)

Two sparse indexes: `due` (due_shard = "due", due_at) holds the states a tick must look at, for the
clock; `group` (group) the states of one sender and recipient set, for pairing a recovery. Items of idle
alarms, rows, decisions and closed records expire through the table's TTL attribute `expires_at`.
A lost condition and a transaction conflict are a `Conflict`: another invocation is changing the alarm,
so the caller reads it again and decides again. DynamoDB cancels a transaction that meets another one
on an item with the cancellation reason `TransactionConflict`, and refuses a single-item write to an item
an ongoing transaction holds with `TransactionConflictException` (DynamoDB API Reference,
TransactionCanceledException and PutItem/UpdateItem errors); botocore does not retry either. Other
errors are `Unavailable`: the relay then relays the mail as it would without folding (fail open) and
says so in its metrics.

The functions use the clients of `app.aws.clients` (X-Ray, the function's retries); relayctl hands in
its own DynamoDB client (its profile and region), so this module imports that factory only when asked
for it, and relayctl installs without the function's tracing library.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.alarms.timeline import Closed, Closing, Digest, Row, Seen, State, Step
from app.aws import error_codes
from app.errors import RetryableError

STALE_TICK = timedelta(minutes=20)  # a tick still unprocessed after this (retries included) is queued again
RETAIN = timedelta(days=30)  # an idle alarm, its rows, decisions and closed incidents: then TTL deletes them
# A step queues at most this many digests (four due events and the mail's own): their history records
# are written with it, and the transaction stays far below DynamoDB's 100 items however long the outbox.
DIGESTS_PER_STEP = 5
DUE_SHARD = "due"
DUE_INDEX = "due"
GROUP_INDEX = "group"
_CONDITION_FAILED = {"ConditionalCheckFailedException"}
_TRANSACTION_CONFLICT = {"TransactionConflictException"}  # a single-item write met a transaction
_CANCELLED = {"TransactionCanceledException"}
_LOST = {"ConditionalCheckFailed", "TransactionConflict"}  # cancellation reasons: another writer won


class Unavailable(RetryableError):
    """The table could not be read or written (throttled, missing, denied, unreachable)."""


class Conflict(Exception):
    """Another invocation changed the alarm since it was read: read it again and decide again."""


class AlreadyDecided(Exception):
    """The mail's decision was kept by an earlier delivery: decide it again with that decision."""


@dataclass(frozen=True)
class Stored:
    state: State
    version: int


@dataclass(frozen=True)
class Due:
    fingerprint: str
    due_at: datetime


class Incidents:
    def __init__(self, table: str, dynamodb: Any = None) -> None:
        """`dynamodb`: a boto3 DynamoDB client; None: the function's own (app.aws.clients)."""
        self.table = table
        self._dynamodb = dynamodb

    def _client(self) -> Any:
        if self._dynamodb is None:
            from app.aws import clients

            return clients.client("dynamodb")
        return self._dynamodb

    # -- reads -------------------------------------------------------------------------------------
    def load(self, fingerprint: str) -> Stored | None:
        item = self._call("get_item", Key=_key(_alarm(fingerprint), "state"), ConsistentRead=True).get("Item")
        return _stored(item) if item else None

    def load_group(self, group: str) -> list[Stored]:
        """The alarms of one sender and recipient set (the index is eventually consistent)."""
        return [
            _stored(item)
            for item in self._query(
                IndexName=GROUP_INDEX,
                KeyConditionExpression="#g = :g",
                ExpressionAttributeNames={"#g": "group"},
                ExpressionAttributeValues={":g": {"S": group}},
            )
        ]

    def load_seen(self, incoming_key: str) -> Seen | None:
        key = _key(_mail(incoming_key), "seen")
        item = self._call("get_item", Key=key, ConsistentRead=True).get("Item")
        return _decoded(item, "seen", Seen.from_dict) if item else None

    def rows(self, fingerprint: str, after: int, through: int) -> list[Row]:
        """The folded mails with after < seq <= through, in order."""
        if through <= after:
            return []
        items = self._query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": {"S": _alarm(fingerprint)},
                ":low": {"S": _row(after + 1)},
                ":high": {"S": _row(through)},
            },
            ConsistentRead=True,
        )
        return [_decoded(item, "row", Row.from_dict) for item in items]

    def closed(self, fingerprint: str) -> list[Closed]:
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :closed)",
            ExpressionAttributeValues={":pk": {"S": _alarm(fingerprint)}, ":closed": {"S": "closed#"}},
        )
        return [_decoded(item, "closed", _closed_from) for item in items]

    def digests(self, fingerprint: str) -> list[Digest]:
        """The digests queued for the alarm (those of the last RETAIN), oldest first."""
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :digest)",
            ExpressionAttributeValues={":pk": {"S": _alarm(fingerprint)}, ":digest": {"S": "digest#"}},
        )
        found = [_decoded(item, "digest", Digest.from_dict) for item in items]
        return sorted(found, key=lambda d: (d.created_at, d.id))

    def alarms(self) -> Iterator[Stored]:
        """Every alarm's state (a scan: for the operator's tools, not the mail's path)."""
        paginator = self._client().get_paginator("scan")
        try:
            for page in paginator.paginate(
                TableName=self.table,
                FilterExpression="sk = :state",
                ExpressionAttributeValues={":state": {"S": "state"}},
            ):
                yield from (_stored(item) for item in page.get("Items", []))
        except (ClientError, BotoCoreError) as e:
            raise Unavailable(f"scanning the alarm table: {error_codes.describe(e)}") from e

    def due(self, before: datetime) -> list[Due]:
        """The alarms a tick must look at by `before` (the clock)."""
        items = self._query(
            IndexName=DUE_INDEX,
            KeyConditionExpression="due_shard = :shard AND due_at <= :before",
            ExpressionAttributeValues={
                ":shard": {"S": DUE_SHARD},
                ":before": {"N": str(int(before.timestamp()))},
            },
        )
        return [Due(item["pk"]["S"].removeprefix("A#"), _time(item["due_at"]["N"])) for item in items]

    # -- writes ------------------------------------------------------------------------------------
    def claim_tick(self, fingerprint: str, due_at: datetime, now: datetime) -> bool:
        """True once per due time (again after STALE_TICK): the clock queues a tick only when it wins.
        Raises Conflict when a transaction is changing the alarm right now (try again), Unavailable."""
        try:
            self._client().update_item(
                TableName=self.table,
                Key=_key(_alarm(fingerprint), "state"),
                UpdateExpression="SET tick_for = :due, tick_at = :now",
                ConditionExpression="due_at = :due AND "
                "(attribute_not_exists(tick_for) OR tick_for <> :due OR tick_at < :stale)",
                ExpressionAttributeValues={
                    ":due": {"N": str(int(due_at.timestamp()))},
                    ":now": {"N": str(int(now.timestamp()))},
                    ":stale": {"N": str(int((now - STALE_TICK).timestamp()))},
                },
            )
        except ClientError as e:
            if error_codes.code(e) in _CONDITION_FAILED:
                return False
            if error_codes.code(e) in _TRANSACTION_CONFLICT:
                raise Conflict(fingerprint) from e
            raise Unavailable(f"claiming the tick of {fingerprint}: {error_codes.describe(e)}") from e
        except BotoCoreError as e:
            raise Unavailable(f"claiming the tick of {fingerprint}: {type(e).__name__}") from e
        return True

    def release_tick(self, fingerprint: str, due_at: datetime, now: datetime) -> None:
        """Give back a claim the clock made at `now` but could not queue, so the next sweep claims it
        again (a claim changed since, by a write of the alarm or another sweep, is left alone)."""
        try:
            self._client().update_item(
                TableName=self.table,
                Key=_key(_alarm(fingerprint), "state"),
                UpdateExpression="REMOVE tick_for, tick_at",
                ConditionExpression="tick_for = :due AND tick_at = :now",
                ExpressionAttributeValues={
                    ":due": {"N": str(int(due_at.timestamp()))},
                    ":now": {"N": str(int(now.timestamp()))},
                },
            )
        except ClientError as e:
            if error_codes.code(e) in _CONDITION_FAILED:
                return
            raise Unavailable(f"releasing the tick of {fingerprint}: {error_codes.describe(e)}") from e
        except BotoCoreError as e:
            raise Unavailable(f"releasing the tick of {fingerprint}: {type(e).__name__}") from e

    def commit(self, step: Step, version: int | None, now: datetime) -> int:
        """Write what deciding a mail changed: its decision (only if none is kept), its row, the alarm's
        state (only if still at `version`; None: only if new) and closed incidents, all or nothing.
        Returns the new version; raises AlreadyDecided, Conflict or Unavailable."""
        expires = _epoch(now + RETAIN)
        writes: list[dict[str, Any]] = []
        if step.seen is not None:
            seen = {"seen": _json(step.seen.to_dict()), "expires_at": expires}
            writes.append(self._put_new(_key(_mail(step.seen.key), "seen") | seen))
        if step.row is not None:
            # Not conditional: the state's version check already lets only one writer number a row, and
            # TTL deletes in no set order, so a row can outlive its state; the alarm's next life then
            # numbers from 1 again and writes over it (a redelivery is caught by its decision's put).
            row = {"row": _json(step.row.to_dict()), "expires_at": expires}
            item = _key(_alarm(step.row.fingerprint), _row(step.row.seq)) | row
            writes.append({"Put": {"TableName": self.table, "Item": item}})
        for closed in step.closed:
            item = {
                **_key(_alarm(step.state.fingerprint), f"closed#{closed.incident}"),
                "closed": _json(_closed_dict(closed)),
                "expires_at": expires,
            }
            writes.append({"Put": {"TableName": self.table, "Item": item}})
        for digest in step.state.outbox[
            -DIGESTS_PER_STEP:
        ]:  # for relayctl alarms show; rewriting is harmless
            item = {
                **_key(_alarm(digest.fingerprint), f"digest#{digest.id}"),
                "digest": _json(digest.to_dict()),
                "expires_at": expires,
            }
            writes.append({"Put": {"TableName": self.table, "Item": item}})
        writes.append({"Put": self._state_put(step.state, version, now)})
        try:
            self._client().transact_write_items(TransactItems=writes)
        except ClientError as e:
            if error_codes.code(e) in _CANCELLED:
                reasons = [r.get("Code", "None") for r in e.response.get("CancellationReasons", [])]
                if step.seen is not None and reasons and reasons[0] == "ConditionalCheckFailed":
                    raise AlreadyDecided(step.seen.key) from e
                if _LOST.intersection(reasons):
                    raise Conflict(step.state.fingerprint) from e
            raise Unavailable(f"writing the alarm {step.state.fingerprint}: {error_codes.describe(e)}") from e
        except BotoCoreError as e:
            raise Unavailable(f"writing the alarm {step.state.fingerprint}: {type(e).__name__}") from e
        return (version or 0) + 1

    def save(self, state: State, version: int | None, now: datetime) -> int:
        """Write the alarm's state alone (a tick, a mute, an acknowledged digest), if still at `version`."""
        try:
            self._client().put_item(**self._state_put(state, version, now))
        except ClientError as e:
            if error_codes.code(e) in _CONDITION_FAILED | _TRANSACTION_CONFLICT:
                raise Conflict(state.fingerprint) from e
            raise Unavailable(f"writing the alarm {state.fingerprint}: {error_codes.describe(e)}") from e
        except BotoCoreError as e:
            raise Unavailable(f"writing the alarm {state.fingerprint}: {type(e).__name__}") from e
        return (version or 0) + 1

    def _put_new(self, item: dict[str, Any]) -> dict[str, Any]:
        """A transaction's put of an item written once (a mail's decision): only if absent."""
        return {
            "Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}
        }

    def _state_put(self, state: State, version: int | None, now: datetime) -> dict[str, Any]:
        document = state.to_dict()
        item: dict[str, Any] = {
            **_key(_alarm(state.fingerprint), "state"),
            "state": _json(document),
            "version": {"N": str((version or 0) + 1)},
            "group": {"S": state.group},
        }
        due = state.due_at
        if due is not None:  # absent attributes keep the item out of the sparse index
            item |= {"due_shard": {"S": DUE_SHARD}, "due_at": {"N": str(int(due.timestamp()))}}
        if state.incident is None and state.mute is None and not state.outbox:
            item["expires_at"] = _epoch(now + RETAIN)  # idle: forgotten unless it sounds again
        if version is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :version",
                "ExpressionAttributeValues": {":version": {"N": str(version)}},
            }
        return {"TableName": self.table, "Item": item, **condition}

    # -- plumbing ----------------------------------------------------------------------------------
    def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self._client(), operation)(TableName=self.table, **request)
        except (ClientError, BotoCoreError) as e:
            raise Unavailable(f"reading the alarm table: {error_codes.describe(e)}") from e
        return response

    def _query(self, **request: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            page = self._call("query", **request, **({"ExclusiveStartKey": start} if start else {}))
            items += page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return items


def _alarm(fingerprint: str) -> str:
    return f"A#{fingerprint}"


def _mail(incoming_key: str) -> str:
    return f"K#{incoming_key}"


def _row(seq: int) -> str:
    return f"row#{seq:012d}"  # fixed width: the sort key orders rows by number


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _json(document: dict[str, Any]) -> dict[str, str]:
    return {"S": json.dumps(document, separators=(",", ":"), ensure_ascii=False)}


def _epoch(moment: datetime) -> dict[str, str]:
    return {"N": str(int(moment.timestamp()))}


def _time(seconds: str) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def _stored(item: dict[str, Any]) -> Stored:
    return Stored(_decoded(item, "state", State.from_dict), _decoded(item, "version", int))


def _decoded[T](item: dict[str, Any], attribute: str, decode: Callable[[Any], T]) -> T:
    """An item's attribute as this code reads it. One it cannot read (another format, a hand edit) is
    Unavailable like a failed read: a mail is then relayed without folding (when in doubt, relay)
    rather than retried into the DLQ."""
    try:
        value = item[attribute]
        return decode(int(value["N"]) if "N" in value else json.loads(value["S"]))
    except (KeyError, TypeError, ValueError) as e:
        where = f"{item.get('pk', {}).get('S', '?')} {item.get('sk', {}).get('S', '?')}"
        raise Unavailable(f"the item {where} cannot be read: {type(e).__name__} {e}") from e


def _closed_dict(closed: Closed) -> dict[str, Any]:
    return {
        "incident": closed.incident,
        "opened_at": int(closed.opened_at.timestamp()),
        "closed_at": int(closed.closed_at.timestamp()),
        "how": str(closed.how),
        "folded": closed.folded,
        "flapping": closed.flapping,
    }


def _closed_from(item: dict[str, Any]) -> Closed:
    return Closed(
        incident=item["incident"],
        opened_at=_time(str(item["opened_at"])),
        closed_at=_time(str(item["closed_at"])),
        how=Closing(item["how"]),
        folded=int(item["folded"]),
        flapping=bool(item["flapping"]),
    )
