"""links: sizes, expiry and state of each attachment as the bucket holds it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.support.relayctl import Relay


def test_links_shows_size_expiry_and_state_of_each_attachment(relay: Relay) -> None:
    mail = relay.store_mail(
        "incoming/a1",
        "<a1@sensor>",
        ["ops@example.com"],
        [("a.csv", b"x" * 2048), ("b.csv", b"yy"), ("c.csv", b"z")],
    )
    relay.run("revoke", "--attachments-bucket", relay.attachments_bucket, "--url", _link(relay, mail.keys[1]))
    relay.s3.delete_object(Bucket=relay.attachments_bucket, Key=mail.keys[2])

    report = relay.run_json(
        "links", "--attachments-bucket", relay.attachments_bucket, "--incoming-key", "incoming/a1"
    )

    (listed,) = report["mails"]
    assert [(a["filename"], a["size"], a["state"]) for a in listed["attachments"]] == [
        ("a.csv", 2048, "active"),
        ("b.csv", 2, "revoked"),
        ("c.csv", 1, "missing"),
    ]
    assert listed["expires_at"] == listed["attachments"][0]["expires_at"]
    code, out, _ = relay.run(
        "links", "--attachments-bucket", relay.attachments_bucket, "--incoming-key", "incoming/a1"
    )
    assert code == 0
    assert re.search(r"^  active +2\.0 KB  a\.csv ", out, re.MULTILINE)
    assert re.search(r"^  revoked +2 bytes  b\.csv ", out, re.MULTILINE)  # app.sizes.human_size


def test_an_attachment_without_a_size_in_its_manifest_shows_a_question_mark(relay: Relay) -> None:
    import json

    mail = relay.store_mail("incoming/s1", "<s1@s>", ["ops@example.com"], [("a.csv", b"12")])
    manifest = json.loads(
        relay.s3.get_object(Bucket=relay.attachments_bucket, Key=mail.manifest_key)["Body"].read()
    )
    for entry in manifest["attachments"]:
        del entry["size"]
    relay.s3.put_object(
        Bucket=relay.attachments_bucket, Key=mail.manifest_key, Body=json.dumps(manifest).encode()
    )
    code, out, _ = relay.run(
        "links", "--attachments-bucket", relay.attachments_bucket, "--incoming-key", "incoming/s1"
    )
    assert code == 0
    assert re.search(r"^  active +\?  a\.csv ", out, re.MULTILINE)


def test_links_of_a_mail_past_its_expiry_are_expired(relay: Relay) -> None:
    relay.store_mail(
        "incoming/old", "<old@s>", ["ops@example.com"], created_at=datetime.now(UTC) - timedelta(days=2)
    )
    report = relay.run_json(
        "links", "--attachments-bucket", relay.attachments_bucket, "--message-id", "<old@s>"
    )
    assert [a["state"] for a in report["mails"][0]["attachments"]] == ["expired"]


def test_links_by_url_lists_the_whole_mail(relay: Relay) -> None:
    mail = relay.store_mail(
        "incoming/a1", "<a1@sensor>", ["ops@example.com"], [("a.csv", b"1"), ("b.csv", b"2")]
    )
    report = relay.run_json(
        "links", "--attachments-bucket", relay.attachments_bucket, "--url", _link(relay, mail.keys[0])
    )
    assert [a["key"] for a in report["mails"][0]["attachments"]] == mail.keys


def test_links_without_a_manifest_lists_the_stored_objects(relay: Relay) -> None:
    mail = relay.store_mail("incoming/a1", "<a1@sensor>", ["ops@example.com"])
    relay.s3.delete_object(Bucket=relay.attachments_bucket, Key=mail.manifest_key)
    report = relay.run_json(
        "links", "--attachments-bucket", relay.attachments_bucket, "--incoming-key", "incoming/a1"
    )
    assert [(a["key"], a["state"]) for a in report["mails"][0]["attachments"]] == [(mail.keys[0], "active")]
    assert report["mails"][0]["manifest"] is None


def _link(relay: Relay, key: str) -> str:
    return str(
        relay.s3.generate_presigned_url(
            "get_object", Params={"Bucket": relay.attachments_bucket, "Key": key}, ExpiresIn=600
        )
    )
