"""links: a mail's attachments with size, link expiry and state as the download endpoint would answer:
`expired` (410) once the mail's links have expired, else `revoked` (410), `missing` (404) or `active`
(302 to the file). A download link given with --url is judged by its own expiry."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from app import links as download_links
from app.aws import error_codes
from app.sizes import human_size
from relayctl import mails
from relayctl.aws import Aws, CommandError, describe
from relayctl.command import Command
from relayctl.report import Report
from relayctl.resources import Resources
from relayctl.revoke import TAG

ANSWERS = {"active": 302, "expired": 410, "revoked": 410, "missing": 404}


def run(args: argparse.Namespace, aws: Aws) -> Report:
    bucket = Resources.from_args(args, aws).require("attachments_bucket")
    s3 = aws.client("s3")
    now = datetime.now(UTC)
    results = []
    lines: list[str] = []
    for mail in mails.select(args, s3, bucket, whole_mail=True):
        summary = mail.summary()
        expires = _link_expiry(args.url) or _time(summary.get("expires_at"))
        lines.append(mail.label)
        lines.append(
            f"  incoming {summary.get('incoming_key') or '?'}  created {summary.get('created_at') or '?'}"
            f"  links expire {summary.get('expires_at') or '?'}"
        )
        attachments = []
        for attachment in mail.attachments:
            state = _state(s3, bucket, attachment.key, expires, now)
            attachments.append(
                {
                    "key": attachment.key,
                    "filename": attachment.filename,
                    "size": attachment.size,
                    "content_type": attachment.content_type,
                    "expires_at": summary.get("expires_at"),
                    "state": state,
                    "answer": ANSWERS[state],
                }
            )
            size = "?" if attachment.size is None else human_size(attachment.size)  # an old manifest
            lines.append(f"  {state:<8} {size:>11}  {attachment.filename}  ({attachment.key})")
        if not mail.attachments:
            lines.append("  (no attachments)")
        results.append({**summary, "attachments": attachments})
    return Report({"bucket": bucket, "mails": results}, lines)


def _state(s3: Any, bucket: str, key: str, expires: datetime | None, now: datetime) -> str:
    """In the endpoint's order: expiry first, then the revoked tag, then whether the object is there."""
    if expires is not None and expires <= now:
        return "expired"
    try:
        tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    except ClientError as e:
        if error_codes.code(e) in error_codes.MISSING:
            return "missing"
        raise CommandError(f"reading tags of s3://{bucket}/{key}: {describe(e)}") from e
    if any(t["Key"] == TAG and t["Value"] == "true" for t in tags):
        return "revoked"
    return "active"


def _link_expiry(url: str | None) -> datetime | None:
    """The expiry a download link carries (all links of one mail share it, the mail says so)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    request = download_links.parse_request(parts.path, parts.query)
    return datetime.fromtimestamp(request.expires, UTC) if request else None


def _time(value: Any) -> datetime | None:
    try:
        return mails.timestamp(str(value)) if value else None
    except argparse.ArgumentTypeError:
        return None


COMMAND = Command(
    "links",
    "List a mail's attachments with size, expiry and state.",
    run,
    ("attachments_bucket",),
    mails.add_selectors,
)
