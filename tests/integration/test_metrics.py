"""The function's log line, rendered as Lambda's JSON log format writes it, is a valid EMF document whose
metrics describe the mail; RelayLatency starts at the S3 event's eventTime."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.handler import lambda_handler
from tests.support import fixture_mail
from tests.support.emf import assert_valid_emf, lambda_json_line
from tests.support.mails import attachment_links
from tests.support.world import RELAY_ADDRESS, STACK, World

RECEIVED_AGO = timedelta(seconds=3)


def event_received(world: World, key: str, at: datetime) -> dict[str, Any]:
    """The SQS event for `key` with the S3 notification's eventTime as S3 writes it."""
    event = world.event(key)
    body = json.loads(event["Records"][0]["body"])
    body["Records"][0]["eventTime"] = at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    event["Records"][0]["body"] = json.dumps(body)
    return event


def mail_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        lambda_json_line(r)
        for r in caplog.records
        if r.name == "iot_mail_relay" and r.getMessage().startswith("mail ")
    ]


def test_a_distributed_mail_reports_its_counts_and_latency(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="iot_mail_relay")
    key = "incoming/camera.eml"
    world.put_mail(key, fixture_mail("camera-jpeg-name-param-no-disposition.eml"))
    received = datetime.now(UTC) - RECEIVED_AGO
    assert lambda_handler(event_received(world, key, received), None) == {"batchItemFailures": []}
    (line,) = mail_lines(caplog)
    assert_valid_emf(line)
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == f"IoTMailRelay/{STACK}"  # the template's
    assert (line["Outcome"], line["Reason"], line["Mails"]) == ("distributed", "none", 1)
    assert line["Recipients"] == len(world.sent()[0].destinations)
    assert line["Attachments"] == 2
    sizes = [len(world.download(w)) for w in attachment_links(world.sent()[0].message.get_content())]
    assert line["AttachmentBytes"] == sum(sizes) > 0
    elapsed_ms = (datetime.now(UTC) - received).total_seconds() * 1000
    assert RECEIVED_AGO.total_seconds() * 1000 <= line["RelayLatency"] <= elapsed_ms
    assert 0 < line["ProcessingTime"] < line["RelayLatency"]

    caplog.clear()  # the same record again: nothing is sent twice, so no second latency
    assert lambda_handler(event_received(world, key, received), None) == {"batchItemFailures": []}
    (again,) = mail_lines(caplog)
    assert_valid_emf(again)
    assert "RelayLatency" not in again


def test_a_fallback_carries_its_reason_and_the_stacks_namespace(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="iot_mail_relay")
    world.put_mail(
        "incoming/nobody.eml",
        b"X-SES-Virus-Verdict: PASS\r\nFrom: s@plant.example.com\r\nSubject: x\r\n\r\nno code\r\n",
    )
    lambda_handler(event_received(world, "incoming/nobody.eml", datetime.now(UTC)), None)
    assert len(world.notices()) == 1
    (line,) = mail_lines(caplog)
    assert_valid_emf(line)
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == f"IoTMailRelay/{STACK}"
    assert (line["Outcome"], line["Reason"], line["Recipients"]) == ("fallback", "no_recipients", 0)
    assert line["RelayLatency"] >= 0  # to SNS accepting the notice


def test_no_key_address_or_message_id_in_a_dimension(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="iot_mail_relay")
    key = "incoming/qp-soft-breaks-in-recipient-code.eml"
    world.put_mail(key, fixture_mail("qp-soft-breaks-in-recipient-code.eml"))
    lambda_handler(event_received(world, key, datetime.now(UTC)), None)
    (line,) = mail_lines(caplog)
    dimensions = {n for s in line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] for n in s}
    values = " ".join(line[n] for n in dimensions)
    assert line["message_id"]
    for secret in (key, line["message_id"], RELAY_ADDRESS, "@"):
        assert secret not in values
