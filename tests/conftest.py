"""Shared fixtures: the relay's account from template.yaml in moto (tests/support/world.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.world import World, local_world


@pytest.fixture
def parameters() -> dict[str, str]:
    """Template parameter overrides; a test changes entries before asking for `world`."""
    return {}


@pytest.fixture
def world(parameters: dict[str, str]) -> Iterator[World]:
    with local_world(parameters) as created:
        yield created
