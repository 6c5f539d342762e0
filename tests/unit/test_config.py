from __future__ import annotations

from datetime import timedelta

import pytest

from app.config import (
    DOWNLOAD_ENVIRONMENT_VARIABLES,
    ENVIRONMENT_VARIABLES,
    ConfigError,
    DownloadSettings,
    SenderAuth,
    Settings,
)

SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:relay-link-keys-AbCdEf"
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
    assert settings.inline_previews is True
    assert settings.mute_links is True
    assert settings.is_open
    assert settings.sender_email == "relay@example.com"
    assert settings.metrics_namespace == "IoTMailRelay"


def test_every_variable_is_declared() -> None:
    full = {
        **VALID,
        "URL_EXPIRY_SECONDS": "600",
        "CONFIGURATION_SET_NAME": "relay-set",
        "MAX_RECIPIENTS": "120",
        "ALLOWED_SENDERS": " Sensor@Plant.example.com , @cameras.example.com ",
        "ALLOWED_RECIPIENTS": "Ops@Example.com, @example.org, @*.Example.NET",
        "SENDER_AUTH": "Off",
        "ADDITIONAL_RECIPIENT_EMAILS": "Cam-1@relay.example.com, nvr-2@relay.example.com",
        "RECIPIENTS_CONFIG": "s3://relay-incoming/config/recipients.json",
        "DOWNLOAD_BASE_URL": "https://abcdefghij.lambda-url.eu-west-1.on.aws",
        "LINK_KEY_SECRET_ARN": SECRET,
        "METRICS_NAMESPACE": "IoTMailRelay/prod-eu",
        "INLINE_PREVIEWS": " OFF ",
        "REPEAT_FOLDING": "on",
        "INCIDENTS_TABLE": "relay-IncidentsTable",
        "DIGEST_AFTER_MINUTES": "5",
        "DIGEST_MAX_INTERVAL_MINUTES": "120",
        "INCIDENT_QUIET_MINUTES": "45",
        "FLAP_TRANSITIONS": "4",
        "MUTE_LINKS": "Off",
    }
    assert set(full) == set(ENVIRONMENT_VARIABLES)
    settings = Settings.from_environ(full)
    assert settings.url_expiry_seconds == 600
    assert settings.configuration_set_name == "relay-set"
    assert settings.max_recipients == 120
    assert settings.allowed_senders == ("sensor@plant.example.com", "@cameras.example.com")
    assert settings.allowed_recipients == ("ops@example.com", "@example.org", "@*.example.net")
    assert settings.sender_auth is SenderAuth.OFF
    assert settings.receiving_addresses == (
        "inbox@relay.example.com",
        "cam-1@relay.example.com",
        "nvr-2@relay.example.com",
    )
    assert settings.recipients_config == ("relay-incoming", "config/recipients.json")
    assert not settings.is_open
    assert settings.download_base_url == "https://abcdefghij.lambda-url.eu-west-1.on.aws/"
    assert settings.link_key_secret_arn == SECRET
    assert settings.metrics_namespace == "IoTMailRelay/prod-eu"
    assert settings.inline_previews is False
    assert settings.mute_links is False
    assert settings.folding is not None
    assert settings.folding.table == "relay-IncidentsTable"
    policy = settings.folding.policy
    assert (policy.digest_after, policy.digest_max_interval) == (timedelta(minutes=5), timedelta(minutes=120))
    assert (policy.quiet, policy.flap_transitions) == (timedelta(minutes=45), 4)


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
        ("INLINE_PREVIEWS", "true"),  # the template's parameter says on or off
        ("ADDITIONAL_RECIPIENT_EMAILS", "cam-1@relay.example.com, not-an-address"),
        ("ADDITIONAL_RECIPIENT_EMAILS", "relay@example.com"),
        ("RECIPIENTS_CONFIG", "relay-incoming/config/recipients.json"),
        ("RECIPIENTS_CONFIG", "s3://relay-incoming/"),
        ("DOWNLOAD_BASE_URL", "http://abcdefghij.lambda-url.eu-west-1.on.aws/"),
        ("DOWNLOAD_BASE_URL", "https://host.example.com/with/a/path"),
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


def test_only_one_fence_closes_the_relay() -> None:
    assert not Settings.from_environ({**VALID, "ALLOWED_SENDERS": "@plant.example.com"}).is_open
    assert not Settings.from_environ({**VALID, "ALLOWED_RECIPIENTS": "@example.com"}).is_open


def test_download_links_need_the_key_secret_and_may_outlive_seven_days() -> None:
    links = {**VALID, "DOWNLOAD_BASE_URL": "https://abcdefghij.lambda-url.eu-west-1.on.aws/"}
    with pytest.raises(ConfigError, match=r"^LINK_KEY_SECRET_ARN: is required when DOWNLOAD_BASE_URL"):
        Settings.from_environ(links)
    with pytest.raises(ConfigError, match=r"^LINK_KEY_SECRET_ARN: "):
        Settings.from_environ({**links, "LINK_KEY_SECRET_ARN": "arn:aws:s3:::bucket"})
    month = str(30 * 86400)
    settings = Settings.from_environ({**links, "LINK_KEY_SECRET_ARN": SECRET, "URL_EXPIRY_SECONDS": month})
    assert settings.url_expiry_seconds == 30 * 86400
    with pytest.raises(ConfigError, match=r"^URL_EXPIRY_SECONDS: 2592000 is outside 1..604800"):
        Settings.from_environ({**VALID, "URL_EXPIRY_SECONDS": month})
    local = Settings.from_environ(
        {**links, "DOWNLOAD_BASE_URL": "http://127.0.0.1:8480", "LINK_KEY_SECRET_ARN": SECRET}
    )
    assert local.download_base_url == "http://127.0.0.1:8480/"


def test_download_function_settings_name_their_variable() -> None:
    settings = DownloadSettings.from_environ(
        {"ATTACHMENTS_BUCKET": "relay-attachments", "LINK_KEY_SECRET_ARN": SECRET}
    )
    assert settings == DownloadSettings("relay-attachments", SECRET, "IoTMailRelay")
    assert set(DOWNLOAD_ENVIRONMENT_VARIABLES) == {
        "ATTACHMENTS_BUCKET",
        "LINK_KEY_SECRET_ARN",
        "METRICS_NAMESPACE",
        # the mute page behind the same URL
        "MUTE_LINKS",
        "REPEAT_FOLDING",
        "INCIDENTS_TABLE",
        "DIGEST_AFTER_MINUTES",
        "DIGEST_MAX_INTERVAL_MINUTES",
        "INCIDENT_QUIET_MINUTES",
        "FLAP_TRANSITIONS",
    }
    stack = DownloadSettings.from_environ(
        {
            "ATTACHMENTS_BUCKET": "relay-attachments",
            "LINK_KEY_SECRET_ARN": SECRET,
            "METRICS_NAMESPACE": "IoTMailRelay/s",
        }
    )
    assert stack.metrics_namespace == "IoTMailRelay/s"  # the relay's, so Downloads sits beside Mails
    with pytest.raises(ConfigError, match=r"^METRICS_NAMESPACE: "):
        DownloadSettings.from_environ(
            {
                "ATTACHMENTS_BUCKET": "relay-attachments",
                "LINK_KEY_SECRET_ARN": SECRET,
                "METRICS_NAMESPACE": "AWS/Lambda",
            }
        )
    with pytest.raises(ConfigError, match=r"^LINK_KEY_SECRET_ARN: is required"):
        DownloadSettings.from_environ({"ATTACHMENTS_BUCKET": "relay-attachments"})
    with pytest.raises(ConfigError, match=r"^ATTACHMENTS_BUCKET: "):
        DownloadSettings.from_environ({"ATTACHMENTS_BUCKET": "Bad_Bucket", "LINK_KEY_SECRET_ARN": SECRET})


def test_the_mute_page_mutes_only_with_mute_links_and_folding_on() -> None:
    base = {"ATTACHMENTS_BUCKET": "relay-attachments", "LINK_KEY_SECRET_ARN": SECRET}
    folding = {"REPEAT_FOLDING": "on", "INCIDENTS_TABLE": "relay-IncidentsTable", "DIGEST_AFTER_MINUTES": "3"}
    muting = DownloadSettings.from_environ({**base, **folding}).muting
    assert muting is not None
    assert (muting.table, muting.policy.digest_after) == ("relay-IncidentsTable", timedelta(minutes=3))
    assert DownloadSettings.from_environ({**base, **folding, "MUTE_LINKS": "off"}).muting is None
    assert DownloadSettings.from_environ({**base, **folding, "REPEAT_FOLDING": "off"}).muting is None
    with pytest.raises(ConfigError, match=r"^MUTE_LINKS: 'yes' is not 'on' or 'off'"):
        DownloadSettings.from_environ({**base, **folding, "MUTE_LINKS": "yes"})
    with pytest.raises(ConfigError, match=r"^INCIDENTS_TABLE: is required"):
        DownloadSettings.from_environ({**base, "REPEAT_FOLDING": "on"})
    with pytest.raises(ConfigError, match=r"^MUTE_LINKS: 'yes' is not 'on' or 'off'"):
        Settings.from_environ({**VALID, "MUTE_LINKS": "yes"})


def test_folding_is_off_unless_switched_on_and_then_needs_its_table() -> None:
    assert Settings.from_environ(VALID).folding is None
    assert Settings.from_environ({**VALID, "REPEAT_FOLDING": "off", "INCIDENTS_TABLE": "t-1"}).folding is None
    with pytest.raises(ConfigError, match=r"^INCIDENTS_TABLE: is required"):
        Settings.from_environ({**VALID, "REPEAT_FOLDING": "on"})
    with pytest.raises(ConfigError, match=r"^REPEAT_FOLDING: 'maybe' is not 'on' or 'off'"):
        Settings.from_environ({**VALID, "REPEAT_FOLDING": "maybe"})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DIGEST_AFTER_MINUTES", "0", "outside 1..1440"),
        ("DIGEST_MAX_INTERVAL_MINUTES", "5", "shorter than DIGEST_AFTER_MINUTES 10"),
        ("INCIDENT_QUIET_MINUTES", "soon", "not a whole number"),
        ("FLAP_TRANSITIONS", "1", "outside 2..100"),
        ("INCIDENTS_TABLE", "a b", "not a DynamoDB table name"),
    ],
)
def test_folding_settings_name_their_variable(name: str, value: str, message: str) -> None:
    env = {**VALID, "REPEAT_FOLDING": "on", "INCIDENTS_TABLE": "relay-IncidentsTable", name: value}
    with pytest.raises(ConfigError, match=rf"^{name}: .*{message}"):
        Settings.from_environ(env)


def test_the_clock_settings_name_their_variable() -> None:
    from app.config import CLOCK_ENVIRONMENT_VARIABLES, ClockSettings

    arn = "arn:aws:sqs:eu-west-1:123456789012:relay-InboundQueue"
    clock = ClockSettings.from_environ({"INCIDENTS_TABLE": "relay-IncidentsTable", "INBOUND_QUEUE_ARN": arn})
    assert (clock.incidents_table, clock.inbound_queue_arn) == ("relay-IncidentsTable", arn)
    assert set(CLOCK_ENVIRONMENT_VARIABLES) >= {"INCIDENTS_TABLE", "INBOUND_QUEUE_ARN"}
    with pytest.raises(ConfigError, match=r"^INBOUND_QUEUE_ARN: 'https://sqs"):
        ClockSettings.from_environ({"INCIDENTS_TABLE": "t-1", "INBOUND_QUEUE_ARN": "https://sqs.example/q"})
