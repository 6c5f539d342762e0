"""Hostile-input tests share one moto account per module (a fresh one per example would be too slow):
every example uses its own incoming key, and `tests.support.fuzzing.relay` tells what that key caused."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.world import World, local_world

NO_FOLDING = {"RepeatFolding": "off"}


@pytest.fixture(scope="module")
def shared_world() -> Iterator[World]:
    """One moto account for a whole module, with the network refused (moto answers in process)."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("fuzz tests must not use the network")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        # Many examples share one account and often one subject: with folding on, their repeats would
        # fold instead of going out to be checked. Folding gets its own properties (test_folding.py).
        with local_world(NO_FOLDING) as world:
            yield world


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fuzz/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)
