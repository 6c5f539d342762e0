"""A lone alarm mail goes at once: the template's batching window, the poller, and the latency script the
README's figures come from (`python -m sandbox.latency`)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localaws.events import LambdaContext
from localaws.template import load
from sandbox.poller import Poller
from tests.support import ROOT, TEMPLATE


@pytest.mark.unit
def test_the_template_holds_no_record_back_by_default() -> None:
    assert load(TEMPLATE, {}).event_source.window_seconds == 0
    assert load(TEMPLATE, {"BatchingWindowSeconds": "5"}).event_source.window_seconds == 5


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str, str]]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="in")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        yield sqs, url, arn


@pytest.mark.integration
def test_without_a_window_a_record_arriving_during_the_long_poll_is_handed_over_at_once(
    queue: tuple[Any, str, str],
) -> None:
    sqs, url, arn = queue
    handed: list[float] = []
    poller = Poller(
        sqs,
        url,
        arn,
        "us-east-1",
        lambda: lambda event, context: handed.append(time.monotonic()),
        lambda: LambdaContext("fn", "arn", 128, 30),
        batch_size=10,
        window_seconds=0,
    )
    sent: list[float] = []

    def send_later() -> None:
        time.sleep(0.3)  # the poller is inside its long poll by now
        sqs.send_message(QueueUrl=url, MessageBody="alarm")
        sent.append(time.monotonic())

    sender = threading.Thread(target=send_later)
    sender.start()
    assert poller.poll_once() == 1
    sender.join()
    assert handed[0] - sent[0] < 0.25  # not the end of the 1 s poll, not a batching window


@pytest.mark.integration
def test_the_latency_script_measures_a_lone_mail_under_a_second_and_a_burst() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox.latency",
            "--lone",
            "3",
            "--burst",
            "5",
            "--burst-kb",
            "10",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    assert figures["window_seconds"] == "0 s (template)"
    assert len(figures["lone_seconds"]) == 3
    assert 0 < figures["lone_median_seconds"] <= 1.0  # the goal; 5 s with the old window
    assert figures["burst"] == 5
    assert figures["burst_mails_per_second"] > 0
