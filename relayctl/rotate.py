"""rotate-link-key: the current link key becomes the previous one and a fresh random key the current.

Links name their key by `kid`, and the download function accepts the current and the previous key, so
every link already sent keeps working after one rotation; links signed with the key that was previous
before (two rotations old) stop working at once. Both functions read the secret at most five minutes
old, and the download function re-reads it when it meets a key id it does not know, so new links work
from the moment the relay signs them. The keys are never printed.
"""

from __future__ import annotations

import argparse

from botocore.exceptions import ClientError

from app.links import KeyringError, parse_keyring, rotated
from relayctl.aws import Aws, CommandError, describe
from relayctl.command import Command
from relayctl.report import Report
from relayctl.resources import Resources


def run(args: argparse.Namespace, aws: Aws) -> Report:
    secret_arn = Resources.from_args(args, aws).require("link_key_secret")
    secretsmanager = aws.client("secretsmanager")
    try:
        current = secretsmanager.get_secret_value(SecretId=secret_arn)["SecretString"]
    except ClientError as e:
        raise CommandError(f"reading the link keys: {describe(e)}") from e
    try:
        keyring = parse_keyring(current)
    except KeyringError as e:
        raise CommandError(f"the link-key secret {secret_arn} is not usable: {e}") from e
    new = rotated(keyring)
    retired = keyring.previous_kid
    if not args.dry_run:
        try:
            secretsmanager.put_secret_value(SecretId=secret_arn, SecretString=new.to_json())
        except ClientError as e:
            raise CommandError(f"writing the link keys: {describe(e)}") from e
    verb = "would rotate" if args.dry_run else "rotated"
    lines = [
        f"{verb} the link keys of {secret_arn}:",
        f"  current  {new.current_kid} (new; the relay signs with it within 5 minutes)",
        f"  previous {new.previous_kid} (links signed with it keep working)",
        f"  retired  {retired} (links signed with it stop working)" if retired else "  retired  -",
    ]
    document = {
        "secret": secret_arn,
        "dry_run": bool(args.dry_run),
        "current_kid": new.current_kid,
        "previous_kid": new.previous_kid,
        "retired_kid": retired,
    }
    return Report(document, lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="show the key ids without changing the secret")


COMMAND = Command(
    "rotate-link-key",
    "Make a new current link key; the old one stays valid as previous, the one before is retired.",
    run,
    ("link_key_secret",),
    add_arguments,
)
