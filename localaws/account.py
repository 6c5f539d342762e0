"""The local account: the blueprint's resources created in moto, clients for it, the functions'
environments as Lambda would set them, and what the account saw (SES's sent mail, SNS's messages).

`in_process(blueprint)` is moto's in-process mock (`mock_aws`): the caller's own boto3 clients reach it.
`served(blueprint)` is moto's server in this process: other processes reach it through
`AWS_ENDPOINT_URL`, which `environment()` sets. Either way moto's backends live in this process, so
`sent_mail()` and `published()` read what the functions handed to AWS.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import cache
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from botocore.config import Config

from localaws.blueprint import Blueprint
from localaws.events import function_url_event
from localaws.provision import provision
from localaws.server import DUMMY_KEY, MotoServer

# Variables of the caller's shell that would send clients elsewhere than the local account.
_FOREIGN = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


@dataclass(frozen=True)
class SentMail:
    """One SES send: who it went to and the raw message."""

    destinations: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        if not isinstance(parsed, EmailMessage):
            raise TypeError("expected an EmailMessage")
        return parsed


@dataclass(frozen=True)
class Published:
    """One SNS publish: its subject and message."""

    subject: str | None
    message: str

    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.message)
        return document


@cache
def _session() -> boto3.session.Session:
    """One session for every local client: each session loads botocore's service models anew, which
    costs more than creating the whole account."""
    return boto3.session.Session()


class LinkRefused(Exception):
    """A link did not lead to a file: the function URL's status and page."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body[:200]}")
        self.status = status
        self.body = body


class Account:
    def __init__(self, blueprint: Blueprint, endpoint: str | None = None) -> None:
        self.blueprint = blueprint
        self.endpoint = endpoint  # None: moto's in-process mock
        self.queue_urls: dict[str, str] = {}
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """A client of the local account (one per service, kept)."""
        if service not in self._clients:
            self._clients[service] = _session().client(
                service,
                endpoint_url=self.endpoint,
                region_name=self.blueprint.region,
                aws_access_key_id=DUMMY_KEY,
                aws_secret_access_key=DUMMY_KEY,
                config=Config(signature_version="s3v4") if service == "s3" else None,
            )
        return self._clients[service]

    def queue_url(self, logical_id: str) -> str:
        return self.queue_urls[logical_id]

    def environment(self, function_id: str | None = None) -> dict[str, str]:
        """What Lambda gives the function (all functions', when None): its variables from the template,
        the region, credentials for the local account and, when served, its endpoint."""
        b = self.blueprint
        function = b.functions[function_id] if function_id else b.function
        variables = function.environment if function_id else b.process_environment()
        return {
            **variables,
            "AWS_REGION": b.region,
            "AWS_DEFAULT_REGION": b.region,
            "AWS_ACCESS_KEY_ID": DUMMY_KEY,
            "AWS_SECRET_ACCESS_KEY": DUMMY_KEY,
            "AWS_SESSION_TOKEN": DUMMY_KEY,
            **({"AWS_ENDPOINT_URL": self.endpoint} if self.endpoint else {}),
            "AWS_CONFIG_FILE": os.devnull,  # no profile of the developer's can redirect a client
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        }

    # -- links -----------------------------------------------------------------------------------------
    def handler(self, function_id: str) -> Callable[[dict[str, Any], Any], Any]:
        """The function's handler (module.function), imported in this process: its environment must
        already be in os.environ (`environ(account.environment())`)."""
        module, _, attribute = self.blueprint.functions[function_id].handler.rpartition(".")
        handler: Callable[[dict[str, Any], Any], Any] = getattr(importlib.import_module(module), attribute)
        return handler

    def invoke_url(self, method: str, url: str, **request: Any) -> dict[str, Any]:
        """A request to a function URL, answered by its function in this process."""
        for endpoint in self.blueprint.endpoints:
            if url.startswith(endpoint.url):
                response: dict[str, Any] = self.handler(endpoint.function_id)(
                    function_url_event(method, url, **request), None
                )
                return response
        raise ValueError(f"no function URL of the stack serves {url}")

    def download(self, url: str) -> bytes:
        """The bytes a link in a relayed mail leads to: through the download function and its redirect
        when the link is the function URL's, else the S3 object a pre-signed link names."""
        if any(url.startswith(endpoint.url) for endpoint in self.blueprint.endpoints):
            response = self.invoke_url("GET", url)
            if response["statusCode"] != 302:
                raise LinkRefused(int(response["statusCode"]), str(response.get("body", "")))
            url = str(response["headers"]["Location"])
        bucket, key = _s3_object(url)
        return bytes(self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())

    # -- what the account saw ------------------------------------------------------------------------
    def sent_mail(self) -> list[SentMail]:
        from moto.ses.models import ses_backends

        backend = ses_backends[self.blueprint.account_id][self.blueprint.region]
        return [SentMail(tuple(m.destinations), m.raw_data.encode()) for m in backend.sent_messages]

    def published(self, topic_arn: str) -> list[Published]:
        from moto.sns.models import sns_backends

        topic = sns_backends[self.blueprint.account_id][self.blueprint.region].topics[topic_arn]
        return [Published(subject, message) for _, message, subject, _, _ in topic.sent_notifications]


def _s3_object(url: str) -> tuple[str, str]:
    """(bucket, key) of a pre-signed S3 URL, virtual-hosted or path style."""
    parts = urlsplit(url)
    path = unquote(parts.path).lstrip("/")
    host_bucket = parts.netloc.split(".s3", 1)[0]
    if ".s3" in parts.netloc and host_bucket:
        return host_bucket, path
    bucket, _, key = path.partition("/")
    return bucket, key


@contextmanager
def in_process(blueprint: Blueprint, visibility_timeout: int | None = None) -> Iterator[Account]:
    """The account in moto's in-process mock, with the blueprint's resources."""
    from moto import mock_aws

    with mock_aws():
        account = Account(blueprint)
        account.queue_urls = provision(blueprint, account.client, visibility_timeout)
        yield account


@contextmanager
def served(
    blueprint: Blueprint,
    host: str = "127.0.0.1",
    port: int = 0,
    fd: int | None = None,
    visibility_timeout: int | None = None,
) -> Iterator[Account]:
    """The account behind moto's server in this process (a free port by default)."""
    server = MotoServer(host, port, fd).start()
    try:
        account = Account(blueprint, server.endpoint)
        account.queue_urls = provision(blueprint, account.client, visibility_timeout)
        yield account
    finally:
        server.stop()


@contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in os.environ (without the caller's AWS profile and endpoint overrides) while inside."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith(_FOREIGN)]:
        del os.environ[name]
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
