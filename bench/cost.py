"""What AWS bills for the calls a workload made: counted calls in, billable quantities and dollars out.

The storm workload (`bench.storm`) records every call the functions' clients make (service, operation,
parameters, outcome, response); `Usage` turns each into the quantities AWS bills, by the rules of each
service's pricing and developer guide:

- **S3**: PUT, COPY, POST, LIST and the multipart calls are one price tier, GET and all other requests
  the other, DELETE is free; a failed request (a conditional put answered 412) is billed like any other.
- **SES v2**: every recipient of a send is billed; attachment bytes (the non-text parts of a raw mail)
  are billed per GB. A send SES refused is not billed.
- **SQS and SNS**: one request per call and per 64 KB of its payload.
- **DynamoDB on demand**: a write is one unit per 1 KB of the larger of the item before and after it
  (a transaction's writes twice); a read one unit per 4 KB of what it returned (rounded up per call,
  eventually consistent and index reads half); a failed conditional write costs the existing item's
  size. Each global secondary index the write changes costs a write of its entry (a changed index key
  two: the old entry's delete and the new one's put). The item before a write is known because every
  write of the run went through here (`DynamoDB` keeps their items).

`bill` multiplies the quantities by the price table (`bench/prices.json`). Nothing here reads a clock or
talks to AWS, so the rules are unit-tested on their own.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

PRICES = Path(__file__).resolve().parent / "prices.json"
KB = 1024
WRITE_UNIT = 1 * KB
READ_UNIT = 4 * KB
SQS_CHUNK = 64 * KB
SES_CHUNK = 256 * KB
GB = 1024**3

S3_TIER1 = frozenset(
    {
        "PutObject", "CopyObject", "PostObject", "ListObjects", "ListObjectsV2", "ListObjectVersions",
        "ListMultipartUploads", "ListParts", "CreateMultipartUpload", "UploadPart", "UploadPartCopy",
        "CompleteMultipartUpload", "ListBuckets",
    }
)  # fmt: skip
S3_FREE = frozenset({"DeleteObject", "DeleteObjects", "AbortMultipartUpload"})


class Unpriced(RuntimeError):
    """A call this module has no billing rule for: counting it as anything would be a guess."""


@dataclass(frozen=True)
class Call:
    """One API call a function's client made, as its botocore events saw it."""

    service: str  # botocore's service id, hyphenated: s3, sesv2, dynamodb, secrets-manager...
    operation: str
    params: Mapping[str, Any]
    ok: bool
    error: str = ""  # the error code of a failed call
    response: Mapping[str, Any] = field(default_factory=dict)
    at: datetime | None = None  # the simulated time of the call


# -- DynamoDB -----------------------------------------------------------------------------------------


def number_size(text: str) -> int:
    """A number's size: one byte per two significant digits, plus one (leading and trailing zeros
    trimmed)."""
    mantissa = text.lstrip("+-").lower().partition("e")[0].replace(".", "")
    digits = mantissa.strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def value_size(value: Mapping[str, Any]) -> int:
    """The size of one attribute value in DynamoDB's wire form ({"S": ...}, {"M": {...}}...)."""
    (kind, content), *_ = value.items()
    match kind:
        case "S":
            return len(str(content).encode())
        case "N":
            return number_size(str(content))
        case "B":
            return len(content)
        case "BOOL" | "NULL":
            return 1
        case "SS":
            return sum(len(str(s).encode()) for s in content)
        case "NS":
            return sum(number_size(str(n)) for n in content)
        case "BS":
            return sum(len(b) for b in content)
        case "L":
            return 3 + sum(1 + value_size(v) for v in content)
        case "M":
            return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in content.items())
    raise Unpriced(f"a DynamoDB value of type {kind}")


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """An item's size: the UTF-8 length of each attribute's name plus its value's size."""
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT))
    return float(units) if consistent else units / 2


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str  # ALL, KEYS_ONLY or INCLUDE
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schema:
    """A table's keys and global secondary indexes, from its CreateTable arguments."""

    keys: tuple[str, ...]
    indexes: tuple[Index, ...] = ()

    @classmethod
    def from_create(cls, create: Mapping[str, Any]) -> Schema:
        def names(key_schema: list[dict[str, str]]) -> tuple[str, ...]:
            return tuple(k["AttributeName"] for k in key_schema)

        indexes = tuple(
            Index(
                gsi["IndexName"],
                names(gsi["KeySchema"]),
                gsi["Projection"]["ProjectionType"],
                tuple(gsi["Projection"].get("NonKeyAttributes", ())),
            )
            for gsi in create.get("GlobalSecondaryIndexes", ())
        )
        return cls(names(create["KeySchema"]), indexes)

    def key(self, item: Mapping[str, Any]) -> str:
        return json.dumps([item[name] for name in self.keys], sort_keys=True, default=str)

    def entry(self, index: Index, item: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The item as the index holds it; None when the item lacks an index key (a sparse index)."""
        if item is None or any(name not in item for name in index.keys):
            return None
        if index.projection == "ALL":
            return dict(item)
        kept = {*self.keys, *index.keys, *(index.include if index.projection == "INCLUDE" else ())}
        return {name: value for name, value in item.items() if name in kept}


_ASSIGNMENT = re.compile(r"^\s*(?P<name>[#\w]+)\s*=\s*(?P<value>:\w+)\s*$")


def apply_update(item: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The item after an UpdateItem of `SET a = :x, b = :y` (the only form the relay uses)."""
    expression = str(params.get("UpdateExpression", ""))
    verb, _, assignments = expression.strip().partition(" ")
    if verb.upper() != "SET":
        raise Unpriced(f"UpdateExpression {expression!r}")
    names, values = params.get("ExpressionAttributeNames", {}), params.get("ExpressionAttributeValues", {})
    updated = dict(item)
    for assignment in assignments.split(","):
        found = _ASSIGNMENT.match(assignment)
        if found is None:
            raise Unpriced(f"UpdateExpression {expression!r}")
        name = names.get(found["name"], found["name"])
        updated[name] = values[found["value"]]
    return updated


class DynamoDB:
    """On-demand request units of the calls, with the items every write left (to size the next)."""

    def __init__(self, schemas: Mapping[str, Schema]) -> None:
        self.schemas = dict(schemas)
        self.items: dict[str, dict[str, dict[str, Any]]] = {table: {} for table in schemas}
        self.units: defaultdict[str, float] = defaultdict(float)  # "wru table", "wru index", "rru"
        self.by_operation: defaultdict[str, float] = defaultdict(float)  # "<operation> wru|rru" -> units
        self.failed_writes = 0

    def call(self, call: Call) -> None:
        params, op = call.params, call.operation
        if op in ("GetItem", "Query", "Scan"):
            self._read(call)
        elif op in ("PutItem", "UpdateItem", "DeleteItem"):
            self._write(op, {op.removesuffix("Item"): params}, call.ok, transactional=False)
        elif op == "TransactWriteItems":
            for action in params["TransactItems"]:
                self._write(op, action, call.ok, transactional=True)
        else:
            raise Unpriced(f"DynamoDB {op}")

    def _read(self, call: Call) -> None:
        params, response = call.params, call.response
        if call.operation == "GetItem":
            found = response.get("Item")
            size = item_size(found) if found else 0
        else:
            size = sum(item_size(found) for found in response.get("Items", []))
        consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
        units = read_units(size, consistent)
        self.units["rru"] += units
        self.by_operation[f"{call.operation} rru"] += units

    def _write(self, operation: str, action: Mapping[str, Any], ok: bool, transactional: bool) -> None:
        (verb, request), *_ = action.items()
        table = request["TableName"]
        schema, items = self.schemas[table], self.items[table]
        key_item = request.get("Item") or request["Key"]
        key = schema.key(key_item)
        before = items.get(key)
        match verb:
            case "Put":
                after: dict[str, Any] | None = dict(request["Item"])
            case "Update":
                after = apply_update(before or request["Key"], request)
            case "Delete":
                after = None
            case _:
                raise Unpriced(f"DynamoDB {operation} {verb}")
        factor = 2 if transactional else 1
        if not ok:  # a failed condition: the existing item's size (at least one unit), nothing written
            self.failed_writes += 1
            units = write_units(item_size(before)) * factor
            self.units["wru table"] += units
            self.by_operation[f"{operation} wru"] += units
            return
        units = write_units(max(item_size(before), item_size(after))) * factor
        self.units["wru table"] += units
        self.by_operation[f"{operation} wru"] += units
        for index in schema.indexes:
            index_units = self._index_units(schema, index, before, after)
            self.units["wru index"] += index_units
            self.by_operation[f"index {index.name} wru"] += index_units
        if after is None:
            items.pop(key, None)
        else:
            items[key] = after

    @staticmethod
    def _index_units(
        schema: Schema, index: Index, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
    ) -> int:
        old, new = schema.entry(index, before), schema.entry(index, after)
        if old is None and new is None:
            return 0
        if old is None or new is None:  # put into the index, or deleted from it
            return write_units(item_size(old if new is None else new))
        if any(old[k] != new[k] for k in index.keys):  # moved: delete the old entry, put the new
            return write_units(item_size(old)) + write_units(item_size(new))
        return write_units(item_size(new)) if old != new else 0


# -- every service ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """A share of one billed quantity, and whether it was counted from calls or follows from them."""

    price: str  # a key of the price table
    what: str
    counted: bool


class Usage:
    """Billable quantities of a run: the functions' counted calls, and what AWS does on their behalf."""

    def __init__(self, schemas: Mapping[str, Schema], buckets: Mapping[str, str]) -> None:
        self.dynamodb = DynamoDB(schemas)
        self.buckets = dict(buckets)  # "incoming" and "attachments" -> bucket name
        self.parts: defaultdict[Part, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()  # "<service> <operation>" -> calls
        self.sends: list[Call] = []

    def add(self, price: str, what: str, quantity: float, counted: bool = True) -> None:
        self.parts[Part(price, what, counted)] += quantity

    def quantities(self) -> dict[str, float]:
        totals: defaultdict[str, float] = defaultdict(float)
        for part, quantity in self.parts.items():
            totals[part.price] += quantity
        totals["dynamodb_wru"] += self.dynamodb.units["wru table"] + self.dynamodb.units["wru index"]
        totals["dynamodb_rru"] += self.dynamodb.units["rru"]
        return {price: quantity for price, quantity in sorted(totals.items()) if quantity}

    def breakdown(self) -> list[dict[str, Any]]:
        rows = [
            {"price": p.price, "what": p.what, "quantity": q, "counted": p.counted}
            for p, q in sorted(self.parts.items(), key=lambda item: (item[0].price, item[0].what))
        ]
        rows += [
            {"price": "dynamodb_rru" if kind.endswith("rru") else "dynamodb_wru", "what": f"DynamoDB {kind}",
             "quantity": units, "counted": True}
            for kind, units in sorted(self.dynamodb.by_operation.items())
        ]  # fmt: skip
        return rows

    # -- what AWS does for the relay, per event ------------------------------------------------------
    def mail_received(self, size: int) -> None:
        """SES receives a mail, stores it in S3 (one PUT), and S3 notifies the inbound queue."""
        self.add("ses_inbound_mail", "mails received", 1, counted=False)
        self.add("ses_inbound_chunk", "256 KB chunks of mails received", max(1, math.ceil(size / SES_CHUNK)),
                 counted=False)  # fmt: skip
        self.add("s3_tier1_request", "S3 PutObject raw mail (by SES)", 1, counted=False)
        self.add("sqs_request", "SQS SendMessage (S3's notification of a mail)", 1, counted=False)

    def batch_delivered(self) -> None:
        """The event source mapping receives a batch and deletes it once the function returns."""
        self.add("sqs_request", "SQS ReceiveMessage (the event source mapping)", 1, counted=False)
        self.add("sqs_request", "SQS DeleteMessageBatch (the event source mapping)", 1, counted=False)

    def invocation(self, function: str, memory_mb: int, seconds: float) -> None:
        """One invocation: a request, its duration rounded up to the millisecond at the function's
        memory, and one trace (Tracing: Active; the default sampling rule records the first request of
        each second, and these functions run less than once a second)."""
        billed_ms = math.ceil(seconds * 1000)
        self.add("lambda_request", f"{function} invocations", 1)
        self.add("lambda_gb_second", f"{function} GB-s ({memory_mb} MB)", billed_ms / 1000 * memory_mb / 1024)
        self.add("xray_trace", f"{function} traces", 1, counted=False)

    # -- the functions' own calls --------------------------------------------------------------------
    def call(self, call: Call) -> None:
        self.calls[f"{call.service} {call.operation}"] += 1
        match call.service:
            case "s3":
                self._s3(call)
            case "sesv2":
                self._ses(call)
            case "dynamodb":
                self.dynamodb.call(call)
            case "sqs":
                self.add("sqs_request", f"SQS {call.operation}", _chunks(_sqs_payload(call), SQS_CHUNK))
            case "sns":
                payload = len(str(call.params.get("Message", "")).encode())
                self.add("sns_request", f"SNS {call.operation}", _chunks(payload, SQS_CHUNK))
            case "secrets-manager":
                self.add("secretsmanager_call", f"Secrets Manager {call.operation}", 1)
            case _:
                raise Unpriced(f"{call.service} {call.operation}")

    def _s3(self, call: Call) -> None:
        if call.operation in S3_FREE:
            return
        tier = "s3_tier1_request" if call.operation in S3_TIER1 else "s3_tier2_request"
        kind = self._s3_kind(str(call.params.get("Bucket", "")), str(call.params.get("Key", "")))
        refused = f" ({call.error})" if call.error else ""
        self.add(tier, f"S3 {call.operation} {kind}{refused}", 1)

    def _s3_kind(self, bucket: str, key: str) -> str:
        if bucket == self.buckets.get("incoming"):
            if key.startswith("markers/"):
                return "marker"
            if key.startswith("config/"):
                return "recipients document"
            return "raw mail"
        if bucket == self.buckets.get("attachments"):
            return "manifest" if key.endswith("manifest.json") else "attachment"
        return f"in {bucket}"

    def _ses(self, call: Call) -> None:
        if call.operation != "SendEmail":
            raise Unpriced(f"sesv2 {call.operation}")
        if not call.ok:
            return
        self.add("ses_outbound_recipient", "SES recipients of SendEmail", recipients(call))
        self.add("ses_outbound_attachment_gb", "SES attachment GB", attachment_bytes(raw_mail(call)) / GB)
        self.sends.append(call)


def recipients(send: Call) -> int:
    """Every address a send goes to (To, Cc and Bcc): SES bills each."""
    destination = send.params.get("Destination", {})
    return sum(len(destination.get(k, ())) for k in ("ToAddresses", "CcAddresses", "BccAddresses"))


def raw_mail(send: Call) -> bytes:
    """The raw message of a send (the relay sends raw mail only)."""
    data = send.params.get("Content", {}).get("Raw", {}).get("Data", b"")
    return data if isinstance(data, bytes) else str(data).encode()


def attachment_bytes(raw: bytes) -> int:
    """The decoded bytes of a raw mail's parts that are not text (attachments, inline images)."""
    if not raw:
        return 0
    message = message_from_bytes(raw, policy=policy.default)
    total = 0
    for part in message.walk():
        if part.is_multipart():
            continue
        if part.get_content_maintype() != "text" or part.get_content_disposition() == "attachment":
            payload = part.get_payload(decode=True)
            total += len(payload) if isinstance(payload, bytes) else 0
    return total


def _sqs_payload(call: Call) -> int:
    params = call.params
    if "Entries" in params and call.operation.startswith("SendMessage"):
        return sum(len(str(e.get("MessageBody", "")).encode()) for e in params["Entries"])
    return len(str(params.get("MessageBody", "")).encode())


def _chunks(size: int, chunk: int) -> int:
    return max(1, math.ceil(size / chunk))


# -- prices -------------------------------------------------------------------------------------------


def load_prices(path: Path = PRICES) -> dict[str, Any]:
    table: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return table


def bill(quantities: Mapping[str, float], table: Mapping[str, Any]) -> dict[str, Any]:
    """Each quantity times its price in `table`; a quantity without a price is an error, not free."""
    prices = table["prices"]
    unpriced = sorted(set(quantities) - set(prices))
    if unpriced:
        raise Unpriced(f"no price for {', '.join(unpriced)} in the price table")
    lines = [
        {
            "price": name,
            "quantity": quantities.get(name, 0),
            "unit": price["unit"],
            "usd_per": price["usd"],
            "per": price["per"],
            "usd": quantities.get(name, 0) * price["usd"] / price["per"],
        }
        for name, price in prices.items()
    ]
    return {"lines": lines, "total_usd": sum(line["usd"] for line in lines)}
