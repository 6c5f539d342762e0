"""Idempotency markers: one S3 object per (mail, step) so a redelivered record repeats no send.

SQS delivers at least once and a partly failed batch comes back whole, so every send or notice is
guarded by a marker created with a conditional put (`IfNoneMatch='*'`): exactly one invocation wins the
claim, marks the step done after it succeeded, and releases the claim if it failed so a retry can run it.
A claim left `pending` by an invocation that crashed mid-send is taken over once it is older than the
longest possible invocation; only a crash inside that one SES call can then repeat it (never lose it).

S3 answers a conditional put with 412 PreconditionFailed when the key exists (claimed) and with 409
ConditionalRequestConflict when a concurrent write to the key was still in progress: that says nothing
about who claimed it, and AWS says to retry (S3 User Guide, "Preventing object overwrites with
conditional writes"). A claim retries it a few times with backoff; if the conflict persists the record
is retried later, never taken as claimed (that could skip a send nobody made).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from app.aws import clients, error_codes
from app.errors import InFlight, RetryableError

log = logging.getLogger("iot_mail_relay")

MARKERS_PREFIX = "markers/"
LEASE_SECONDS = 15 * 60  # Lambda's maximum timeout: a pending claim older than this was abandoned
CONFLICT_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8)  # seconds before each retry of a 409 claim
_TAKEN = {"PreconditionFailed", "412"}
_CONFLICT = {"ConditionalRequestConflict", "409"}


def marker_key(mail_digest: str, step: str) -> str:
    return f"{MARKERS_PREFIX}{mail_digest}/{step}"


class Markers:
    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    def once(self, key: str, action: Callable[[], str]) -> None:
        """Run `action` unless an earlier delivery already did; its result is noted in the marker."""
        if not self.claim(key):
            return
        try:
            note = action()
        except Exception:
            self.release(key)
            raise
        try:
            self.complete(key, note)
        except RetryableError:
            # The action took effect: failing the record now could only repeat it or dead-letter a
            # mail that was handled. The claim stays pending; a duplicate delivery waits out the lease.
            log.error("%s done (%s) but its marker stayed pending", key, note)

    def claim(self, key: str) -> bool:
        """True: go ahead (then `complete` or `release`). False: the step was already done."""
        if self._put(key, "pending", only_if_new=True):
            return True
        state, at = self._read(key)
        if state == "done":
            return False
        if state == "pending" and time.time() - at < LEASE_SECONDS:
            raise InFlight(f"{key} is being worked on by another invocation")
        self._put(key, "pending", only_if_new=False)  # abandoned (or vanished): take it over
        return True

    def complete(self, key: str, note: str) -> None:
        self._put(key, "done", only_if_new=False, note=note)

    def release(self, key: str) -> None:
        try:
            clients.client("s3").delete_object(Bucket=self._bucket, Key=key)
        except (ClientError, BotoCoreError) as e:
            raise RetryableError(f"releasing marker {key}: {e}") from e

    def _put(self, key: str, state: str, only_if_new: bool, note: str = "") -> bool:
        body = json.dumps({"state": state, "at": time.time(), "note": note}).encode()
        extra = {"IfNoneMatch": "*"} if only_if_new else {}
        for pause in (*CONFLICT_RETRY_DELAYS, None):
            try:
                clients.client("s3").put_object(Bucket=self._bucket, Key=key, Body=body, **extra)
                return True
            except ClientError as e:
                code = error_codes.code(e)
                if only_if_new and code in _TAKEN:
                    return False
                if code in _CONFLICT and pause is not None:
                    log.info("marker %s: concurrent write (409), retrying in %ss", key, pause)
                    _sleep(pause)
                    continue
                raise RetryableError(f"writing marker {key}: {e}") from e
            except BotoCoreError as e:
                raise RetryableError(f"writing marker {key}: {e}") from e
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _read(self, key: str) -> tuple[str, float]:
        try:
            response = clients.client("s3").get_object(Bucket=self._bucket, Key=key)
            document = json.loads(response["Body"].read())
            return str(document.get("state", "")), float(document.get("at", 0))
        except ClientError as e:
            if error_codes.code(e) in error_codes.MISSING:
                return "", 0.0
            raise RetryableError(f"reading marker {key}: {e}") from e
        except (BotoCoreError, ValueError) as e:
            raise RetryableError(f"reading marker {key}: {e}") from e


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # one place for tests to replace the backoff's waiting
