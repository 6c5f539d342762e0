"""What the download function asks S3 about one attachment: its state, and a short pre-signed GET.

The function's role may read objects and their tags under the attachment layout only, not list the
bucket. Without s3:ListBucket, S3 answers a request for a missing object with 403 AccessDenied instead
of 404 NoSuchKey (S3 API reference, GetObject: "If you don't have the s3:ListBucket permission, Amazon
S3 returns an HTTP status code 403"), so both mean "gone" here; the role grants nothing that could be
denied otherwise.
"""

from __future__ import annotations

from enum import StrEnum

from botocore.exceptions import BotoCoreError, ClientError

from app.aws import clients, error_codes
from app.errors import RetryableError

REVOKED_TAG = "revoked"  # relayctl revoke sets it; the bucket policy denies GetObject on it as well
_GONE = error_codes.MISSING | {"AccessDenied", "403"}


class ObjectState(StrEnum):
    PRESENT = "present"
    REVOKED = "revoked"
    GONE = "gone"


def state(bucket: str, key: str) -> ObjectState:
    try:
        tags = clients.client("s3").get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    except ClientError as e:
        if error_codes.code(e) in _GONE:
            return ObjectState.GONE
        raise RetryableError(f"reading the tags of an attachment: {error_codes.code(e)}") from e
    except BotoCoreError as e:
        raise RetryableError(f"reading the tags of an attachment: {type(e).__name__}") from e
    if any(t["Key"] == REVOKED_TAG and t["Value"] == "true" for t in tags):
        return ObjectState.REVOKED
    return ObjectState.PRESENT


def presigned(method: str, bucket: str, key: str, expires_in: int) -> str:
    """A GET (or HEAD) link signed with the role; S3 answers with the object's stored
    Content-Disposition, so the browser saves the file under the name the relay gave it."""
    operation = "head_object" if method == "HEAD" else "get_object"
    try:
        return str(
            clients.client("s3").generate_presigned_url(
                operation, Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
            )
        )
    except (ClientError, BotoCoreError) as e:
        raise RetryableError(f"signing a download: {type(e).__name__}") from e
