"""Fault-injection tests run the handler against moto with botocore's retries kept, but without waiting."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.retries import standard

from app.aws import markers
from tests.support.faults import Faults
from tests.support.world import World


@pytest.fixture(autouse=True)
def _no_network_no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto answers in process, so any socket is a leak; retries happen, only their sleep is skipped."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("reliability tests must not use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    monkeypatch.setattr(markers, "_sleep", lambda seconds: None)  # the 409 backoff of a claim, likewise


@pytest.fixture
def faults(world: World) -> Iterator[Faults]:
    injected = Faults()
    yield injected
    injected.heal()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)
