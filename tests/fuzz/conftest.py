"""Hostile-input tests share one moto account per module (a fresh one per example would be too slow):
every example uses its own incoming key, and `Relayed` tells what that one key caused."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from app.handler import lambda_handler
from demo.world import ENVIRONMENT, SentMail, World, moto_world, sqs_event


@pytest.fixture(scope="module")
def shared_world() -> Iterator[World]:
    """One moto account for a whole module, with the network refused (moto answers in process)."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("fuzz tests must not use the network")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        with moto_world(ENVIRONMENT) as world:
            yield world


@dataclass
class Relayed:
    """What relaying one mail did: the handler's answer, the sends and the notices it caused."""

    key: str
    response: dict[str, list[dict[str, str]]]
    sent: list[SentMail]
    notices: list[dict[str, Any]]

    @property
    def outcome(self) -> str:
        """distributed or fallback, asserting the mail reached exactly one of them."""
        assert self.response == {"batchItemFailures": []}, f"{self.key} was reported failed"
        if self.sent:
            extra = [n["reason"] for n in self.notices if n["reason"] != "invalid_recipients"]
            assert not extra, f"{self.key} was sent and also notified: {extra}"
            return "distributed"
        assert len(self.notices) == 1, f"{self.key}: no send and {len(self.notices)} notices"
        assert self.notices[0]["key"] == self.key
        return "fallback"


def relay(world: World, key: str, raw: bytes) -> Relayed:
    sent_before, notices_before = len(world.sent()), len(world.notices())
    world.put_mail(key, raw)
    response = lambda_handler(sqs_event(key), None)
    return Relayed(key, response, world.sent()[sent_before:], world.notices()[notices_before:])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fuzz/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)
