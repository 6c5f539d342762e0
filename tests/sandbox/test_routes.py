"""A camera that can only set a recipient address, end to end: swaks sends a JPEG with no text to a
per-device address, and the group its route names receives the mail with a working link."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.launch import ROOT, Running, launch
from tests.support import tools

pytestmark = pytest.mark.integration

CAMERA = "cam-lobby-8f2k@relay.example.com"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(range(256)) * 8 + b"\xff\xd9"
PASSWORD = "routes-password"
DOCUMENT = {
    "groups": {"lobby-security": ["guard-desk@example.com", "night-lead@example.org"]},
    "routes": {CAMERA: ["lobby-security"]},
}


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tools.require("swaks")  # both tests send with it
    data = tmp_path_factory.mktemp("routes")
    document = data.parent / "recipients.json"
    document.write_text(json.dumps(DOCUMENT))
    extra = ("--param", f"AdditionalRecipientEmails={CAMERA}", "--recipients-config", str(document))
    with launch(data, "--batch-window", "0", *extra, password=PASSWORD) as running:
        yield running


def sent_to(running: Running, address: str) -> dict[str, Any]:
    """The outbox entry of the mail sent to `address`, once the sandbox has written it."""
    index = running.data / "outbox" / "index.jsonl"
    deadline = time.monotonic() + 30
    while True:
        entries = [json.loads(line) for line in index.read_text().splitlines()] if index.exists() else []
        found = [entry for entry in entries if address in entry["destinations"]]
        if found:
            return found[0]  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, running.output()[-3000:]
        time.sleep(0.2)


def readme_swaks_command() -> list[str]:
    """The sandbox's swaks example, exactly as the README shows it."""
    readme = (ROOT / "README.md").read_text("utf-8")
    block = (
        readme.split("**swaks** (`apt-get install swaks`):", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    )
    return shlex.split(block.replace("\\\n", " "))


def test_the_readme_s_swaks_command_sends_its_attachment(routed: Running, tmp_path: Path) -> None:
    command = readme_swaks_command()
    smtp = routed.state["smtp"]
    command[command.index("--server") + 1] = f"{smtp['host']}:{smtp['port']}"
    command[command.index("--auth-password") + 1] = PASSWORD
    (tmp_path / "pump3.csv").write_bytes(b"t,bar\n1,9.1\n")
    sent = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "DEPRECATION" not in sent.stderr  # the README's --attach @file is the form swaks asks for
    (link,) = sent_to(routed, "alice@example.com")["links"]
    with urllib.request.urlopen(link, timeout=10) as response:  # noqa: S310 - the sandbox's own endpoint
        assert response.read() == b"t,bar\n1,9.1\n"


def test_a_camera_mail_without_text_reaches_its_route_s_group(routed: Running, tmp_path: Path) -> None:
    assert "recipient groups    lobby-security (2); 1 routes" in routed.output()
    assert CAMERA in routed.state["smtp"]["recipients"]
    snapshot = tmp_path / "snap.jpg"
    snapshot.write_bytes(JPEG)
    smtp = routed.state["smtp"]
    sent = subprocess.run(
        ["swaks", "--server", f"{smtp['host']}:{smtp['port']}", "--tls", "--auth", "LOGIN",
         "--auth-user", smtp["username"], "--auth-password", PASSWORD,
         "--from", "cam@cameras.example.com", "--to", CAMERA, "--header", "Subject: Motion lobby",
         "--body", "@/dev/null", "--attach-type", "image/jpeg", "--attach-name", "snap.jpg", "--attach", str(snapshot)],
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    entry = sent_to(routed, "guard-desk@example.com")
    assert sorted(entry["destinations"]) == ["guard-desk@example.com", "night-lead@example.org"]
    (link,) = entry["links"]
    with urllib.request.urlopen(link, timeout=10) as response:  # noqa: S310 - the sandbox's own endpoint
        assert response.read() == JPEG
