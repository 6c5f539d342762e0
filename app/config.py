"""The function's settings, parsed and validated once from the environment.

Every variable the function reads is declared here and only here: the template's tests compare
`ENVIRONMENT_VARIABLES` with the function's environment in `template.yaml`, so the two cannot drift.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from flanker.addresslib import address

from app.metrics import DEFAULT_NAMESPACE

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
    "LINK_SIGNING_SECRET_ARN",
    "METRICS_NAMESPACE",
)

MAX_URL_EXPIRY_SECONDS = 7 * 24 * 3600  # SigV4 pre-signed URLs cannot outlive seven days.

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
_CONFIGURATION_SET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# CloudWatch namespaces: up to 255 of these characters, not starting with ':' nor AWS's reserved "AWS/".
_METRICS_NAMESPACE = re.compile(r"^(?!AWS/)[0-9A-Za-z.\-_/#][0-9A-Za-z.\-_/#: ]{0,254}$")


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
    allowed_senders: tuple[str, ...] = ()
    link_signing_secret_arn: str | None = None
    metrics_namespace: str = DEFAULT_NAMESPACE

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
        return cls(
            incoming_bucket=env.matching("INCOMING_BUCKET", _BUCKET, "an S3 bucket name"),
            attachments_bucket=env.matching("ATTACHMENTS_BUCKET", _BUCKET, "an S3 bucket name"),
            sender_email=sender,
            recipient_email=recipient,
            fallback_topic_arn=env.matching("FALLBACK_TOPIC_ARN", _TOPIC_ARN, "an SNS topic ARN"),
            url_expiry_seconds=env.integer("URL_EXPIRY_SECONDS", 86400, 1, MAX_URL_EXPIRY_SECONDS),
            configuration_set_name=env.optional(
                "CONFIGURATION_SET_NAME", _CONFIGURATION_SET, "an SES configuration set name"
            ),
            max_recipients=env.integer("MAX_RECIPIENTS", 50, 1, 10000),
            allowed_senders=env.allowed_senders("ALLOWED_SENDERS"),
            link_signing_secret_arn=env.optional(
                "LINK_SIGNING_SECRET_ARN", _SECRET_ARN, "a Secrets Manager secret ARN"
            ),
            metrics_namespace=env.optional(
                "METRICS_NAMESPACE", _METRICS_NAMESPACE, "a CloudWatch namespace of your own"
            )
            or DEFAULT_NAMESPACE,
        )


@cache
def load_settings() -> Settings:
    """The settings of this process, read on first use (not at import, so tests can set the env)."""
    return Settings.from_environ(os.environ)


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

    def email(self, name: str) -> str:
        value = self.required(name)
        parsed = address.parse(value, addr_spec_only=True)
        if parsed is None or parsed.addr_type != "email" or str(parsed.address).lower() != value.lower():
            raise ConfigError(f"{name}: {value!r} is not an email address")
        return str(parsed.address).lower()

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

    def allowed_senders(self, name: str) -> tuple[str, ...]:
        entries = [entry.strip().lower() for entry in self._value(name).split(",") if entry.strip()]
        for entry in entries:
            candidate = "x" + entry if entry.startswith("@") else entry
            parsed = address.parse(candidate, addr_spec_only=True)
            if parsed is None or parsed.addr_type != "email":
                raise ConfigError(f"{name}: {entry!r} is neither an address nor an @domain entry")
        return tuple(entries)
