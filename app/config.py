"""The function's settings, parsed and validated once from the environment.

Every variable the function reads is declared here and only here: the template's tests compare
`ENVIRONMENT_VARIABLES` with the function's environment in `template.yaml`, so the two cannot drift.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

from app.mail import fence
from app.metrics import DEFAULT_NAMESPACE

if TYPE_CHECKING:
    from app.alarms.timeline import Policy

# The alarm table and the timeline's numbers: the relay decides by them, and the mute page settles what
# fell due before a mute as the relay would, so both functions read the same values.
FOLDING_ENVIRONMENT_VARIABLES = (
    "MUTE_LINKS",
    "REPEAT_FOLDING",
    "INCIDENTS_TABLE",
    "DIGEST_AFTER_MINUTES",
    "DIGEST_MAX_INTERVAL_MINUTES",
    "INCIDENT_QUIET_MINUTES",
    "FLAP_TRANSITIONS",
)

ENVIRONMENT_VARIABLES = (
    "INCOMING_BUCKET",
    "ATTACHMENTS_BUCKET",
    "SENDER_EMAIL",
    "RECIPIENT_EMAIL",
    "FALLBACK_TOPIC_ARN",
    "URL_EXPIRY_SECONDS",
    "CONFIGURATION_SET_NAME",
    "MAX_RECIPIENTS",
    "ALLOWED_SENDERS",
    "ALLOWED_RECIPIENTS",
    "SENDER_AUTH",
    "ADDITIONAL_RECIPIENT_EMAILS",
    "RECIPIENTS_CONFIG",
    "DOWNLOAD_BASE_URL",
    "LINK_KEY_SECRET_ARN",
    "METRICS_NAMESPACE",
    "INLINE_PREVIEWS",
    *FOLDING_ENVIRONMENT_VARIABLES,
)

MAX_URL_EXPIRY_SECONDS = 7 * 24 * 3600  # SigV4 pre-signed URLs cannot outlive seven days.
MAX_LINK_EXPIRY_SECONDS = 3650 * 24 * 3600  # download-endpoint links: bounded by retention (template rule)

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_QUEUE_ARN = re.compile(r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?$")
_CONFIGURATION_SET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^\s]{1,1024})$")
_BASE_URL = re.compile(r"^(https://[A-Za-z0-9.-]+|http://(127\.0\.0\.1|localhost)(:\d{1,5})?)/?$")
# CloudWatch namespaces: up to 255 of these characters, not starting with ':' nor AWS's reserved "AWS/".
_METRICS_NAMESPACE = re.compile(r"^(?!AWS/)[0-9A-Za-z.\-_/#][0-9A-Za-z.\-_/#: ]{0,254}$")


class SenderAuth(StrEnum):
    """Whether an allowed sender must also be authenticated by SES (aligned DKIM or SPF, or DMARC)."""

    REQUIRED = "required"
    OFF = "off"  # the From address alone decides: for devices that cannot authenticate (see README)


class Switch(StrEnum):
    """A feature turned on or off (the template's parameters say on and off, never true or false)."""

    ON = "on"
    OFF = "off"


class ConfigError(ValueError):
    """A missing or invalid environment variable; the message starts with its name."""


@dataclass(frozen=True)
class Settings:
    incoming_bucket: str
    attachments_bucket: str
    sender_email: str
    recipient_email: str
    fallback_topic_arn: str
    url_expiry_seconds: int = 86400
    configuration_set_name: str | None = None
    max_recipients: int = 50
    allowed_senders: fence.Fence = ()
    download_base_url: str | None = None  # links go to the download function; None: S3 pre-signed
    link_key_secret_arn: str | None = None
    allowed_recipients: fence.Fence = ()
    sender_auth: SenderAuth = SenderAuth.REQUIRED
    additional_recipient_emails: tuple[str, ...] = ()  # per-device receiving addresses
    recipients_config: tuple[str, str] | None = None  # (bucket, key) of the groups and routes document
    metrics_namespace: str = DEFAULT_NAMESPACE
    inline_previews: bool = True  # previews of image attachments in the HTML (app/previews.py)
    folding: Folding | None = None  # alarm folding (app/folding.py); None: every mail is relayed
    mute_links: bool = True  # links that mute an alarm in its first mail and digests (app/mute_page.py)

    @property
    def receiving_addresses(self) -> tuple[str, ...]:
        """Every address the receipt rule accepts: never a recipient (the relay would mail itself)."""
        return (self.recipient_email, *self.additional_recipient_emails)

    @property
    def is_open(self) -> bool:
        """Anyone who knows the receiving address can make the relay send to anyone."""
        return not self.allowed_senders and not self.allowed_recipients

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from a mapping; raises ConfigError naming the first bad variable."""
        env = _Reader(environ)
        sender = env.email("SENDER_EMAIL")
        recipient = env.email("RECIPIENT_EMAIL")
        if sender == recipient:
            raise ConfigError(
                "SENDER_EMAIL: must differ from RECIPIENT_EMAIL (the relay would mail itself in a loop)"
            )
        links = _download_links(env)
        return cls(
            incoming_bucket=env.matching("INCOMING_BUCKET", _BUCKET, "an S3 bucket name"),
            attachments_bucket=env.matching("ATTACHMENTS_BUCKET", _BUCKET, "an S3 bucket name"),
            sender_email=sender,
            recipient_email=recipient,
            fallback_topic_arn=env.matching("FALLBACK_TOPIC_ARN", _TOPIC_ARN, "an SNS topic ARN"),
            url_expiry_seconds=env.integer(
                "URL_EXPIRY_SECONDS", 86400, 1, MAX_LINK_EXPIRY_SECONDS if links else MAX_URL_EXPIRY_SECONDS
            ),
            configuration_set_name=env.optional(
                "CONFIGURATION_SET_NAME", _CONFIGURATION_SET, "an SES configuration set name"
            ),
            max_recipients=env.integer("MAX_RECIPIENTS", 50, 1, 10000),
            allowed_senders=env.fence("ALLOWED_SENDERS"),
            download_base_url=links[0] if links else None,
            link_key_secret_arn=links[1] if links else None,
            allowed_recipients=env.fence("ALLOWED_RECIPIENTS"),
            sender_auth=env.choice("SENDER_AUTH", SenderAuth, SenderAuth.REQUIRED),
            additional_recipient_emails=env.emails("ADDITIONAL_RECIPIENT_EMAILS", exclude=sender),
            recipients_config=env.s3_uri("RECIPIENTS_CONFIG"),
            metrics_namespace=env.namespace("METRICS_NAMESPACE"),
            inline_previews=env.choice("INLINE_PREVIEWS", Switch, Switch.ON) is Switch.ON,
            folding=_folding(env),
            mute_links=env.choice("MUTE_LINKS", Switch, Switch.ON) is Switch.ON,
        )


@cache
def load_settings() -> Settings:
    """The settings of this process, read on first use (not at import, so tests can set the env)."""
    return Settings.from_environ(os.environ)


# ---------------------------------------------------------------- alarm folding
@dataclass(frozen=True)
class Folding:
    """Where alarm state lives and the timeline's numbers (app.alarms.timeline.Policy)."""

    table: str
    digest_after: timedelta = timedelta(minutes=10)
    digest_max_interval: timedelta = timedelta(minutes=240)
    quiet: timedelta = timedelta(minutes=30)
    flap_transitions: int = 5

    @property
    def policy(self) -> Policy:
        from app.alarms.timeline import Policy  # not imported by the download function's settings

        return Policy(self.digest_after, self.digest_max_interval, self.quiet, self.flap_transitions)


def _folding(env: _Reader) -> Folding | None:
    """REPEAT_FOLDING on (the template's default) needs INCIDENTS_TABLE; off: None."""
    if env.choice("REPEAT_FOLDING", Switch, Switch.OFF) is Switch.OFF:
        return None
    table = env.matching("INCIDENTS_TABLE", _TABLE, "a DynamoDB table name")
    after = env.integer("DIGEST_AFTER_MINUTES", 10, 1, 1440)
    longest = env.integer("DIGEST_MAX_INTERVAL_MINUTES", 240, 1, 10080)
    if longest < after:
        raise ConfigError(
            f"DIGEST_MAX_INTERVAL_MINUTES: {longest} is shorter than DIGEST_AFTER_MINUTES {after}"
        )
    return Folding(
        table=table,
        digest_after=timedelta(minutes=after),
        digest_max_interval=timedelta(minutes=longest),
        quiet=timedelta(minutes=env.integer("INCIDENT_QUIET_MINUTES", 30, 1, 10080)),
        flap_transitions=env.integer("FLAP_TRANSITIONS", 5, 2, 100),
    )


CLOCK_ENVIRONMENT_VARIABLES = ("INCIDENTS_TABLE", "INBOUND_QUEUE_ARN", "METRICS_NAMESPACE")


@dataclass(frozen=True)
class ClockSettings:
    """The alarm clock's settings: the table it sweeps and the queue it puts due ticks on."""

    incidents_table: str
    inbound_queue_arn: str
    metrics_namespace: str = DEFAULT_NAMESPACE

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ClockSettings:
        env = _Reader(environ)
        return cls(
            incidents_table=env.matching("INCIDENTS_TABLE", _TABLE, "a DynamoDB table name"),
            inbound_queue_arn=env.matching("INBOUND_QUEUE_ARN", _QUEUE_ARN, "an SQS queue ARN"),
            metrics_namespace=env.namespace("METRICS_NAMESPACE"),
        )


@cache
def load_clock_settings() -> ClockSettings:
    return ClockSettings.from_environ(os.environ)


# ---------------------------------------------------------------- download links
def _download_links(env: _Reader) -> tuple[str, str] | None:
    """(DOWNLOAD_BASE_URL, LINK_KEY_SECRET_ARN) when links go to the download function, else None."""
    base_url = env.optional("DOWNLOAD_BASE_URL", _BASE_URL, "an https:// function URL")
    if base_url is None:
        return None
    secret = env.optional("LINK_KEY_SECRET_ARN", _SECRET_ARN, "a Secrets Manager secret ARN")
    if secret is None:
        raise ConfigError("LINK_KEY_SECRET_ARN: is required when DOWNLOAD_BASE_URL is set")
    return base_url.rstrip("/") + "/", secret


DOWNLOAD_ENVIRONMENT_VARIABLES = (
    "ATTACHMENTS_BUCKET",
    "LINK_KEY_SECRET_ARN",
    "METRICS_NAMESPACE",
    *FOLDING_ENVIRONMENT_VARIABLES,  # the mute page behind the same URL
)


@dataclass(frozen=True)
class DownloadSettings:
    """The download function's settings: where attachments are, which secret holds the link keys, the
    stack's metrics namespace, which its `Downloads` metric shares with the relay's `Mails`, and for the
    mute page behind the same URL the alarm table and the timeline's numbers (a mute settles what fell
    due before it exactly as the relay would)."""

    attachments_bucket: str
    link_key_secret_arn: str
    metrics_namespace: str = DEFAULT_NAMESPACE
    muting: Folding | None = None  # None: MUTE_LINKS or REPEAT_FOLDING off, the page refuses to mute

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> DownloadSettings:
        env = _Reader(environ)
        return cls(
            attachments_bucket=env.matching("ATTACHMENTS_BUCKET", _BUCKET, "an S3 bucket name"),
            link_key_secret_arn=env.matching(
                "LINK_KEY_SECRET_ARN", _SECRET_ARN, "a Secrets Manager secret ARN"
            ),
            metrics_namespace=env.namespace("METRICS_NAMESPACE"),
            muting=_folding(env) if env.choice("MUTE_LINKS", Switch, Switch.ON) is Switch.ON else None,
        )


@cache
def load_download_settings() -> DownloadSettings:
    return DownloadSettings.from_environ(os.environ)


def _addresses() -> Any:
    """flanker's address parser, imported on first use: the download function never needs it, and it
    would add about half a second to that function's cold start."""
    from flanker.addresslib import address

    return address


def _email(name: str, value: str) -> str:
    """`value` as one lower-cased address exactly as written, or a ConfigError naming `name`."""
    parsed = _addresses().parse(value, addr_spec_only=True)
    if parsed is None or parsed.addr_type != "email" or str(parsed.address).lower() != value.lower():
        raise ConfigError(f"{name}: {value!r} is not an email address")
    return str(parsed.address).lower()


class _Reader:
    """Reads one variable at a time and names it in every error."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def _value(self, name: str) -> str:
        return self._environ.get(name, "").strip()

    def required(self, name: str) -> str:
        value = self._value(name)
        if not value:
            raise ConfigError(f"{name}: is required but missing or empty")
        return value

    def matching(self, name: str, pattern: re.Pattern[str], what: str) -> str:
        value = self.required(name)
        if not pattern.match(value):
            raise ConfigError(f"{name}: {value!r} is not {what}")
        return value

    def optional(self, name: str, pattern: re.Pattern[str], what: str) -> str | None:
        return self.matching(name, pattern, what) if self._value(name) else None

    def namespace(self, name: str) -> str:
        """A CloudWatch namespace of the stack's (the template gives IoTMailRelay/<stack>)."""
        return (
            self.optional(name, _METRICS_NAMESPACE, "a CloudWatch namespace of your own") or DEFAULT_NAMESPACE
        )

    def email(self, name: str) -> str:
        return _email(name, self.required(name))

    def emails(self, name: str, exclude: str) -> tuple[str, ...]:
        found: list[str] = []
        for entry in (entry.strip() for entry in self._value(name).split(",")):
            if not entry:
                continue
            addr = _email(name, entry)
            if addr == exclude:
                raise ConfigError(f"{name}: {entry!r} is SENDER_EMAIL (the relay would mail itself)")
            found.append(addr)
        return tuple(dict.fromkeys(found))

    def s3_uri(self, name: str) -> tuple[str, str] | None:
        value = self._value(name)
        if not value:
            return None
        match = _S3_URI.match(value)
        if not match:
            raise ConfigError(f"{name}: {value!r} is not an s3://bucket/key URI")
        return match["bucket"], match["key"]

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self._value(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}: {raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise ConfigError(f"{name}: {value} is outside {low}..{high}")
        return value

    def fence(self, name: str) -> fence.Fence:
        try:
            return fence.parse(self._value(name))
        except ValueError as e:
            raise ConfigError(f"{name}: {e}") from None

    def choice[E: StrEnum](self, name: str, kind: type[E], default: E) -> E:
        raw = self._value(name).lower()
        if not raw:
            return default
        try:
            return kind(raw)
        except ValueError:
            allowed = " or ".join(repr(str(member)) for member in kind)
            raise ConfigError(f"{name}: {raw!r} is not {allowed}") from None
