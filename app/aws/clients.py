"""Lazily built boto3 clients: created on first use (after moto or X-Ray patching is in place), with
botocore's standard retry mode for throttling, SigV4 for S3 so pre-signed links carry `X-Amz-Expires`,
and endpoints left to the standard `AWS_ENDPOINT_URL*` variables.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from app import tracing

RETRIES = {"mode": "standard", "max_attempts": 5}


@cache
def _session() -> boto3.session.Session:
    """One session for the function's clients: each session loads botocore's endpoint and service data
    anew, so a session per client made the first mail of a cold process pay for that twice."""
    return boto3.session.Session()


@cache
def client(service: str) -> Any:
    tracing.instrument()
    config = Config(retries=RETRIES, signature_version="s3v4") if service == "s3" else Config(retries=RETRIES)
    return _session().client(service, config=config)


def reset() -> None:
    """Forget every client (tests start a fresh moto account per test)."""
    client.cache_clear()
    _session.cache_clear()
