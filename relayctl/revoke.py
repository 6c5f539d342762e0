"""revoke / unrevoke: tag attachment objects `revoked=true` (or delete them), or lift the tag.

The attachments bucket policy denies s3:GetObject on objects tagged revoked=true, so a tag kills every
link to the object at once, whoever signed it, and can be undone; `--delete` cannot. Other tags on the
object are kept. The manifest stays after `--delete` as the record of what the mail carried.
"""

from __future__ import annotations

import argparse
from typing import Any

from botocore.exceptions import ClientError

from app.aws import error_codes
from relayctl import mails
from relayctl.aws import Aws, CommandError, describe
from relayctl.command import Command
from relayctl.report import Report
from relayctl.resources import Resources

TAG = "revoked"


def run(args: argparse.Namespace, aws: Aws) -> Report:
    bucket = Resources.from_args(args, aws).require("attachments_bucket")
    s3 = aws.client("s3")
    action = "unrevoke" if args.command == "unrevoke" else "delete" if args.delete else "revoke"
    selected = mails.select(args, s3, bucket, whole_mail=False)
    results: list[dict[str, Any]] = []
    lines: list[str] = []
    for mail in selected:
        lines.append(mail.label)
        objects = []
        for attachment in mail.attachments:
            outcome = _apply(s3, bucket, attachment.key, action)
            objects.append({"key": attachment.key, "filename": attachment.filename, "result": outcome})
            lines.append(f"  {outcome:<16} s3://{bucket}/{attachment.key}")
        if not mail.attachments:
            lines.append("  (no attachment objects)")
        results.append({**mail.summary(), "objects": objects})
    counts: dict[str, int] = {}
    for mail_result in results:
        for obj in mail_result["objects"]:
            counts[obj["result"]] = counts.get(obj["result"], 0) + 1
    lines.append(
        f"{action}: {len(results)} mail(s); "
        + (", ".join(f"{n} {result}" for result, n in sorted(counts.items())) or "no objects")
    )
    return Report({"action": action, "bucket": bucket, "mails": results, "counts": counts}, lines)


def _apply(s3: Any, bucket: str, key: str, action: str) -> str:
    try:
        if action == "delete":
            s3.head_object(Bucket=bucket, Key=key)
            s3.delete_object(Bucket=bucket, Key=key)
            return "deleted"
        tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
        if action == "revoke":
            if tags.get(TAG) == "true":
                return "already revoked"
            tags[TAG] = "true"
        else:
            if TAG not in tags:
                return "not revoked"
            del tags[TAG]
        if tags:
            tag_set = [{"Key": k, "Value": v} for k, v in tags.items()]
            s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": tag_set})
        else:
            s3.delete_object_tagging(Bucket=bucket, Key=key)
        return "revoked" if action == "revoke" else "unrevoked"
    except ClientError as e:
        if error_codes.code(e) in error_codes.MISSING:
            return "missing"
        raise CommandError(f"{action} s3://{bucket}/{key}: {describe(e)}") from e


def add_revoke_arguments(parser: argparse.ArgumentParser) -> None:
    mails.add_selectors(parser)
    parser.add_argument("--delete", action="store_true", help="delete the attachment objects instead (final)")


REVOKE = Command(
    "revoke",
    "Kill attachment links: tag the objects revoked=true (the bucket policy then denies every link).",
    run,
    ("attachments_bucket",),
    add_revoke_arguments,
)
UNREVOKE = Command(
    "unrevoke",
    "Lift the revoked=true tag so the links work again.",
    run,
    ("attachments_bucket",),
    mails.add_selectors,
)
