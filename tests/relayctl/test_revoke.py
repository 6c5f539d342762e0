"""revoke / unrevoke: which objects each selector reaches, and the tags or deletions it leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import boto3

from tests.support.relayctl import Relay


def test_revoke_by_incoming_key_tags_every_attachment_and_keeps_other_tags(relay: Relay) -> None:
    mail = relay.store_mail(
        "incoming/a1", "<a1@sensor>", ["ops@example.com"], [("a.csv", b"1"), ("b.csv", b"22")]
    )
    other = relay.store_mail("incoming/b2", "<b2@sensor>", ["ops@example.com"])
    relay.s3.put_object_tagging(
        Bucket=relay.attachments_bucket,
        Key=mail.keys[0],
        Tagging={"TagSet": [{"Key": "site", "Value": "north"}]},
    )

    report = relay.run_json(
        "revoke", "--attachments-bucket", relay.attachments_bucket, "--incoming-key", "incoming/a1"
    )

    assert relay.tags(mail.keys[0]) == {"site": "north", "revoked": "true"}
    assert relay.tags(mail.keys[1]) == {"revoked": "true"}
    assert relay.tags(other.keys[0]) == {}
    assert relay.tags(mail.manifest_key) == {}  # the manifest is not a link target
    assert report["counts"] == {"revoked": 2}
    assert [o["key"] for o in report["mails"][0]["objects"]] == mail.keys
    assert report["mails"][0]["message_id"] == "<a1@sensor>"


def test_revoking_twice_reports_already_revoked_and_unrevoke_lifts_only_that_tag(relay: Relay) -> None:
    mail = relay.store_mail("incoming/a1", "<a1@sensor>", ["ops@example.com"])
    relay.s3.put_object_tagging(
        Bucket=relay.attachments_bucket,
        Key=mail.keys[0],
        Tagging={"TagSet": [{"Key": "site", "Value": "north"}]},
    )
    bucket = ["--attachments-bucket", relay.attachments_bucket, "--incoming-key", "incoming/a1"]

    relay.run("revoke", *bucket)
    code, out, _ = relay.run("revoke", *bucket)
    assert code == 0
    assert "already revoked" in out

    code, out, err = relay.run("unrevoke", *bucket)
    assert (code, err) == (0, "")
    assert "unrevoked" in out
    assert relay.tags(mail.keys[0]) == {"site": "north"}
    assert relay.run_json("unrevoke", *bucket)["counts"] == {"not revoked": 1}


def test_unrevoke_removes_the_tag_set_when_revoked_was_the_only_tag(relay: Relay) -> None:
    mail = relay.store_mail("incoming/a1", "<a1@sensor>", ["ops@example.com"])
    options = ["--attachments-bucket", relay.attachments_bucket, "--incoming-key", "incoming/a1"]
    relay.run("revoke", *options)
    assert relay.tags(mail.keys[0]) == {"revoked": "true"}
    relay.run("unrevoke", *options)
    assert relay.tags(mail.keys[0]) == {}


def test_delete_removes_the_attachments_but_keeps_the_manifest(relay: Relay) -> None:
    mail = relay.store_mail(
        "incoming/a1", "<a1@sensor>", ["ops@example.com"], [("a.csv", b"1"), ("b.csv", b"2")]
    )
    other = relay.store_mail("incoming/b2", "<b2@sensor>", ["ops@example.com"])

    report = relay.run_json(
        "revoke",
        "--attachments-bucket",
        relay.attachments_bucket,
        "--incoming-key",
        "incoming/a1",
        "--delete",
    )

    assert report["counts"] == {"deleted": 2}
    assert not any(relay.exists(k) for k in mail.keys)
    assert relay.exists(mail.manifest_key)
    assert relay.exists(other.keys[0])
    again = relay.run_json(
        "revoke",
        "--attachments-bucket",
        relay.attachments_bucket,
        "--incoming-key",
        "incoming/a1",
        "--delete",
    )
    assert again["counts"] == {"missing": 2}


def test_revoke_by_message_id_matches_with_or_without_angle_brackets(relay: Relay) -> None:
    first = relay.store_mail("incoming/a1", "<pump3.1@plant>", ["ops@example.com"])
    resent = relay.store_mail("incoming/a2", "<pump3.1@plant>", ["ops@example.com"])  # a sensor's resend
    other = relay.store_mail("incoming/b1", "<pump4@plant>", ["ops@example.com"])

    report = relay.run_json(
        "revoke", "--attachments-bucket", relay.attachments_bucket, "--message-id", "pump3.1@plant"
    )

    assert sorted(m["incoming_key"] for m in report["mails"]) == ["incoming/a1", "incoming/a2"]
    assert relay.tags(first.keys[0]) == relay.tags(resent.keys[0]) == {"revoked": "true"}
    assert relay.tags(other.keys[0]) == {}


def test_revoke_by_link_tags_only_that_attachment(relay: Relay) -> None:
    mail = relay.store_mail(
        "incoming/a1", "<a1@sensor>", ["ops@example.com"], [("a b.csv", b"1"), ("c.csv", b"2")]
    )
    link = boto3.client("s3", region_name=relay.region).generate_presigned_url(
        "get_object", Params={"Bucket": relay.attachments_bucket, "Key": mail.keys[0]}, ExpiresIn=600
    )

    code, out, err = relay.run("revoke", "--attachments-bucket", relay.attachments_bucket, "--url", link)

    assert (code, err) == (0, "")
    assert relay.tags(mail.keys[0]) == {"revoked": "true"}
    assert relay.tags(mail.keys[1]) == {}
    assert f"revoked          s3://{relay.attachments_bucket}/{mail.keys[0]}" in out


def test_revoke_by_path_style_link_from_a_local_endpoint(relay: Relay) -> None:
    mail = relay.store_mail("incoming/a1", "<a1@sensor>", ["ops@example.com"], [("ä ö.csv", b"1")])
    link = f"http://127.0.0.1:4566/{relay.attachments_bucket}/{quote(mail.keys[0])}?X-Amz-Expires=600"
    assert relay.run_json("revoke", "--attachments-bucket", relay.attachments_bucket, "--url", link)[
        "counts"
    ] == {"revoked": 1}
    assert relay.tags(mail.keys[0]) == {"revoked": "true"}


def test_revoke_by_recipient_within_a_window(relay: Relay) -> None:
    now = datetime.now(UTC)
    inside = relay.store_mail(
        "incoming/in", "<in@s>", ["Alice@Example.com", "bob@example.org"], created_at=now
    )
    before = relay.store_mail(
        "incoming/old", "<old@s>", ["alice@example.com"], created_at=now - timedelta(days=2)
    )
    someone_else = relay.store_mail("incoming/other", "<other@s>", ["carol@example.com"], created_at=now)

    report = relay.run_json(
        "revoke",
        "--attachments-bucket",
        relay.attachments_bucket,
        "--recipient",
        "alice@EXAMPLE.com",
        "--since",
        (now - timedelta(hours=1)).isoformat(),
        "--until",
        (now + timedelta(hours=1)).isoformat(),
    )

    assert [m["incoming_key"] for m in report["mails"]] == ["incoming/in"]
    assert relay.tags(inside.keys[0]) == {"revoked": "true"}
    assert relay.tags(before.keys[0]) == {}
    assert relay.tags(someone_else.keys[0]) == {}


def test_nothing_matched_is_an_error_and_changes_nothing(relay: Relay) -> None:
    mail = relay.store_mail("incoming/a1", "<a1@sensor>", ["ops@example.com"])
    code, out, err = relay.run(
        "revoke", "--attachments-bucket", relay.attachments_bucket, "--message-id", "<unknown@sensor>"
    )
    assert code == 1
    assert out == ""
    assert err.startswith("relayctl: error: no relayed mail with Message-ID")
    assert err.count("\n") == 1
    assert relay.tags(mail.keys[0]) == {}


def test_a_link_into_another_bucket_is_refused(relay: Relay) -> None:
    code, _, err = relay.run(
        "revoke",
        "--attachments-bucket",
        relay.attachments_bucket,
        "--url",
        "https://elsewhere.s3.amazonaws.com/attachments/0123456789abcdef0123456789abcdef/1/a.csv?X-Amz-Expires=1",
    )
    assert code == 1
    assert "does not point into the attachments bucket" in err
