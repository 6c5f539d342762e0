"""What the property and abuse tests share: hypothesis's settings, fresh incoming keys, and `relay`,
which tells what relaying one mail caused in a world that many examples share."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings

from app.handler import lambda_handler
from tests.support.world import SentMail, World

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")),  # raise it for a longer hunt
    deadline=None,
    database=None,  # no example database in the work tree; failures print their reproducer
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_numbers = itertools.count()


def new_key() -> str:
    return f"incoming/fuzz/{next(_numbers)}/mail.eml"


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
    response = lambda_handler(world.event(key), None)
    return Relayed(key, response, world.sent()[sent_before:], world.notices()[notices_before:])
