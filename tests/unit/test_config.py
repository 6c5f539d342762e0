from __future__ import annotations

import pytest

from app.config import ENVIRONMENT_VARIABLES, ConfigError, SenderAuth, Settings

VALID = {
    "INCOMING_BUCKET": "relay-incoming",
    "ATTACHMENTS_BUCKET": "relay-attachments",
    "SENDER_EMAIL": "Relay@Example.com",
    "RECIPIENT_EMAIL": "inbox@relay.example.com",
    "FALLBACK_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:relay-fallback",
}


def test_defaults_and_normalisation() -> None:
    settings = Settings.from_environ(VALID)
    assert settings.url_expiry_seconds == 86400
    assert settings.max_recipients == 50
    assert settings.configuration_set_name is None
    assert settings.allowed_senders == ()
    assert settings.allowed_recipients == ()
    assert settings.sender_auth is SenderAuth.REQUIRED
    assert settings.is_open
    assert settings.sender_email == "relay@example.com"


def test_every_variable_is_declared() -> None:
    full = {
        **VALID,
        "URL_EXPIRY_SECONDS": "600",
        "CONFIGURATION_SET_NAME": "relay-set",
        "MAX_RECIPIENTS": "120",
        "ALLOWED_SENDERS": " Sensor@Plant.example.com , @cameras.example.com ",
        "LINK_SIGNING_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:relay-links-AbCdEf",
        "ALLOWED_RECIPIENTS": "Ops@Example.com, @example.org, @*.Example.NET",
        "SENDER_AUTH": "Off",
        "ADDITIONAL_RECIPIENT_EMAILS": "Cam-1@relay.example.com, nvr-2@relay.example.com",
        "RECIPIENTS_CONFIG": "s3://relay-incoming/config/recipients.json",
    }
    assert set(full) == set(ENVIRONMENT_VARIABLES)
    settings = Settings.from_environ(full)
    assert settings.url_expiry_seconds == 600
    assert settings.configuration_set_name == "relay-set"
    assert settings.max_recipients == 120
    assert settings.allowed_senders == ("sensor@plant.example.com", "@cameras.example.com")
    assert settings.link_signing_secret_arn is not None
    assert settings.allowed_recipients == ("ops@example.com", "@example.org", "@*.example.net")
    assert settings.sender_auth is SenderAuth.OFF
    assert settings.receiving_addresses == (
        "inbox@relay.example.com",
        "cam-1@relay.example.com",
        "nvr-2@relay.example.com",
    )
    assert settings.recipients_config == ("relay-incoming", "config/recipients.json")
    assert not settings.is_open


@pytest.mark.parametrize(
    "name", ["INCOMING_BUCKET", "ATTACHMENTS_BUCKET", "SENDER_EMAIL", "FALLBACK_TOPIC_ARN"]
)
@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_or_empty_required_variable_is_named(name: str, value: str | None) -> None:
    env = dict(VALID)
    if value is None:
        del env[name]
    else:
        env[name] = value
    with pytest.raises(ConfigError, match=rf"^{name}: is required"):
        Settings.from_environ(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INCOMING_BUCKET", "Not_A_Bucket"),
        ("SENDER_EMAIL", "not-an-address"),
        ("RECIPIENT_EMAIL", "a@b.com, c@d.com"),
        ("FALLBACK_TOPIC_ARN", "arn:aws:sqs:eu-west-1:123456789012:queue"),
        ("URL_EXPIRY_SECONDS", "0"),
        ("URL_EXPIRY_SECONDS", "604801"),
        ("URL_EXPIRY_SECONDS", "1h"),
        ("MAX_RECIPIENTS", "0"),
        ("CONFIGURATION_SET_NAME", "has spaces"),
        ("ALLOWED_SENDERS", "ok@example.com, not an entry"),
        ("ALLOWED_SENDERS", "@*example.com"),
        ("ALLOWED_RECIPIENTS", "@"),
        ("ALLOWED_RECIPIENTS", "@*."),
        ("ALLOWED_RECIPIENTS", "a@b.com;c@d.com"),
        ("SENDER_AUTH", "yes"),
        ("ADDITIONAL_RECIPIENT_EMAILS", "cam-1@relay.example.com, not-an-address"),
        ("ADDITIONAL_RECIPIENT_EMAILS", "relay@example.com"),
        ("RECIPIENTS_CONFIG", "relay-incoming/config/recipients.json"),
        ("RECIPIENTS_CONFIG", "s3://relay-incoming/"),
        ("LINK_SIGNING_SECRET_ARN", "arn:aws:s3:::bucket"),
    ],
)
def test_invalid_value_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{name}: "):
        Settings.from_environ({**VALID, name: value})


def test_sender_must_not_be_the_receiving_address() -> None:
    with pytest.raises(ConfigError, match=r"^SENDER_EMAIL: must differ from RECIPIENT_EMAIL"):
        Settings.from_environ({**VALID, "SENDER_EMAIL": "INBOX@relay.example.com"})


def test_upper_bound_of_expiry_is_seven_days() -> None:
    assert Settings.from_environ({**VALID, "URL_EXPIRY_SECONDS": "604800"}).url_expiry_seconds == 604800


def test_only_one_fence_closes_the_relay() -> None:
    assert not Settings.from_environ({**VALID, "ALLOWED_SENDERS": "@plant.example.com"}).is_open
    assert not Settings.from_environ({**VALID, "ALLOWED_RECIPIENTS": "@example.com"}).is_open
