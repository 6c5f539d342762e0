"""Status: the template's alarm conditions on current values. Outbox: the links a delivered mail carries."""

from __future__ import annotations

import json
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from localaws.template import load
from sandbox.outbox import links_in
from sandbox.poller import PollerStats
from sandbox.status import QueueSnapshot, Status, evaluate, show
from tests.support import TEMPLATE

pytestmark = pytest.mark.unit


def _snapshot(name: str, visible: int = 0, age: float = 0.0, sent: int = 0) -> QueueSnapshot:
    now = time.time()
    return QueueSnapshot(name, visible, 0, age, {f"m{i}": now - 10 for i in range(sent)})


def test_each_alarm_fires_on_its_own_condition_with_the_templates_thresholds() -> None:
    blueprint = load(TEMPLATE, {"DlqAlarmThreshold": "2"})
    inbound, dlq = blueprint.inbound_queue.name, blueprint.dead_letter_queue.name  # type: ignore[union-attr]
    metric_of = {a.name: a.metric for a in blueprint.alarms}

    def firing(queues: dict[str, QueueSnapshot], stats: PollerStats | None = None) -> set[str]:
        return {metric_of[a.name] for a in evaluate(blueprint, queues, stats or PollerStats()) if a.firing}

    quiet = {inbound: _snapshot(inbound), dlq: _snapshot(dlq)}
    assert firing(quiet) == set()
    assert firing({**quiet, dlq: _snapshot(dlq, visible=3)}) == {"ApproximateNumberOfMessagesVisible"}
    assert firing({**quiet, dlq: _snapshot(dlq, visible=2)}) == set()  # GreaterThanThreshold
    assert firing({**quiet, inbound: _snapshot(inbound, age=181)}) == {"ApproximateAgeOfOldestMessage"}
    stats = PollerStats(first_seen={f"seen{i}": time.time() - 60 for i in range(100)})
    assert firing({**quiet, inbound: _snapshot(inbound, sent=81)}, stats) == {"NumberOfMessagesSent"}
    old = PollerStats(first_seen={f"old{i}": time.time() - 301 for i in range(500)})
    assert firing(quiet, old) == set()  # outside the alarm's 300 s period


def test_the_status_subcommand_reads_the_running_sandboxs_file(tmp_path: Path) -> None:
    status = Status(time.time(), _snapshot("in", visible=4, age=12), _snapshot("dlq", visible=1), [], 3, 1)
    (tmp_path / "status.json").write_text(status.to_json())
    text = show(tmp_path / "status.json")
    assert "inbound queue in: 4 waiting, 0 in flight, oldest message 12 s" in text
    assert "dead-letter queue dlq: 1 messages" in text
    assert "3 invocations, 1 errors" in text
    assert "sent_timestamps" not in json.loads((tmp_path / "status.json").read_text())["inbound"]
    assert "is the sandbox running" in show(tmp_path / "missing.json")


def test_links_are_found_in_quoted_printable_text_and_html_once_each() -> None:
    url = "http://127.0.0.1:4566/b/attachments/d/1/a.bin?X-Amz-Expires=86400&X-Amz-Signature=" + "f" * 64
    message = EmailMessage()
    message.set_content(f"Attachments:\n- a.bin: {url}\n", cte="quoted-printable")
    message.add_alternative(f'<p><a href="{url.replace("&", "&amp;")}">a.bin</a></p>', subtype="html")
    parsed = EmailMessage()
    assert links_in(message) == [url]
    assert links_in(parsed) == []
