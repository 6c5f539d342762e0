"""rotate-link-key and the download links: revoke and links take them, rotation keeps them alive once."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from moto.core import responses as moto_responses
from moto.secretsmanager.models import secretsmanager_backends

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

    _rotated_ago(relay, KEYRING_CACHE_SECONDS + 1)  # past the functions' cache time: no refusal
    twice = relay.run_json("rotate-link-key", "--link-key-secret", _secret(relay))
    assert (twice["current_kid"], twice["previous_kid"], twice["retired_kid"]) == ("k2", "k1", "k0")
    assert twice["forced"] is False
    assert _keyring(relay).previous == once.current


def _rotated_ago(relay: Relay, seconds: int) -> None:
    """The secret's current version, as Secrets Manager dates it, `seconds` earlier: AWS's clock moved on."""
    backend = secretsmanager_backends[relay.blueprint.account_id][relay.region]
    secret = backend.secrets[_secret(relay)]
    assert secret.default_version_id is not None
    secret.versions[secret.default_version_id]["createdate"] -= seconds


def _local_clock(monkeypatch: pytest.MonkeyPatch, skew_seconds: float) -> None:
    """This machine's clock, `skew_seconds` off (ahead when positive) from AWS's."""
    moment = datetime.now(UTC) + timedelta(seconds=skew_seconds)
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
    _rotated_ago(relay, KEYRING_CACHE_SECONDS - 5)
    code, _, err = relay.run("rotate-link-key", "--link-key-secret", _secret(relay))
    assert code == 1
    assert re.search(r"Wait [1-5] s", err), err  # CreatedDate and Date have whole seconds
    _rotated_ago(relay, 5)
    assert relay.run_json("rotate-link-key", "--link-key-secret", _secret(relay))["current_kid"] == "k2"


@pytest.mark.parametrize("skew", [KEYRING_CACHE_SECONDS + 1, 3600, 86400])
def test_a_fast_local_clock_does_not_let_a_second_rotation_through(
    relay: Relay, monkeypatch: pytest.MonkeyPatch, skew: int
) -> None:
    """The age is AWS's: CreatedDate against the Date header of the same answer, not this machine's clock."""
    relay.run_json("rotate-link-key", "--link-key-secret", _secret(relay))
    _local_clock(monkeypatch, skew)
    code, _, err = relay.run("rotate-link-key", "--link-key-secret", _secret(relay))
    assert code == 1
    assert re.search(r"rotated \d{1,2} s ago", err), err  # the seconds the test took, not the skew
    assert _keyring(relay).current_kid == "k1"


def test_a_slow_local_clock_does_not_hold_a_rotation_back(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay.run_json("rotate-link-key", "--link-key-secret", _secret(relay))
    _rotated_ago(relay, KEYRING_CACHE_SECONDS + 1)
    _local_clock(monkeypatch, -3600)  # by this machine, the rotation is still an hour ahead
    second = relay.run_json("rotate-link-key", "--link-key-secret", _secret(relay))
    assert (second["current_kid"], second["forced"]) == ("k2", False)
    assert KEYRING_CACHE_SECONDS < second["last_rotation_seconds_ago"] < KEYRING_CACHE_SECONDS + 60


def test_without_a_usable_date_header_the_local_clock_decides(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay.run_json("rotate-link-key", "--link-key-secret", _secret(relay))
    monkeypatch.setattr(moto_responses, "http_date", lambda _: "")  # moto's Date header, unreadable
    code, _, err = relay.run("rotate-link-key", "--link-key-secret", _secret(relay))
    assert code == 1  # local clock in step: still refused
    assert re.search(r"rotated \d{1,2} s ago", err), err
    _local_clock(monkeypatch, KEYRING_CACHE_SECONDS + 1)
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
