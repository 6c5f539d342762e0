"""S3: read the raw mail, upload attachments through boto3's managed transfer, pre-sign links."""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from app import links
from app.aws import clients, error_codes
from app.aws.link_keys import KeyringSource
from app.errors import MailMissing, RetryableError

MB = 1024 * 1024
# Parts of 16 MB, two at a time: the largest attachment a 40 MB mail can carry (30 MB decoded) goes up
# in two parallel parts, and at most 32 MB of decoded data is in flight beside the raw mail.
TRANSFER = TransferConfig(multipart_threshold=16 * MB, multipart_chunksize=16 * MB, max_concurrency=2)


def read_object(bucket: str, key: str, max_size: int) -> bytes | None:
    """The object's bytes, or None when it is larger than max_size (it is then not downloaded)."""
    try:
        response = clients.client("s3").get_object(Bucket=bucket, Key=key)
        if response["ContentLength"] > max_size:
            response["Body"].close()
            return None
        return bytes(response["Body"].read())
    except ClientError as e:
        if error_codes.code(e) in error_codes.MISSING:
            raise MailMissing(f"s3://{bucket}/{key} does not exist") from e
        raise RetryableError(f"reading s3://{bucket}/{key}: {error_codes.code(e)}") from e
    except BotoCoreError as e:
        raise RetryableError(f"reading s3://{bucket}/{key}: {type(e).__name__}") from e


def upload(bucket: str, key: str, body: io.RawIOBase, extra_args: dict[str, Any]) -> None:
    try:
        clients.client("s3").upload_fileobj(body, bucket, key, ExtraArgs=extra_args, Config=TRANSFER)
    except (ClientError, BotoCoreError) as e:
        raise RetryableError(f"uploading s3://{bucket}/{key}: {error_codes.describe(e)}") from e


def put_json(bucket: str, key: str, document: dict[str, Any]) -> None:
    try:
        clients.client("s3").put_object(
            Bucket=bucket, Key=key, Body=json.dumps(document).encode(), ContentType="application/json"
        )
    except (ClientError, BotoCoreError) as e:
        raise RetryableError(f"writing s3://{bucket}/{key}: {error_codes.describe(e)}") from e


class LinkSigner:
    """Signs attachment links: links to the download function when it is configured (they live as long
    as the mail says, up to the retention), else S3 pre-signed links with the function's role (tests,
    `sam local invoke`). Role credentials are temporary: such a link dies with them, hours early at worst.
    """

    def __init__(self, download_base_url: str | None, link_key_secret_arn: str | None) -> None:
        self._base_url = download_base_url
        self._keys = KeyringSource(link_key_secret_arn) if download_base_url and link_key_secret_arn else None

    def sign(self, bucket: str, key: str, expires_at: datetime) -> str:
        if self._keys is not None and self._base_url is not None:
            return links.sign(self._keys.get(), self._base_url, key, int(expires_at.timestamp()))
        expires_in = max(1, math.ceil((expires_at - datetime.now(UTC)).total_seconds()))
        try:
            return str(
                clients.client("s3").generate_presigned_url(
                    "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
                )
            )
        except (ClientError, BotoCoreError) as e:
            raise RetryableError(f"signing a link: {error_codes.describe(e)}") from e

    def mute_link(self, fingerprint: str, seconds: int, to: str, expires_at: datetime) -> str | None:
        """A mute link to the link endpoint (it serves the mute page too); None without one."""
        if self._keys is None or self._base_url is None:
            return None
        keyring = self._keys.get()
        return links.sign_mute(keyring, self._base_url, fingerprint, seconds, to, int(expires_at.timestamp()))
