from __future__ import annotations

import json
from typing import Any

import pytest

from app.aws import clients, link_keys
from app.aws.link_keys import KeyringSource, KeyringUnavailable

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:relay-link-keys-AbCdEf"


class FakeSecrets:
    def __init__(self, document: dict[str, str]) -> None:
        self.document = document
        self.reads = 0

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        assert SecretId == ARN
        self.reads += 1
        return {"SecretString": json.dumps(self.document)}


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> FakeSecrets:
    fake = FakeSecrets({"current_kid": "k0", "current": "a" * 64})
    monkeypatch.setattr(clients, "client", lambda service: fake)
    return fake


def test_keyring_is_cached_for_a_few_minutes(secrets: FakeSecrets) -> None:
    now = [1000.0]
    source = KeyringSource(ARN, clock=lambda: now[0])
    assert source.get().current_kid == "k0"
    now[0] += link_keys.TTL_SECONDS - 1
    source.get()
    assert secrets.reads == 1
    now[0] += 1
    source.get()
    assert secrets.reads == 2


def test_an_unknown_kid_rereads_at_most_every_few_seconds(secrets: FakeSecrets) -> None:
    now = [1000.0]
    source = KeyringSource(ARN, clock=lambda: now[0])
    source.get()
    secrets.document = {"current_kid": "k1", "current": "b" * 64, "previous_kid": "k0", "previous": "a" * 64}
    assert source.for_kid("k1").current_kid == "k1"
    assert secrets.reads == 2
    for _ in range(50):  # forged key ids do not turn into a flood of reads
        source.for_kid("k9")
    assert secrets.reads == 2
    now[0] += link_keys.REFRESH_FLOOR_SECONDS
    source.for_kid("k9")
    assert secrets.reads == 3


def test_a_bad_secret_is_named_without_its_content(secrets: FakeSecrets) -> None:
    secrets.document = {"current_kid": "k0", "current": "too-short-key"}
    with pytest.raises(KeyringUnavailable, match=r"^LINK_KEY_SECRET_ARN: current must be") as raised:
        KeyringSource(ARN).get()
    assert "too-short-key" not in str(raised.value)
