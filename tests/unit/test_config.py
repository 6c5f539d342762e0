from __future__ import annotations

import pytest

from app.config import ENVIRONMENT_VARIABLES, ConfigError, Settings

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
    assert settings.sender_email == "relay@example.com"
    assert settings.metrics_namespace == "IoTMailRelay"


def test_every_variable_is_declared() -> None:
    full = {
        **VALID,
        "URL_EXPIRY_SECONDS": "600",
        "CONFIGURATION_SET_NAME": "relay-set",
        "MAX_RECIPIENTS": "120",
        "ALLOWED_SENDERS": " Sensor@Plant.example.com , @cameras.example.com ",
        "LINK_SIGNING_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:relay-links-AbCdEf",
        "METRICS_NAMESPACE": "IoTMailRelay/prod-eu",
    }
    assert set(full) == set(ENVIRONMENT_VARIABLES)
    settings = Settings.from_environ(full)
    assert settings.url_expiry_seconds == 600
    assert settings.configuration_set_name == "relay-set"
    assert settings.max_recipients == 120
    assert settings.allowed_senders == ("sensor@plant.example.com", "@cameras.example.com")
    assert settings.link_signing_secret_arn is not None
    assert settings.metrics_namespace == "IoTMailRelay/prod-eu"


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
        ("LINK_SIGNING_SECRET_ARN", "arn:aws:s3:::bucket"),
        ("METRICS_NAMESPACE", "AWS/Lambda"),  # reserved for AWS's own metrics
        ("METRICS_NAMESPACE", "relay\nmetrics"),
        ("METRICS_NAMESPACE", "x" * 256),
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
