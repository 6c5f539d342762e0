"""The installed tool against a local endpoint through AWS_ENDPOINT_URL, as with the sandbox: the
template's account behind moto's server (tests/support/relayctl.served_relay)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from localaws.account import Account


def _relayctl(account: Account, *argv: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RELAYCTL_"))}
    assert account.endpoint is not None
    environment.update(
        AWS_ENDPOINT_URL=account.endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION=account.blueprint.region,
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


def test_redrive_and_status_through_aws_endpoint_url(served_relay: Account) -> None:
    blueprint = served_relay.blueprint
    sqs = served_relay.client("sqs")
    assert blueprint.dead_letter_queue is not None
    dlq = served_relay.queue_url(blueprint.dead_letter_queue.logical_id)
    inbound = served_relay.queue_url(blueprint.inbound_queue.logical_id)
    for i in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"mail {i}")
    queues = ["--queue-url", inbound, "--dlq-url", dlq]

    # moto's server answers the move task's calls with a bare 500, as it does any action it lacks: a
    # server error, retried and then reported, never taken for "no move task".
    refused = _relayctl(served_relay, "redrive", *queues)
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

    moved = _relayctl(served_relay, "redrive", *queues, "--no-move-task", "--json")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["method"] == "receive-send-delete"

    status = _relayctl(served_relay, "status", *queues, "--json")
    assert status.returncode == 0, status.stderr
    figures = json.loads(status.stdout)["queues"]
    assert (figures["inbound"]["visible"], figures["dead_letter"]["visible"]) == (3, 0)

    failed = _relayctl(
        served_relay, "links", "--attachments-bucket", "absent", "--incoming-key", "incoming/x"
    )
    assert failed.returncode == 1
    assert failed.stderr.startswith("relayctl: error: ")
    assert "Traceback" not in failed.stderr


def test_teardown_in_a_script_refuses_without_yes_and_removes_leftovers_with_it(
    served_relay: Account,
) -> None:
    """The buckets a failed first deploy leaves (the stack gone, the buckets kept) found by the template's
    BucketNamePrefix."""
    blueprint = served_relay.blueprint
    prefix = blueprint.parameters["BucketNamePrefix"]
    incoming = blueprint.bucket("IncomingBucket").name
    attachments = blueprint.bucket("AttachmentsBucket").name
    s3 = served_relay.client("s3")
    s3.put_object(Bucket=incoming, Key="incoming/AMAZON_SES_SETUP_NOTIFICATION", Body=b"setup")

    refused = _relayctl(served_relay, "teardown", "--bucket-prefix", prefix)
    assert refused.returncode == 1
    assert "refusing without confirmation (stdin is not a terminal; pass --yes)" in refused.stderr
    assert "1 object(s) in 2 bucket(s)" in refused.stderr
    assert s3.list_objects_v2(Bucket=incoming)["KeyCount"] == 1

    done = _relayctl(served_relay, "teardown", "--bucket-prefix", prefix, "--yes")
    assert done.returncode == 0, done.stderr
    assert f"deleted bucket {incoming}" in done.stdout
    assert f"deleted bucket {attachments}" in done.stdout
    assert {incoming, attachments}.isdisjoint(b["Name"] for b in s3.list_buckets()["Buckets"])
