"""rotate-link-key and the download links: revoke and links take them, rotation keeps them alive once."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from app import links
from app.aws import link_keys
from app.links import KEYRING_CACHE_SECONDS
from relayctl import rotate
from tests.support.relayctl import Relay

BASE = "https://abcdefghij.lambda-url.us-east-1.on.aws/"


def _secret(relay: Relay) -> str:
    (secret,) = relay.blueprint.secrets
    return secret.arn


def _keyring(relay: Relay) -> links.Keyring:
    import boto3

    client = boto3.client("secretsmanager", region_name=relay.region)
    return links.parse_keyring(client.get_secret_value(SecretId=_secret(relay))["SecretString"])


def _link(relay: Relay, key: str, expires: int | None = None) -> str:
    return links.sign(_keyring(relay), BASE, key, expires or int(time.time()) + 3600)


def test_rotation_moves_current_to_previous_and_retires_the_one_before(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    generated = _keyring(relay)
    assert generated.current_kid == "k0"
    dry = relay.run_json("rotate-link-key", "--link-key-secret", _secret(relay), "--dry-run")
    assert (dry["current_kid"], dry["previous_kid"], dry["retired_kid"]) == ("k1", "k0", None)
    assert _keyring(relay) == generated

    code, out, err = relay.run("rotate-link-key", "--link-key-secret", _secret(relay))
    assert (code, err) == (0, "")
    once = _keyring(relay)
    assert (once.current_kid, once.previous_kid, once.previous) == ("k1", "k0", generated.current)
    assert once.current.decode() not in out
    assert generated.current.decode() not in out

    _later(monkeypatch, KEYRING_CACHE_SECONDS + 1)  # past the functions' cache time: no refusal
    twice = relay.run_json("rotate-link-key", "--link-key-secret", _secret(relay))
    assert (twice["current_kid"], twice["previous_kid"], twice["retired_kid"]) == ("k2", "k1", "k0")
    assert twice["forced"] is False
    assert _keyring(relay).previous == once.current


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """relayctl's clock, `seconds` ahead of now."""
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    monkeypatch.setattr(rotate, "_now", lambda: moment)


def test_a_second_rotation_within_the_cache_time_is_refused_and_says_why(relay: Relay) -> None:
    first = relay.run_json("rotate-link-key", "--link-key-secret", _secret(relay))  # k0 -> k1: at once
    assert first["current_kid"] == "k1"
    before = _keyring(relay)
    for argv in ([], ["--dry-run"]):
        code, out, err = relay.run("rotate-link-key", "--link-key-secret", _secret(relay), *argv)
        assert (code, out) == (1, "")
        assert re.search(r"rotated \d s ago", err), err  # seconds, not minutes
        assert f"may sign new links with k0 for up to {KEYRING_CACHE_SECONDS} s" in err
        assert "would retire k0" in err
        assert "--force" in err
        assert err.count("\n") == 1
    assert _keyring(relay) == before  # nothing written


def test_force_rotates_at_once_and_reports_it(relay: Relay) -> None:
    relay.run_json("rotate-link-key", "--link-key-secret", _secret(relay))
    forced = relay.run_json("rotate-link-key", "--link-key-secret", _secret(relay), "--force")
    assert (forced["current_kid"], forced["retired_kid"], forced["forced"]) == ("k2", "k0", True)
    assert forced["last_rotation_seconds_ago"] < KEYRING_CACHE_SECONDS
    assert _keyring(relay).current_kid == "k2"


def test_the_refusal_lasts_exactly_the_functions_cache_time(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert KEYRING_CACHE_SECONDS == link_keys.TTL_SECONDS  # the time both functions keep the keyring
    relay.run_json("rotate-link-key", "--link-key-secret", _secret(relay))
    _later(monkeypatch, KEYRING_CACHE_SECONDS - 5)
    code, _, err = relay.run("rotate-link-key", "--link-key-secret", _secret(relay))
    assert code == 1
    assert re.search(r"Wait [1-5] s", err), err  # CreatedDate has whole seconds
    _later(monkeypatch, KEYRING_CACHE_SECONDS)
    assert relay.run_json("rotate-link-key", "--link-key-secret", _secret(relay))["current_kid"] == "k2"


def test_revoke_and_unrevoke_take_a_download_link(relay: Relay) -> None:
    mail = relay.store_mail(
        "incoming/a1", "<a1@sensor>", ["ops@example.com"], [("a b.csv", b"1"), ("c.csv", b"2")]
    )
    link = _link(relay, mail.keys[0])
    assert link.startswith(BASE)
    code, _out, err = relay.run("revoke", "--attachments-bucket", relay.attachments_bucket, "--url", link)
    assert (code, err) == (0, "")
    assert relay.tags(mail.keys[0]) == {"revoked": "true"}
    assert relay.tags(mail.keys[1]) == {}
    report = relay.run_json("links", "--attachments-bucket", relay.attachments_bucket, "--url", link)
    states = [(a["state"], a["answer"]) for a in report["mails"][0]["attachments"]]
    assert states == [("revoked", 410), ("active", 302)]
    relay.run("unrevoke", "--attachments-bucket", relay.attachments_bucket, "--url", link)
    assert relay.tags(mail.keys[0]) == {}


def test_links_judges_a_download_link_by_its_own_expiry_as_the_endpoint_does(relay: Relay) -> None:
    mail = relay.store_mail("incoming/a1", "<a1@sensor>", ["ops@example.com"], [("a.csv", b"1")])
    relay.run("revoke", "--attachments-bucket", relay.attachments_bucket, "--incoming-key", "incoming/a1")
    expired = _link(relay, mail.keys[0], int(time.time()) - 5)
    report = relay.run_json("links", "--attachments-bucket", relay.attachments_bucket, "--url", expired)
    # The endpoint checks the expiry before the revoked tag: an expired link says so, revoked or not.
    assert [(a["state"], a["answer"]) for a in report["mails"][0]["attachments"]] == [("expired", 410)]
