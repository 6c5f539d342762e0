"""Shared fixtures: the relay's account from template.yaml in moto (tests/support/world.py), and behind
moto's server for relayctl run as a program (tests/support/relayctl.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localaws.account import Account
from tests.support import relayctl as support_relayctl
from tests.support.world import World, local_world


@pytest.fixture
def parameters() -> dict[str, str]:
    """Template parameter overrides; a test changes entries before asking for `world`."""
    return {}


@pytest.fixture
def world(parameters: dict[str, str]) -> Iterator[World]:
    with local_world(parameters) as created:
        yield created


@pytest.fixture
def served_relay() -> Iterator[Account]:
    """The template's account behind moto's server, for relayctl run as a program (tests/support/relayctl.py)."""
    with support_relayctl.served_relay() as account:
        yield account
