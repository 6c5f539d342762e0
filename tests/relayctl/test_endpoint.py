"""The installed tool against a local endpoint (moto's server) through AWS_ENDPOINT_URL, as with the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _relayctl(endpoint: str, *argv: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RELAYCTL_"))}
    environment.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION=REGION,
    )
    return subprocess.run(
        [sys.executable, "-m", "relayctl", *argv],
        check=False,
        env=environment,
        stdin=subprocess.DEVNULL,  # not a terminal, as in a script or CI job
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_redrive_and_status_through_aws_endpoint_url(endpoint: str) -> None:
    sqs: Any = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    dlq = sqs.create_queue(QueueName="relay-dlq")["QueueUrl"]
    inbound = sqs.create_queue(QueueName="relay-inbound")["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"mail {i}")
    queues = ["--queue-url", inbound, "--dlq-url", dlq]

    # moto's server answers the move task's calls with a bare 500, as it does any action it lacks: a
    # server error, retried and then reported, never taken for "no move task".
    refused = _relayctl(endpoint, "redrive", *queues)
    assert refused.returncode == 1
    assert "ListMessageMoveTasks failed: 500" in refused.stderr
    assert "attempts; nothing was moved" in refused.stderr
    assert "--no-move-task" in refused.stderr
    assert (
        sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "3"
    )

    moved = _relayctl(endpoint, "redrive", *queues, "--no-move-task", "--json")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["method"] == "receive-send-delete"

    status = _relayctl(endpoint, "status", *queues, "--json")
    assert status.returncode == 0, status.stderr
    figures = json.loads(status.stdout)["queues"]
    assert (figures["inbound"]["visible"], figures["dead_letter"]["visible"]) == (3, 0)

    failed = _relayctl(endpoint, "links", "--attachments-bucket", "absent", "--incoming-key", "incoming/x")
    assert failed.returncode == 1
    assert failed.stderr.startswith("relayctl: error: ")
    assert "Traceback" not in failed.stderr


def test_teardown_in_a_script_refuses_without_yes_and_removes_leftovers_with_it(endpoint: str) -> None:
    s3: Any = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = f"relay-incoming-123456789012-{REGION}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="incoming/AMAZON_SES_SETUP_NOTIFICATION", Body=b"setup")

    refused = _relayctl(endpoint, "teardown", "--bucket-prefix", "relay")
    assert refused.returncode == 1
    assert "refusing without confirmation (stdin is not a terminal; pass --yes)" in refused.stderr
    assert "1 object(s) in 1 bucket(s)" in refused.stderr
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1

    done = _relayctl(endpoint, "teardown", "--bucket-prefix", "relay", "--yes")
    assert done.returncode == 0, done.stderr
    assert f"deleted bucket {bucket}" in done.stdout
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
