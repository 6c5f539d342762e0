"""X-Ray: every botocore call becomes a subsegment, and each mail gets its own annotated subsegment.

Annotations (not metadata) are indexed, so operators can search traces with filter expressions such as
`annotation.incoming_key = "incoming/abc"` or `annotation.outcome = "fallback"`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core import patch, xray_recorder


@cache
def instrument() -> None:
    """Patch botocore once, before the first client exists.

    Outside Lambda (demo, sandbox, tests) there is no trace to join, so the SDK is switched off unless
    AWS_XRAY_SDK_ENABLED says otherwise; it would only warn about missing segments.
    """
    if "AWS_XRAY_SDK_ENABLED" not in os.environ and "LAMBDA_TASK_ROOT" not in os.environ:
        global_sdk_config.set_sdk_enabled(False)
    xray_recorder.configure(context_missing=os.environ.get("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR"))
    patch(("botocore",))


class MailTrace:
    """Annotations of one mail's subsegment; a no-op when there is no trace to annotate."""

    def __init__(self, subsegment: Any) -> None:
        self._subsegment = subsegment

    def annotate(self, **values: str | int | bool) -> None:
        if self._subsegment is None:
            return
        for key, value in values.items():
            self._subsegment.put_annotation(key, value)


@contextmanager
def mail_subsegment(incoming_key: str) -> Iterator[MailTrace]:
    instrument()
    with xray_recorder.in_subsegment("relay_mail") as subsegment:
        trace = MailTrace(subsegment)
        trace.annotate(incoming_key=incoming_key)
        yield trace
