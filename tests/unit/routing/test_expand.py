"""app/routing/expand.py: code entries and routes expand to de-duplicated addresses without the relay's own,
and the address a mail was received for is SES's word or the first of ours the sender wrote."""

from __future__ import annotations

import pytest

from app.routing.expand import expand, receiving_address
from tests.support.routing import CAMERA, RELAY, directory


def test_expansion_dedupes_across_groups_and_addresses_and_drops_our_own_addresses() -> None:
    groups = directory({"groups": {"a": ["x@example.com", CAMERA, "y@example.com"], "b": ["Y@example.com"]}})
    expansion = expand(("x@example.com", "a", "b", "z@example.com"), groups, drop=(RELAY, CAMERA))
    assert expansion.recipients == ("x@example.com", "y@example.com", "z@example.com")
    assert expansion.from_groups == 1  # y came only from a group; x was named directly
    assert expansion.unknown_groups == ()


def test_unknown_groups_are_reported() -> None:
    expansion = expand(("nope", "a@example.com"), directory(), drop=())
    assert expansion.recipients == ("a@example.com",)
    assert expansion.unknown_groups == ("nope",)


@pytest.mark.parametrize(
    ("envelope", "written", "expected"),
    [
        (CAMERA, (), CAMERA),  # SES named the one envelope recipient
        (CAMERA.upper(), (RELAY,), CAMERA),  # SES's word wins over the To the sender wrote
        (None, ("someone@example.com", CAMERA, RELAY), CAMERA),  # several recipients: first of ours in To/Cc
        ("stranger@relay.example.com", (RELAY,), RELAY),  # not one of ours: not trusted as a route key
        (None, ("someone@example.com",), None),
    ],
)
def test_the_receiving_address(envelope: str | None, written: tuple[str, ...], expected: str | None) -> None:
    assert receiving_address(envelope, written, (RELAY, CAMERA)) == expected
