"""Emptying a bucket so CloudFormation can delete it: every object, and where versioning was ever on,
every version and delete marker; unfinished multipart uploads are aborted.

CloudFormation deletes only empty buckets, and "all objects (including all object versions and delete
markers) in the bucket must be deleted before the bucket itself can be deleted"; AWS also recommends
removing incomplete multipart uploads (S3 User Guide, "Emptying a general purpose bucket",
https://docs.aws.amazon.com/AmazonS3/latest/userguide/empty-bucket.html). A bucket whose versioning
was ever enabled keeps versions an ordinary listing does not show. A never-versioned bucket is
emptied with ListObjectsV2/DeleteObjects, so the common case needs no version permissions. Listing
restarts from the top after each deleted page, so objects written meanwhile are caught too; a key S3
refuses to delete stops the command rather than looping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from app.aws import error_codes
from relayctl.aws import CommandError, describe

PAGE = 1000  # DeleteObjects takes at most 1000 keys per request


@dataclass
class Contents:
    bucket: str
    exists: bool = True
    versioned: bool = False
    objects: int = 0  # objects, or object versions and delete markers when versioned
    uploads: int = 0  # unfinished multipart uploads

    @property
    def total(self) -> int:
        return self.objects + self.uploads


def inspect(s3: Any, bucket: str, owner: str | None = None) -> Contents:
    """What emptying the bucket would remove; `exists=False` when there is no such bucket.

    `owner` (the caller's account) makes S3 answer 403 for a bucket of the same name in another
    account instead of letting the command touch it."""
    expected = {"ExpectedBucketOwner": owner} if owner else {}
    try:
        s3.head_bucket(Bucket=bucket, **expected)
        status = s3.get_bucket_versioning(Bucket=bucket, **expected).get("Status")
        contents = Contents(bucket, versioned=status in {"Enabled", "Suspended"})
        if contents.versioned:
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, **expected):
                contents.objects += len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))
        else:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, **expected):
                contents.objects += len(page.get("Contents", []))
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, **expected):
            contents.uploads += len(page.get("Uploads", []))
    except ClientError as e:
        if error_codes.code(e) in error_codes.MISSING_BUCKET:
            return Contents(bucket, exists=False)
        if error_codes.code(e) in {"403", "AccessDenied"}:
            raise CommandError(
                f"bucket {bucket}: {describe(e)} (not yours, or no permission to list it)"
            ) from e
        raise CommandError(f"reading bucket {bucket}: {describe(e)}") from e
    return contents


def empty(s3: Any, contents: Contents, owner: str | None = None) -> int:
    """Remove everything `inspect` counted (and whatever arrived since); the number removed."""
    expected = {"ExpectedBucketOwner": owner} if owner else {}
    bucket = contents.bucket
    removed = 0
    try:
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, **expected):
            for upload in page.get("Uploads", []):
                s3.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"], **expected
                )
                removed += 1
        while keys := _first_page(s3, bucket, contents.versioned, expected):
            response = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True}, **expected)
            if response.get("Errors"):
                first = response["Errors"][0]
                raise CommandError(
                    f"emptying {bucket}: {len(response['Errors'])} object(s) not deleted, e.g."
                    f" {first.get('Key')}: {first.get('Code')} {first.get('Message', '')}".rstrip()
                )
            removed += len(keys)
    except ClientError as e:
        raise CommandError(f"emptying {bucket}: {describe(e)} ({removed} removed so far)") from e
    return removed


def _first_page(s3: Any, bucket: str, versioned: bool, expected: dict[str, str]) -> list[dict[str, str]]:
    if versioned:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=PAGE, **expected)
        entries = page.get("Versions", []) + page.get("DeleteMarkers", [])
        return [{"Key": e["Key"], "VersionId": e["VersionId"]} for e in entries][:PAGE]
    page = s3.list_objects_v2(Bucket=bucket, MaxKeys=PAGE, **expected)
    return [{"Key": o["Key"]} for o in page.get("Contents", [])]
