"""boto3 clients for the tool and the one exception type it reports.

Clients come from one session (`--profile`, `--region` or the usual chain); botocore itself honours
`AWS_ENDPOINT_URL`, so the same commands work against the local sandbox.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, NoRegionError

from app.aws import error_codes

RETRIES: dict[str, Any] = {"mode": "standard", "max_attempts": 5}


class CommandError(Exception):
    """Something the operator can act on; printed as one line, exit status 1."""


class Aws:
    def __init__(self, profile: str | None = None, region: str | None = None) -> None:
        # botocore reads AWS_DEFAULT_REGION and the profile; AWS_REGION is what most other tools set.
        region = region or os.environ.get("AWS_REGION") or None
        self._session = boto3.session.Session(profile_name=profile, region_name=region)
        self._clients: dict[str, Any] = {}

    @property
    def region(self) -> str:
        if not self._session.region_name:
            raise NoRegionError
        return str(self._session.region_name)

    def account(self) -> str:
        """The caller's account id (sts:GetCallerIdentity needs no permission)."""
        return str(self.client("sts").get_caller_identity()["Account"])

    def client(self, service: str, attempts: int = RETRIES["max_attempts"]) -> Any:
        """A cached client; `attempts=1` for a probe whose failure has a fallback anyway."""
        name = f"{service}/{attempts}"
        if name not in self._clients:
            options: dict[str, Any] = {"retries": {**RETRIES, "max_attempts": attempts}}
            if service == "s3":
                options["signature_version"] = "s3v4"
            self._clients[name] = self._session.client(service, config=Config(**options))
        return self._clients[name]


def describe(error: ClientError) -> str:
    """`Operation failed: Code: message`, the part of a ClientError an operator needs (the function's
    own logs keep to the code alone: `app.aws.error_codes.describe`)."""
    message = error_codes.message(error).strip()
    if message.startswith("<"):  # an HTML error page from a proxy or a local endpoint
        message = ""
    operation = getattr(error, "operation_name", "") or "request"
    return f"{operation} failed: {error_codes.code(error)}" + (f": {message}" if message else "")
