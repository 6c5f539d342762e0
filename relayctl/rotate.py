"""rotate-link-key: the current link key becomes the previous one and a fresh random key the current.

Links name their key by `kid`, and the download function accepts the current and the previous key, so
every link already sent keeps working after one rotation; links signed with the key that was previous
before (two rotations old) stop working once each function's cached keyring is renewed. Both functions
keep the keyring for `app.links.KEYRING_CACHE_SECONDS` (five minutes), and the download function
re-reads it when it meets a key id it does not know, so new links work from the moment the relay signs
them. The keys are never printed.

A second rotation within that cache time is refused unless `--force`: warm relay instances may still
sign with the key the first rotation made previous, and the second would retire it, so mail relayed in
the meantime would carry links that are refused at once. The time is measured on AWS's clock: from the
creation of the secret's current version (Secrets Manager's `CreatedDate`) to the `Date` header of the
same answer, so a machine clock running fast cannot let a second rotation through early (this
machine's clock stands in only when the answer has no usable `Date`). Only a secret that already holds
a previous key counts: the stack's first key can be rotated at any time.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import ClientError

from app.links import KEYRING_CACHE_SECONDS, KeyringError, parse_keyring, rotated
from relayctl.aws import Aws, CommandError, describe
from relayctl.command import Command
from relayctl.report import Report
from relayctl.resources import Resources


def run(args: argparse.Namespace, aws: Aws) -> Report:
    secret_arn = Resources.from_args(args, aws).require("link_key_secret")
    secretsmanager = aws.client("secretsmanager")
    try:
        secret = secretsmanager.get_secret_value(SecretId=secret_arn)
    except ClientError as e:
        raise CommandError(f"reading the link keys: {describe(e)}") from e
    try:
        keyring = parse_keyring(secret["SecretString"])
    except KeyringError as e:
        raise CommandError(f"the link-key secret {secret_arn} is not usable: {e}") from e
    age = (
        _age_seconds(secret.get("CreatedDate"), _server_time(secret))
        if keyring.previous_kid is not None
        else None
    )
    wait = None if age is None or age >= KEYRING_CACHE_SECONDS else KEYRING_CACHE_SECONDS - age
    if wait is not None and not args.force:
        raise CommandError(
            f"the link keys were rotated {age:.0f} s ago: the relay may sign new links with"
            f" {keyring.previous_kid} for up to {KEYRING_CACHE_SECONDS} s after a rotation, and rotating"
            f" again now would retire {keyring.previous_kid}, so mail relayed meanwhile would carry dead"
            f" links. Wait {wait:.0f} s, or pass --force (to retire a leaked key at once, accepting that)"
        )
    new = rotated(keyring)
    retired = keyring.previous_kid
    if not args.dry_run:
        try:
            secretsmanager.put_secret_value(SecretId=secret_arn, SecretString=new.to_json())
        except ClientError as e:
            raise CommandError(f"writing the link keys: {describe(e)}") from e
    verb = "would rotate" if args.dry_run else "rotated"
    minutes = f"{KEYRING_CACHE_SECONDS // 60} minutes"
    lines = [
        f"{verb} the link keys of {secret_arn}:",
        f"  current  {new.current_kid} (new; the relay signs with it within {minutes})",
        f"  previous {new.previous_kid} (links signed with it keep working)",
        f"  retired  {retired} (links signed with it stop working within {minutes})"
        if retired
        else "  retired  -",
    ]
    if wait is not None:
        lines.append(
            f"  forced {age:.0f} s after the last rotation: links warm relay instances sign with"
            f" {retired} in the next {wait:.0f} s are refused"
        )
    document = {
        "secret": secret_arn,
        "dry_run": bool(args.dry_run),
        "current_kid": new.current_kid,
        "previous_kid": new.previous_kid,
        "retired_kid": retired,
        "last_rotation_seconds_ago": age,
        "forced": wait is not None,
    }
    return Report(document, lines)


def _age_seconds(created: datetime | None, now: datetime | None) -> float | None:
    """Seconds from the secret's current version's creation to `now` (this machine's clock when None);
    None when the answer has no creation date."""
    if created is None:
        return None
    return max(0.0, ((now or _now()) - created).total_seconds())


def _server_time(response: Mapping[str, Any]) -> datetime | None:
    """When AWS answered: the HTTP `Date` header of the response (RFC 9110, whole seconds), or None
    when it is missing or unreadable."""
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    date = headers.get("date") if isinstance(headers, Mapping) else None
    if not isinstance(date, str):
        return None
    try:
        answered = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    return answered if answered.tzinfo is not None else answered.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="show the key ids without changing the secret")
    parser.add_argument(
        "--force",
        action="store_true",
        help=f"rotate although the last rotation was less than {KEYRING_CACHE_SECONDS} s ago"
        " (links the relay signs meanwhile with the retired key are refused)",
    )


COMMAND = Command(
    "rotate-link-key",
    "Make a new current link key; the old one stays valid as previous, the one before is retired.",
    run,
    ("link_key_secret",),
    add_arguments,
)
