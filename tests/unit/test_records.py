from __future__ import annotations

import json

from app.records import Ignored, MailRef, Tick, items, tick_body
from localaws.events import sqs_event

BUCKET = "relay-incoming-example"


def test_url_encoded_key_is_decoded() -> None:
    record = sqs_event("incoming/camera 3+snap ü.eml", bucket=BUCKET)["Records"][0]
    assert items(record, BUCKET) == [MailRef(BUCKET, "incoming/camera 3+snap ü.eml")]


def test_test_event_is_skipped_not_refused() -> None:
    record = {"messageId": "1", "body": json.dumps({"Event": "s3:TestEvent", "Bucket": BUCKET})}
    [item] = items(record, BUCKET)
    assert isinstance(item, Ignored)
    assert not item.refused


def test_ses_setup_notification_is_skipped() -> None:
    record = sqs_event("incoming/AMAZON_SES_SETUP_NOTIFICATION", bucket=BUCKET)["Records"][0]
    [item] = items(record, BUCKET)
    assert isinstance(item, Ignored)
    assert not item.refused
    assert "setup" in item.why


def test_other_bucket_is_refused() -> None:
    record = sqs_event("incoming/x.eml", bucket="someone-elses-bucket")["Records"][0]
    [item] = items(record, BUCKET)
    assert isinstance(item, Ignored)
    assert item.refused
    assert "someone-elses-bucket" in item.why


def test_garbage_bodies_are_refused() -> None:
    for body in ["not json", "[]", json.dumps({"Records": "x"}), json.dumps({"Records": [{"s3": {}}]})]:
        result = items({"messageId": "1", "body": body}, BUCKET)
        assert all(isinstance(item, Ignored) and item.refused for item in result), body


def test_every_s3_record_of_a_body_is_read() -> None:
    first = json.loads(sqs_event("incoming/a.eml", bucket=BUCKET)["Records"][0]["body"])
    second = json.loads(sqs_event("incoming/b.eml", bucket=BUCKET)["Records"][0]["body"])
    body = {"Records": first["Records"] + second["Records"]}
    assert items({"messageId": "1", "body": json.dumps(body)}, BUCKET) == [
        MailRef(BUCKET, "incoming/a.eml"),
        MailRef(BUCKET, "incoming/b.eml"),
    ]


def test_the_clocks_tick_is_a_tick_and_a_malformed_one_is_refused() -> None:
    fingerprint = "0123456789abcdef0123456789abcdef"
    assert items({"body": tick_body(fingerprint, 1796400000)}, BUCKET) == [Tick(fingerprint, 1796400000)]
    for body in (
        {"alarm_tick": {"fingerprint": "../../etc", "due_at": 1}},
        {"alarm_tick": {"fingerprint": fingerprint, "due_at": "soon"}},
        {"alarm_tick": {"fingerprint": fingerprint, "due_at": True}},
        {"alarm_tick": "now"},
    ):
        (ignored,) = items({"body": json.dumps(body)}, BUCKET)
        assert isinstance(ignored, Ignored)
        assert ignored.refused
