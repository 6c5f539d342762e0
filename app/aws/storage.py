"""S3: read the raw mail, upload attachments through boto3's managed transfer, pre-sign links."""

from __future__ import annotations

import io
import json
import time
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from app.aws import clients
from app.errors import MailMissing, RetryableError

MB = 1024 * 1024
# Parts of 16 MB, two at a time: the largest attachment a 40 MB mail can carry (30 MB decoded) goes up
# in two parallel parts, and at most 32 MB of decoded data is in flight beside the raw mail.
TRANSFER = TransferConfig(multipart_threshold=16 * MB, multipart_chunksize=16 * MB, max_concurrency=2)
_MISSING = {"NoSuchKey", "404", "NotFound"}
SIGNING_KEY_TTL_SECONDS = 600  # a rotated link-signing key is picked up within ten minutes


def read_object(bucket: str, key: str, max_size: int) -> bytes | None:
    """The object's bytes, or None when it is larger than max_size (it is then not downloaded)."""
    try:
        response = clients.client("s3").get_object(Bucket=bucket, Key=key)
        if response["ContentLength"] > max_size:
            response["Body"].close()
            return None
        return bytes(response["Body"].read())
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in _MISSING:
            raise MailMissing(f"s3://{bucket}/{key} does not exist") from e
        raise RetryableError(f"reading s3://{bucket}/{key}: {_code(e)}") from e
    except BotoCoreError as e:
        raise RetryableError(f"reading s3://{bucket}/{key}: {type(e).__name__}") from e


def upload(bucket: str, key: str, body: io.RawIOBase, extra_args: dict[str, Any]) -> None:
    try:
        clients.client("s3").upload_fileobj(body, bucket, key, ExtraArgs=extra_args, Config=TRANSFER)
    except (ClientError, BotoCoreError) as e:
        raise RetryableError(f"uploading s3://{bucket}/{key}: {_error(e)}") from e


def put_json(bucket: str, key: str, document: dict[str, Any]) -> None:
    try:
        clients.client("s3").put_object(
            Bucket=bucket, Key=key, Body=json.dumps(document).encode(), ContentType="application/json"
        )
    except (ClientError, BotoCoreError) as e:
        raise RetryableError(f"writing s3://{bucket}/{key}: {_error(e)}") from e


class LinkSigner:
    """Pre-signs GET links with the function's role, or with a dedicated key from Secrets Manager.

    Role credentials are temporary: a link signed with them dies when they expire (hours), whatever its
    X-Amz-Expires says. A dedicated IAM user's key lets links live their full expiry (up to seven days).
    """

    def __init__(self, secret_arn: str | None) -> None:
        self._secret_arn = secret_arn
        self._client: Any = None
        self._loaded_at = 0.0

    def presign(self, bucket: str, key: str, expires_in: int) -> str:
        try:
            return str(
                self._signing_client().generate_presigned_url(
                    "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
                )
            )
        except (ClientError, BotoCoreError) as e:
            raise RetryableError(f"signing a link: {_error(e)}") from e

    def _signing_client(self) -> Any:
        if self._secret_arn is None:
            return clients.client("s3")
        if self._client is None or time.monotonic() - self._loaded_at > SIGNING_KEY_TTL_SECONDS:
            secret = clients.client("secretsmanager").get_secret_value(SecretId=self._secret_arn)
            try:
                keys = json.loads(secret["SecretString"])
                self._client = clients.s3_with_keys(keys["AccessKeyId"], keys["SecretAccessKey"])
            except (KeyError, TypeError, ValueError) as e:
                raise RetryableError(
                    "LINK_SIGNING_SECRET_ARN: the secret must be JSON with AccessKeyId and SecretAccessKey"
                ) from e
            self._loaded_at = time.monotonic()
        return self._client


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", "unknown"))


def _error(e: Exception) -> str:
    return _code(e) if isinstance(e, ClientError) else type(e).__name__
