"""relayctl against moto in process: the template's account (localaws), one per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localaws.account import in_process
from localaws.blueprint import Blueprint
from tests.support import relayctl
from tests.support.relayctl import Relay


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/relayctl/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def blueprint() -> Blueprint:
    return relayctl.blueprint()


@pytest.fixture
def relay(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], blueprint: Blueprint
) -> Iterator[Relay]:
    """relayctl runs in this process with the operator's AWS settings pointing at the account."""
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_PROFILE",
        "RELAYCTL_STACK",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": blueprint.region,
        "AWS_REGION": blueprint.region,
    }.items():
        monkeypatch.setenv(name, value)
    with in_process(blueprint) as account:
        sqs = account.client("sqs")
        # S3's s3:TestEvent from setting up the bucket's notification
        sqs.purge_queue(QueueUrl=account.queue_url(blueprint.inbound_queue.logical_id))
        yield Relay(account, capsys)
