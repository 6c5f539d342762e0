"""Property: whatever alarms arrive, in whatever order, with redeliveries, hostile subjects and any gaps
between them, folding loses nothing and doubles nothing: after the alarms go quiet, every mail reached
the recipients exactly once, relayed on its own or listed in one digest."""

from __future__ import annotations

import contextlib
import itertools
import re
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.alarms.fingerprint import identify
from tests.support import hostile
from tests.support.folding import MINUTE, RECIPIENTS, T0, Relay, alarm
from tests.support.fuzzing import FUZZ
from tests.support.world import SentMail, World, local_world

# Subjects that fold, pair, flap and differ, plus anything a sender can write.
SUBJECTS = st.one_of(
    st.sampled_from(
        [
            "PROBLEM: Pump 3 pressure 9.1 bar",
            "PROBLEM: Pump 3 pressure 9.7 bar",
            "RECOVERY: Pump 3 pressure OK",
            "PROBLEM: Pump 4 pressure 9.1 bar",
            "Resolved: Pump 4 pressure",
            "[PRTG] Ping 192.168.1.10 Down (Ping: 12 ms)",
            "[PRTG] Ping 192.168.1.10 Up (Ping: 3 ms)",
        ]
    ),
    hostile.header_texts,
)
EVENTS = st.lists(
    st.tuples(SUBJECTS, st.integers(min_value=0, max_value=40), st.booleans()), min_size=1, max_size=12
)
ROW = re.compile(r"^\d+\. ", re.MULTILINE)


def listed(mail: SentMail) -> list[str]:
    """The rows a digest lists (numbered lines of its text part)."""
    body = mail.message.get_body(("plain",))
    assert body is not None
    return ROW.findall(str(body.get_content()))


_examples = itertools.count()


class Worlds:
    """A fresh account every EXAMPLES_PER_WORLD examples: moto copies the whole table in each transaction,
    so one account for all of them would slow every example down. Within an account each example has a
    sender of its own, so its alarms are its own."""

    EXAMPLES_PER_WORLD = 40

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._world: World | None = None
        self._used = 0

    def next(self) -> World:
        if self._world is None or self._used >= self.EXAMPLES_PER_WORLD:
            self._stack.close()
            self._world, self._used = self._stack.enter_context(local_world()), 0
        self._used += 1
        return self._world

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="module")
def folding_world() -> Iterator[Worlds]:
    worlds = Worlds()
    yield worlds
    worlds.close()


# Each example relays up to a dozen mails and their ticks through moto (about half a second), so this
# runs a quarter of FUZZ_EXAMPLES; the subjects' bytes get the full count in the pure properties of
# tests/unit/alarms/test_fingerprint.py.
@settings(FUZZ, max_examples=max(25, FUZZ.max_examples // 4))
@given(events=EVENTS)
def test_every_mail_reaches_the_recipients_exactly_once_relayed_or_listed(
    folding_world: Worlds, events: list[tuple[str, int, bool]]
) -> None:
    world, example = folding_world.next(), next(_examples)
    relay, before = Relay(world), len(world.sent())
    sender = f"plc-{example}@plant.example.com"
    at, received = T0, []
    for n, (subject, gap, redeliver) in enumerate(events):
        at += gap * MINUTE
        key, message_id = f"incoming/prop-{example}-{n}.eml", f"prop-{example}-{n}@plant.example.com"
        world.put_mail(key, alarm(hostile.encoded_word(subject), sender=sender, message_id=message_id))
        relay.mail("", at, key=key)
        received.append(f"<{message_id}>")
        if redeliver:  # SQS delivers at least once
            relay.mail("", at + timedelta(seconds=20), key=key)
    incidents = relay.ports.incidents
    assert incidents is not None
    alarms = {identify(sender, RECIPIENTS, subject).fingerprint for subject, _, _ in events}
    for _ in range(100):  # the alarms fall quiet: tick at each due time until nothing is due
        states = [stored.state for stored in map(incidents.load, alarms) if stored is not None]
        due = [state.due_at for state in states if state.due_at is not None]
        if not due:
            break
        at = max(at, min(due))
        relay.tick(at, alarms)
    else:
        pytest.fail("the alarms never stopped being due")
    sent = [m for m in world.sent()[before:] if str(m.message["Reply-To"]) == sender]
    relayed = Counter(
        str(m.message["X-Original-Message-ID"]) for m in sent if m.message["Auto-Submitted"] is None
    )
    assert all(count == 1 for count in relayed.values()), relayed
    rows = sum(len(listed(m)) for m in sent if m.message["Auto-Submitted"] == "auto-generated")
    assert sum(relayed.values()) + rows == len(received)
    assert set(relayed) <= set(received)
