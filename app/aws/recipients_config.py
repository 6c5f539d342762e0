"""The recipients document from S3, cached per container and revalidated with a conditional GET.

An operator's edit takes effect within `REVALIDATE_SECONDS` without a deploy; between checks no call
is made, and a check of an unchanged document is a `304 Not Modified` with no body. A document that does
not validate is never used: the last good copy stays (or none, on a cold start), and the error is
logged once per version of the document, not once per mail. A missing document means no groups and no
routes. S3 errors are retryable like any other (`RetryableError`): the mail comes back later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from app.aws import clients, error_codes
from app.errors import RetryableError
from app.routing.document import EMPTY, Directory, DocumentError, parse

log = logging.getLogger("iot_mail_relay")

REVALIDATE_SECONDS = 60.0
_NOT_MODIFIED = {"304", "NotModified"}


def _now() -> float:
    return time.monotonic()


class RecipientsConfig:
    """`directory()` is the document's last good version, re-checked at most every 60 seconds."""

    def __init__(
        self,
        location: tuple[str, str] | None,
        clock: Callable[[], float] | None = None,
        revalidate_seconds: float = REVALIDATE_SECONDS,
    ) -> None:
        self._location = location
        self._clock = clock or _now
        self._revalidate_seconds = revalidate_seconds
        self._directory = EMPTY
        self._etag: str | None = None  # of the version last read, good or bad
        self._checked_at: float | None = None

    def directory(self) -> Directory:
        if self._location is None:
            return EMPTY
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self._revalidate_seconds:
            return self._directory
        self._refresh(*self._location)
        self._checked_at = now
        return self._directory

    def _refresh(self, bucket: str, key: str) -> None:
        request = {"Bucket": bucket, "Key": key}
        if self._etag:
            request["IfNoneMatch"] = self._etag
        try:
            response = clients.client("s3").get_object(**request)
            data = response["Body"].read()
        except ClientError as e:
            code = error_codes.code(e)
            if code in _NOT_MODIFIED:
                return
            if code in error_codes.MISSING:
                self._directory, self._etag = EMPTY, None
                return
            raise RetryableError(f"reading the recipients document s3://{bucket}/{key}: {code}") from e
        except BotoCoreError as e:
            raise RetryableError(f"reading the recipients document: {type(e).__name__}") from e
        self._etag = str(response.get("ETag") or "") or None
        try:
            self._directory = parse(data)
        except DocumentError as e:
            log.error(
                "recipients document s3://%s/%s (ETag %s) is invalid and not used; keeping the last good"
                " copy: %s",
                bucket,
                key,
                self._etag,
                e,
            )
