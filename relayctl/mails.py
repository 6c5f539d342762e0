"""Finding relayed mails in the attachments bucket, through the manifests the function writes.

Layout: `attachments/<mail-digest>/<part-index>/<filename>` per attachment and
`attachments/<mail-digest>/manifest.json` per mail (incoming key, Message-ID, created/expiry times,
sha256 digests of the recipients, the attachment list). A Message-ID or recipient search reads every
manifest (attachments expire within days, so there are few); a recipient search skips manifests last
written before the window opened.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore.exceptions import ClientError

from app import links
from app.aws import error_codes
from app.mail.attachments import ATTACHMENTS_PREFIX, mail_digest, recipient_digest
from relayctl.aws import CommandError, describe

MANIFEST = "manifest.json"
_MANIFEST_KEY = re.compile(rf"^{ATTACHMENTS_PREFIX}([0-9a-f]{{32}})/{re.escape(MANIFEST)}$")


@dataclass(frozen=True)
class Attachment:
    key: str
    filename: str
    size: int | None
    content_type: str | None


@dataclass(frozen=True)
class Mail:
    digest: str
    manifest: dict[str, Any] | None  # None when the function stopped before writing it
    attachments: tuple[Attachment, ...]  # what the command acts on (one, for a link)

    @property
    def label(self) -> str:
        m = self.manifest or {}
        parts = [f"mail {self.digest}"]
        if m.get("message_id"):
            parts.append(f"Message-ID {m['message_id']}")
        if m.get("subject"):
            parts.append(f"subject {m['subject']!r}")
        return "  ".join(parts)

    def summary(self) -> dict[str, Any]:
        m = self.manifest or {}
        return {
            "digest": self.digest,
            "incoming_key": m.get("incoming_key"),
            "message_id": m.get("message_id"),
            "subject": m.get("subject"),
            "created_at": m.get("created_at"),
            "expires_at": m.get("expires_at"),
            "manifest": f"{ATTACHMENTS_PREFIX}{self.digest}/{MANIFEST}" if self.manifest else None,
        }


def add_selectors(parser: argparse.ArgumentParser) -> None:
    which = parser.add_argument_group("which mail (exactly one of)").add_mutually_exclusive_group(
        required=True
    )
    which.add_argument("--incoming-key", metavar="KEY", help="S3 key of the received mail (incoming/...)")
    which.add_argument("--message-id", metavar="ID", help="Message-ID of the original mail (<> optional)")
    which.add_argument("--url", metavar="LINK", help="one attachment link as recipients received it")
    which.add_argument(
        "--recipient", metavar="ADDRESS", help="every mail sent to this address within --since/--until"
    )
    window = parser.add_argument_group("time window for --recipient (ISO 8601, UTC when no offset)")
    window.add_argument("--since", type=timestamp, metavar="TIME", help="mails relayed at or after TIME")
    window.add_argument(
        "--until", type=timestamp, metavar="TIME", help="mails relayed before TIME (default now)"
    )


def timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (e.g. 2024-05-01T08:00Z)") from e
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def select(args: argparse.Namespace, s3: Any, bucket: str, whole_mail: bool) -> list[Mail]:
    """The mails the options name; a link selects only its own attachment unless whole_mail."""
    if args.recipient is None and (args.since or args.until):
        raise CommandError("--since/--until only go with --recipient")
    if args.incoming_key is not None:
        mails = [_by_digest(s3, bucket, mail_digest(args.incoming_key))]
        if not mails[0].attachments and mails[0].manifest is None:
            raise CommandError(f"no attachments stored for incoming key {args.incoming_key!r}")
        return mails
    if args.url is not None:
        return [_by_link(s3, bucket, args.url, whole_mail)]
    if args.message_id is not None:
        wanted = _normal_message_id(args.message_id)
        if not wanted:
            raise CommandError("--message-id is empty")
        found = [
            (digest, m)
            for digest, m in _manifests(s3, bucket)
            if _normal_message_id(m.get("message_id")) == wanted
        ]
        if not found:
            raise CommandError(f"no relayed mail with Message-ID {args.message_id!r} has attachments")
        return [_from_manifest(m, digest) for digest, m in found]
    if args.since is None:
        raise CommandError("--recipient needs --since (and optionally --until)")
    until = args.until or datetime.now(UTC)
    if until <= args.since:
        raise CommandError("--until must be later than --since")
    wanted = recipient_digest(args.recipient.strip())
    found = [
        (digest, m)
        for digest, m in _manifests(s3, bucket, written_since=args.since)
        if wanted in m.get("recipient_digests", []) and args.since <= _created(m) < until
    ]
    if not found:
        raise CommandError(
            f"no mail with attachments went to {args.recipient} between "
            f"{args.since.isoformat()} and {until.isoformat()}"
        )
    return [_from_manifest(m, digest) for digest, m in found]


def _by_digest(s3: Any, bucket: str, digest: str) -> Mail:
    manifest = _read_manifest(s3, bucket, digest)
    if manifest is not None:
        return _from_manifest(manifest, digest)
    listed = _list(s3, bucket, f"{ATTACHMENTS_PREFIX}{digest}/")
    attachments = tuple(
        Attachment(o["Key"], o["Key"].rsplit("/", 1)[-1], int(o["Size"]), None)
        for o in listed
        if not o["Key"].endswith(f"/{MANIFEST}")
    )
    return Mail(digest, None, attachments)


def _by_link(s3: Any, bucket: str, url: str, whole_mail: bool) -> Mail:
    key = object_key_from_link(url, bucket)
    digest = key.split("/")[1]
    mail = _by_digest(s3, bucket, digest)
    if whole_mail:
        return mail
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if error_codes.code(e) in error_codes.MISSING:
            raise CommandError(
                f"the link's object s3://{bucket}/{key} does not exist (expired or deleted)"
            ) from e
        raise CommandError(f"reading s3://{bucket}/{key}: {describe(e)}") from e
    known = {a.key: a for a in mail.attachments}
    attachment = known.get(key) or Attachment(key, key.rsplit("/", 1)[-1], None, None)
    return Mail(digest, mail.manifest, (attachment,))


def object_key_from_link(url: str, bucket: str) -> str:
    """The object key of a link: a download-function link (`host/<digest>/<part>/<name>?exp&kid&sig`),
    or an S3 pre-signed one, path-style (`host/bucket/key`) or virtual-hosted (`bucket.host/key`)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise CommandError("--url must be an http(s) link as recipients received it")
    download = links.parse_request(parts.path, parts.query)
    if download is not None:
        return download.object_key
    path = unquote(parts.path)
    host = (parts.hostname or "").lower()
    if path.startswith(f"/{bucket}/"):
        key = path[len(bucket) + 2 :]
    elif host.startswith(f"{bucket.lower()}."):
        key = path[1:]
    else:
        raise CommandError(f"the link does not point into the attachments bucket {bucket!r}")
    if not re.fullmatch(rf"{ATTACHMENTS_PREFIX}[0-9a-f]{{32}}/\d+/.+", key):
        raise CommandError(f"the link's key {key!r} is not an attachment (attachments/<mail>/<part>/<name>)")
    return key


def _from_manifest(manifest: dict[str, Any], digest: str) -> Mail:
    attachments = tuple(
        Attachment(
            key=str(a["key"]),
            filename=str(a.get("filename") or a["key"].rsplit("/", 1)[-1]),
            size=int(a["size"]) if a.get("size") is not None else None,
            content_type=a.get("content_type"),
        )
        for a in manifest.get("attachments", [])
    )
    return Mail(digest, manifest, attachments)


def _read_manifest(s3: Any, bucket: str, digest: str) -> dict[str, Any] | None:
    key = f"{ATTACHMENTS_PREFIX}{digest}/{MANIFEST}"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        if error_codes.code(e) in error_codes.MISSING:
            return None
        raise CommandError(f"reading s3://{bucket}/{key}: {describe(e)}") from e
    try:
        manifest = json.loads(body)
    except ValueError as e:
        raise CommandError(f"s3://{bucket}/{key} is not JSON") from e
    if not isinstance(manifest, dict):
        raise CommandError(f"s3://{bucket}/{key} is not a manifest object")
    return manifest


def _manifests(
    s3: Any, bucket: str, written_since: datetime | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(digest, manifest) of every mail with attachments, optionally only those written since a time."""
    found = []
    for item in _list(s3, bucket, ATTACHMENTS_PREFIX):
        match = _MANIFEST_KEY.match(item["Key"])
        # A manifest is written after its mail's created_at, so one last written earlier cannot match.
        if match and (written_since is None or item["LastModified"] >= written_since):
            manifest = _read_manifest(s3, bucket, match.group(1))
            if manifest is not None:
                found.append((match.group(1), manifest))
    return found


def _list(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item for page in pages for item in page.get("Contents", [])]
    except ClientError as e:
        raise CommandError(f"listing s3://{bucket}/{prefix}: {describe(e)}") from e


def _created(manifest: dict[str, Any]) -> datetime:
    try:
        return timestamp(str(manifest["created_at"]))
    except (KeyError, argparse.ArgumentTypeError):
        return datetime.min.replace(tzinfo=UTC)


def _normal_message_id(value: object) -> str:
    return str(value or "").strip().strip("<>").strip()
