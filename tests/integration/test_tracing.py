"""X-Ray: run the handler as Lambda would (facade segment from _X_AMZN_TRACE_ID) and read the UDP
datagrams the SDK sends to the daemon address."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TRACE_ID = "1-67891233-abcdef012345678912345678"
SCRIPT = """
from app.handler import lambda_handler
from tests.support import fixture_mail
from tests.support.images import camera_jpeg, camera_mail
from tests.support.world import local_world

class Context:
    def get_remaining_time_in_millis(self):
        return 120_000

with local_world() as world:
    world.put_mail("incoming/camera.eml", fixture_mail("camera-jpeg-name-param-no-disposition.eml"))
    world.put_mail("incoming/no-code.eml", b"X-SES-Virus-Verdict: PASS\\r\\nFrom: s@plant.example.com\\r\\nSubject: x\\r\\n\\r\\nno code\\r\\n")
    world.put_mail("incoming/snapshot.eml", camera_mail(("cam.jpg", "image/jpeg", camera_jpeg())))
    print(lambda_handler(world.event("incoming/camera.eml", "incoming/no-code.eml", "incoming/snapshot.eml"), Context()))
"""


def documents(sock: socket.socket) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    sock.settimeout(0.5)
    try:
        while True:
            datagram = sock.recv(65535).decode()
            header, _, body = datagram.partition("\n")
            assert json.loads(header)["format"] == "json"
            found.append(json.loads(body))
    except TimeoutError:
        return found


def flatten(entity: dict[str, Any]) -> list[dict[str, Any]]:
    return [entity, *[child for sub in entity.get("subsegments", []) for child in flatten(sub)]]


def test_each_mail_and_every_aws_call_is_traced() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        env = {
            **os.environ,
            "LAMBDA_TASK_ROOT": str(ROOT),
            "AWS_LAMBDA_FUNCTION_NAME": "relay",
            "_X_AMZN_TRACE_ID": f"Root={TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1",
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}",
            "PYTHONPATH": str(ROOT),
        }
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            check=False,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "'batchItemFailures': []" in result.stdout
        entities = [entity for doc in documents(sock) for entity in flatten(doc)]

    assert entities, "no trace data reached the daemon address"
    assert {entity["trace_id"] for entity in entities if "trace_id" in entity} == {TRACE_ID}
    mails = {e["annotations"]["incoming_key"]: e for e in entities if e.get("name") == "relay_mail"}
    assert set(mails) == {"incoming/camera.eml", "incoming/no-code.eml", "incoming/snapshot.eml"}
    camera = mails["incoming/camera.eml"]["annotations"]
    assert camera["outcome"] == "distributed"
    assert camera["message_id"] == "<nvr-0001@cameras.example.com>"
    assert camera["recipients"] == 1
    assert camera["attachments"] == 2
    assert camera["previews"] == 0  # the fixture's JPEGs are byte counters, not pictures
    assert camera["fold"] == "first"  # the first mail of its alarm: relayed, its incident opened
    assert camera["incident"]
    assert mails["incoming/snapshot.eml"]["annotations"]["previews"] == 1
    assert mails["incoming/no-code.eml"]["annotations"]["outcome"] == "fallback"
    assert mails["incoming/no-code.eml"]["annotations"]["reason"] == "no_recipients"

    calls = {(e.get("namespace"), e.get("name"), e.get("aws", {}).get("operation")) for e in entities}
    operations = {operation for namespace, _, operation in calls if namespace == "aws"}
    assert {"GetObject", "PutObject", "SendEmail", "Publish", "GetItem", "TransactWriteItems"} <= operations
    services = {name for namespace, name, _ in calls if namespace == "aws"}
    assert {"s3", "sns"} <= {service.lower() for service in services}
