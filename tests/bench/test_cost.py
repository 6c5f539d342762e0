"""The billing rules of the storm's cost (bench/cost.py): DynamoDB's item sizes and request units (index
writes, transactions), S3's tiers, SES's recipients, SQS's 64 KB chunks, and the price table."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from bench import cost

TABLE = "alarms"
# The alarm table's shape (template.yaml's IncidentsTable): a sparse KEYS_ONLY index and an ALL one.
CREATE = {
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "due",
            "KeySchema": [
                {"AttributeName": "due_shard", "KeyType": "HASH"},
                {"AttributeName": "due_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        },
        {
            "IndexName": "group",
            "KeySchema": [{"AttributeName": "group", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
        },
    ],
}


def s(text: str) -> dict[str, str]:
    return {"S": text}


def n(number: int) -> dict[str, str]:
    return {"N": str(number)}


def state(body_bytes: int, due_at: int | None = None, group: str = "g1") -> dict[str, Any]:
    item = {"pk": s("A#f"), "sk": s("state"), "state": s("x" * body_bytes), "group": s(group)}
    if due_at is not None:
        item |= {"due_shard": s("due"), "due_at": n(due_at)}
    return item


def meter() -> cost.DynamoDB:
    return cost.DynamoDB({TABLE: cost.Schema.from_create(CREATE)})


def put(item: dict[str, Any], ok: bool = True) -> cost.Call:
    return cost.Call("dynamodb", "PutItem", {"TableName": TABLE, "Item": item}, ok)


@pytest.mark.unit
def test_item_size_follows_the_developer_guide() -> None:
    # names and strings are UTF-8 bytes; a number one byte per two significant digits plus one
    assert cost.item_size({"pk": s("abc")}) == 2 + 3
    assert cost.item_size({"é": s("ü")}) == 2 + 2
    assert cost.number_size("1700000000") == 2  # "17": trailing zeros trimmed
    assert cost.number_size("-0.00123") == 3  # "123"
    assert cost.item_size({"n": n(12345)}) == 1 + 4
    assert cost.item_size({"b": {"B": b"\x00" * 10}, "t": {"BOOL": True}}) == 1 + 10 + 1 + 1
    # a map: 3 bytes, and each element its name, its value and 1 byte
    assert cost.item_size({"m": {"M": {"k": s("vv")}}}) == 1 + 3 + (1 + 1 + 2)
    assert cost.item_size({"l": {"L": [s("a"), n(5)]}}) == 1 + 3 + (1 + 1) + (1 + 2)
    assert cost.item_size({"ss": {"SS": ["ab", "c"]}}) == 2 + 3


@pytest.mark.unit
def test_units_round_up_to_1_kb_writes_and_4_kb_reads() -> None:
    assert [cost.write_units(size) for size in (0, 1, 1024, 1025, 3000)] == [1, 1, 1, 2, 3]
    assert cost.read_units(4096, consistent=True) == 1
    assert cost.read_units(4097, consistent=True) == 2
    assert cost.read_units(4097, consistent=False) == 1
    assert cost.read_units(0, consistent=False) == 0.5


@pytest.mark.unit
def test_a_new_item_in_both_indexes_costs_its_write_and_one_per_index() -> None:
    dynamodb = meter()
    dynamodb.call(put(state(1500, due_at=100)))
    assert dynamodb.units["wru table"] == 2  # about 1.6 KB
    assert dynamodb.by_operation["index due wru"] == 1  # keys only
    assert dynamodb.by_operation["index group wru"] == 2  # the whole item


@pytest.mark.unit
def test_rewriting_an_item_costs_the_larger_version_and_a_moved_index_key_two_writes() -> None:
    dynamodb = meter()
    dynamodb.call(put(state(2500, due_at=100)))
    dynamodb.units.clear()
    dynamodb.by_operation.clear()
    dynamodb.call(put(state(100, due_at=200)))  # smaller, and due later: the due entry moves
    assert dynamodb.units["wru table"] == 3  # the item before, 2.5 KB
    assert dynamodb.by_operation["index due wru"] == 2  # delete the old entry, put the new
    assert dynamodb.by_operation["index group wru"] == 1  # the new, small entry
    dynamodb.by_operation.clear()
    dynamodb.call(put(state(100)))  # no longer due: out of the sparse index
    assert dynamodb.by_operation["index due wru"] == 1
    dynamodb.by_operation.clear()
    dynamodb.call(put(state(100)))  # the same item again: no index entry changes
    assert dynamodb.by_operation["index due wru"] == 0
    assert dynamodb.by_operation["index group wru"] == 0


@pytest.mark.unit
def test_an_update_outside_a_keys_only_index_writes_only_the_all_index() -> None:
    dynamodb = meter()
    dynamodb.call(put(state(10, due_at=100)))
    dynamodb.by_operation.clear()
    update = {
        "TableName": TABLE,
        "Key": {"pk": s("A#f"), "sk": s("state")},
        "UpdateExpression": "SET tick_for = :due, tick_at = :now",
        "ExpressionAttributeValues": {":due": n(100), ":now": n(40)},
    }
    dynamodb.call(cost.Call("dynamodb", "UpdateItem", update, True))
    assert dynamodb.by_operation["UpdateItem wru"] == 1
    assert dynamodb.by_operation["index due wru"] == 0
    assert dynamodb.by_operation["index group wru"] == 1
    assert dynamodb.items[TABLE][cost.Schema.from_create(CREATE).key(state(0))]["tick_for"] == n(100)
    with pytest.raises(cost.Unpriced):
        dynamodb.call(cost.Call("dynamodb", "UpdateItem", {**update, "UpdateExpression": "ADD c :one"}, True))


@pytest.mark.unit
def test_a_transaction_costs_each_write_twice_and_a_failed_condition_the_existing_item() -> None:
    dynamodb = meter()
    row = {"pk": s("A#f"), "sk": s("row#1"), "row": s("r" * 1100)}
    transaction = {"TransactItems": [{"Put": {"TableName": TABLE, "Item": row}},
                                     {"Put": {"TableName": TABLE, "Item": state(10)}}]}  # fmt: skip
    dynamodb.call(cost.Call("dynamodb", "TransactWriteItems", transaction, True))
    assert dynamodb.by_operation["TransactWriteItems wru"] == 2 * 2 + 2 * 1
    dynamodb.call(put(state(3000), ok=False))  # version condition failed: the 10-byte state stands
    assert dynamodb.by_operation["PutItem wru"] == 1
    assert dynamodb.failed_writes == 1
    assert cost.item_size(dynamodb.items[TABLE][cost.Schema.from_create(CREATE).key(state(0))]) < 100


@pytest.mark.unit
def test_reads_cost_what_they_returned_and_index_queries_half() -> None:
    dynamodb = meter()
    big = state(5000)
    dynamodb.call(cost.Call("dynamodb", "GetItem", {"ConsistentRead": True}, True, response={"Item": big}))
    dynamodb.call(cost.Call("dynamodb", "GetItem", {"ConsistentRead": True}, True, response={}))
    query = {"IndexName": "due", "ConsistentRead": False}
    dynamodb.call(cost.Call("dynamodb", "Query", query, True, response={"Items": [big, big]}))
    assert dynamodb.by_operation["GetItem rru"] == 2 + 1  # 5 KB, then nothing found (still one unit)
    assert dynamodb.by_operation["Query rru"] == 1.5  # 10 KB together, eventually consistent


def usage() -> cost.Usage:
    return cost.Usage({TABLE: cost.Schema.from_create(CREATE)}, {"incoming": "in", "attachments": "att"})


@pytest.mark.unit
def test_s3_requests_are_priced_by_tier_and_named_by_what_they_store() -> None:
    meter = usage()
    for operation, bucket, key, ok in (
        ("GetObject", "in", "incoming/a.eml", True),
        ("PutObject", "in", "markers/d/send-1-of-1", False),  # a claim taken: 412, billed all the same
        ("PutObject", "att", "attachments/d/2/reading.csv", True),
        ("PutObject", "att", "attachments/d/manifest.json", True),
        ("DeleteObject", "in", "markers/d/send-1-of-1", True),  # free
    ):
        meter.call(
            cost.Call("s3", operation, {"Bucket": bucket, "Key": key}, ok, "" if ok else "PreconditionFailed")
        )
    assert meter.quantities() == {"s3_tier1_request": 3, "s3_tier2_request": 1}
    assert {row["what"] for row in meter.breakdown()} == {
        "S3 GetObject raw mail",
        "S3 PutObject marker (PreconditionFailed)",
        "S3 PutObject attachment",
        "S3 PutObject manifest",
    }


@pytest.mark.unit
def test_ses_bills_every_recipient_and_the_bytes_of_attachments_not_text() -> None:
    message = EmailMessage()
    message.set_content("Readings attached.")
    message.add_attachment(b"\x01" * 3000, maintype="application", subtype="octet-stream", filename="r.bin")
    send = {"Destination": {"BccAddresses": ["a@x.com", "b@y.org", "c@z.net"]},
            "Content": {"Raw": {"Data": message.as_bytes()}}}  # fmt: skip
    meter = usage()
    meter.call(cost.Call("sesv2", "SendEmail", send, True))
    meter.call(cost.Call("sesv2", "SendEmail", send, False))  # refused by SES: not billed
    assert meter.quantities()["ses_outbound_recipient"] == 3
    assert meter.quantities()["ses_outbound_attachment_gb"] == 3000 / cost.GB
    assert len(meter.sends) == 1


@pytest.mark.unit
def test_sqs_counts_64_kb_chunks_and_the_events_aws_handles_for_the_relay() -> None:
    meter = usage()
    entries = [{"Id": str(i), "MessageBody": "x" * 30_000} for i in range(3)]
    meter.call(cost.Call("sqs", "SendMessageBatch", {"Entries": entries}, True))  # 90 KB: 2 requests
    meter.call(cost.Call("sqs", "ChangeMessageVisibility", {"ReceiptHandle": "h"}, True))
    assert meter.quantities() == {"sqs_request": 3}
    meter.mail_received(300 * 1024)  # two chunks of 256 KB; SES's PUT; S3's notification
    meter.batch_delivered()  # the event source mapping's receive and delete
    meter.invocation("relay", 512, 0.0401)
    quantities = meter.quantities()
    assert quantities["ses_inbound_mail"] == 1
    assert quantities["ses_inbound_chunk"] == 2
    assert quantities["s3_tier1_request"] == 1
    assert quantities["sqs_request"] == 3 + 1 + 2
    assert quantities["lambda_request"] == quantities["xray_trace"] == 1
    assert quantities["lambda_gb_second"] == pytest.approx(0.041 * 0.5)  # 41 ms billed at 512 MB
    counted = {row["what"]: row["counted"] for row in meter.breakdown()}
    assert counted["SQS SendMessageBatch"] is True
    assert counted["S3 PutObject raw mail (by SES)"] is False


@pytest.mark.unit
def test_a_call_without_a_billing_rule_stops_the_count() -> None:
    with pytest.raises(cost.Unpriced, match="kinesis PutRecord"):
        usage().call(cost.Call("kinesis", "PutRecord", {}, True))
    with pytest.raises(cost.Unpriced, match="BatchWriteItem"):
        usage().call(cost.Call("dynamodb", "BatchWriteItem", {}, True))


@pytest.mark.unit
def test_the_bill_is_each_quantity_times_the_table_price(tmp_path: Path) -> None:
    table = cost.load_prices()
    quantities = {"ses_outbound_recipient": 4320, "dynamodb_wru": 2_000_000, "lambda_gb_second": 36.0}
    bill = cost.bill(quantities, table)
    lines = {line["price"]: line for line in bill["lines"]}
    for name, quantity in quantities.items():
        price = table["prices"][name]
        assert lines[name]["usd"] == pytest.approx(quantity * price["usd"] / price["per"])
    assert bill["total_usd"] == pytest.approx(sum(line["usd"] for line in bill["lines"]))
    # another table, other dollars: the prices come from the file, nowhere else
    doubled = {**table, "prices": {k: {**v, "usd": v["usd"] * 2} for k, v in table["prices"].items()}}
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(doubled))
    assert cost.bill(quantities, cost.load_prices(path))["total_usd"] == pytest.approx(2 * bill["total_usd"])
    with pytest.raises(cost.Unpriced, match="carrier_pigeon"):
        cost.bill({"carrier_pigeon": 1}, table)


@pytest.mark.unit
def test_the_price_table_says_when_and_where_and_where_each_price_is_from() -> None:
    table = cost.load_prices()
    assert table["date"]
    assert (table["region"], table["currency"]) == ("us-east-1", "USD")
    for name, price in table["prices"].items():
        assert min(price["usd"], price["per"]) > 0, name
        assert price["source"].startswith("https://aws.amazon.com/"), name
        assert price["confirmed"], name  # what confirmed it, or that nothing could
