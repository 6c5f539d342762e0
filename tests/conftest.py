"""Shared fixtures: fixture mails as bytes, and a moto account with the relay's resources."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.world import ENVIRONMENT, World, moto_world

FIXTURES = Path(__file__).parent / "fixtures" / "mails"
EVENTS = Path(__file__).parent.parent / "events"


def fixture_mail(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def environment() -> dict[str, str]:
    """The function's environment; tests change entries before asking for `world`."""
    return dict(ENVIRONMENT)


@pytest.fixture
def world(environment: dict[str, str]) -> Iterator[World]:
    with moto_world(environment) as created:
        yield created
