"""The link keyring from Secrets Manager, cached so neither function calls it per mail or per download.

Both functions keep the keyring for `TTL_SECONDS` (`app.links.KEYRING_CACHE_SECONDS`, which relayctl
reads without this module's AWS imports). After `relayctl rotate-link-key` the relay may sign with the
old current key for up to that long, which is harmless: the old key stays valid as `previous`. A second
rotation within that time would retire the key the relay still signs with, so relayctl refuses it
unless forced; and a key retired by a rotation is still accepted by a download function that read the
keyring before it, for at most the same time.

The other way round, the download function may meet a link naming a key id it does not know yet (the
relay already picked up the new key): it then re-reads the secret at once, at most once every
`REFRESH_FLOOR_SECONDS`, so a flood of forged key ids cannot turn into a flood of Secrets Manager calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from app.aws import clients, error_codes
from app.errors import RetryableError
from app.links import KEYRING_CACHE_SECONDS, Keyring, KeyringError, parse_keyring

TTL_SECONDS = float(KEYRING_CACHE_SECONDS)
REFRESH_FLOOR_SECONDS = 10.0


class KeyringUnavailable(RetryableError):
    """The secret could not be read or does not hold a keyring; the message never contains a key."""


class KeyringSource:
    def __init__(self, secret_arn: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._secret_arn = secret_arn
        self._clock = clock
        self._keyring: Keyring | None = None
        self._loaded_at = 0.0
        self._refreshed_at = float("-inf")

    def get(self) -> Keyring:
        if self._keyring is None or self._clock() - self._loaded_at >= TTL_SECONDS:
            return self._load()
        return self._keyring

    def for_kid(self, kid: str) -> Keyring:
        """The keyring, re-read first when it does not know `kid` and was not just read."""
        keyring = self.get()
        if keyring.key(kid) is None and self._clock() - self._refreshed_at >= REFRESH_FLOOR_SECONDS:
            self._refreshed_at = self._clock()
            keyring = self._load()
        return keyring

    def _load(self) -> Keyring:
        try:
            secret = clients.client("secretsmanager").get_secret_value(SecretId=self._secret_arn)
        except ClientError as e:
            raise KeyringUnavailable(
                f"LINK_KEY_SECRET_ARN: reading the secret failed: {error_codes.code(e)}"
            ) from e
        except BotoCoreError as e:
            raise KeyringUnavailable(
                f"LINK_KEY_SECRET_ARN: reading the secret failed: {type(e).__name__}"
            ) from e
        try:
            keyring = parse_keyring(str(secret.get("SecretString") or ""))
        except KeyringError as e:
            raise KeyringUnavailable(f"LINK_KEY_SECRET_ARN: {e}") from None
        self._keyring, self._loaded_at = keyring, self._clock()
        return keyring
