"""One sandbox per data directory and per port: a second start exits 1 at once with one line saying what is
taken, by whom, and the option to use instead, and leaves the running sandbox alone. Signals stop a
sandbox, starting or running, with its ports and lock released. The outbox survives being deleted."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sandbox.claim import LOCK_FILE, Unavailable, claim
from sandbox.launch import ROOT, DidNotStart, Running, launch
from sandbox.launch import command as launch_command
from sandbox.outbox import Outbox
from tests.support.sandbox import mail, wait_for_outbox

HOST = "127.0.0.1"
PASSWORD = "single-instance"
START_TIMEOUT = 40
REFUSAL_SECONDS = 10  # the claim comes before the heavy imports: well under a second on a quiet machine
STOP_SECONDS = 10
DELIVERY_TIMEOUT = 30

integration = pytest.mark.integration


def command(data: Path, smtp_port: int = 0, aws_port: int = 0) -> list[str]:
    return launch_command(
        data, "--batch-window", "0.2", password=PASSWORD, smtp_port=smtp_port, aws_port=aws_port
    )


def refused(
    data: Path, smtp_port: int = 0, aws_port: int = 0
) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    result = subprocess.run(
        command(data, smtp_port, aws_port), cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    return result, time.monotonic() - began


def answers(port: int) -> bool:
    """Whether an HTTP server answers on the port (the claim listens before moto serves)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/moto-api/", timeout=0.2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def holder(data: Path) -> dict[str, Any]:
    return dict(json.loads((data / LOCK_FILE).read_text("utf-8")))


def assert_released(host: str, ports: list[int], data: Path) -> None:
    """The ports can be listened on and the directory's lock taken: nothing is held any more."""
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            probe.listen()
    with (data / LOCK_FILE).open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)


def delivered_to_outbox(running: Running, message_id: str) -> Path:
    """Send one mail over SMTP and wait for it in the outbox (by its original Message-ID)."""
    recipient = running.state["smtp"]["recipients"][0]
    body = "Level 2 tank full.\nEmail_Rxers_Code:[ops@example.com]:Email_Rxers_Code:\n"
    with running.smtp(timeout=30) as client:
        client.send_message(mail(message_id, body, None, recipient))

    def arrived(entries: list[dict[str, Any]]) -> bool:
        return any(message_id in e["original_message_id"] for e in entries)

    entries = wait_for_outbox(running.data, arrived, DELIVERY_TIMEOUT)
    (entry,) = [e for e in entries if message_id in e["original_message_id"]]
    path = running.data / "outbox" / entry["file"]
    assert path.read_bytes().count(b"Level 2 tank full.") == 1
    return path


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One sandbox on free ports, shared by the tests below."""
    data = tmp_path_factory.mktemp("first")
    with launch(data, "--batch-window", "0.2", password=PASSWORD) as running:
        yield running


@integration
def test_a_second_sandbox_on_the_same_directory_exits_1_and_the_first_keeps_relaying(first: Running) -> None:
    ports = holder(first.data)
    # What the issue did: the same data directory and the same ports as the running one.
    result, seconds = refused(first.data, ports["smtp_port"], ports["aws_port"])
    assert result.returncode == 1, result.stderr
    assert seconds < REFUSAL_SECONDS
    assert result.stderr.splitlines() == [
        f"sandbox: data directory {first.data} is in use by another sandbox (process {first.process.pid},"
        f" SMTP {HOST}:{ports['smtp_port']}, AWS {HOST}:{ports['aws_port']}); give this one its own with"
        " --data-dir DIR, or stop the other one"
    ]
    assert (first.data / "outbox").is_dir()
    assert (first.data / "sandbox.json").exists()
    assert holder(first.data) == ports
    delivered_to_outbox(first, "after-second-start")


@integration
@pytest.mark.parametrize("option", ["--smtp-port", "--aws-port"])
def test_a_port_clash_exits_1_naming_the_port_its_holder_and_the_option(
    first: Running, tmp_path: Path, option: str
) -> None:
    ports = holder(first.data)
    port = ports["smtp_port"] if option == "--smtp-port" else ports["aws_port"]
    data = tmp_path / "second"
    if option == "--smtp-port":
        result, seconds = refused(data, smtp_port=port)
    else:
        result, seconds = refused(data, aws_port=port)
    assert result.returncode == 1, result.stderr
    assert seconds < REFUSAL_SECONDS
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"sandbox: port {port} on {HOST} ({option}) is in use by ")
    assert line.endswith(f"; choose another with {option} PORT, or {option} 0 for a free one")
    if sys.platform == "linux":  # found through /proc
        assert f"by process {first.process.pid} (python" in line
    assert sorted(p.name for p in data.iterdir()) == [LOCK_FILE]  # nothing else touched
    assert (data / LOCK_FILE).read_text() == ""  # and the lock given up


@integration
def test_a_deleted_outbox_is_recreated_for_the_next_mail(first: Running) -> None:
    shutil.rmtree(first.data / "outbox")
    path = delivered_to_outbox(first, "after-outbox-deleted")
    assert path.parent == first.data / "outbox"
    assert "NOT WRITTEN" not in first.output()
    assert "collecting failed" not in first.output()


@integration
def test_sigterm_during_start_up_stops_what_had_started(first: Running, tmp_path: Path) -> None:
    """Next to the running sandbox, as a second one with its own directory and free ports. Its
    recipients document is a named pipe nobody writes: start-up waits there, after moto serves and the
    account is provisioned, until the signal comes."""
    data = tmp_path / "starting"
    document = tmp_path / "recipients.fifo"
    os.mkfifo(document)
    process = subprocess.Popen(
        [*command(data), "--recipients-config", str(document)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (data / LOCK_FILE).exists() or not (data / LOCK_FILE).read_text():  # claimed
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the sandbox never claimed its directory"
            time.sleep(0.01)
        ports = holder(data)
        while not answers(ports["aws_port"]):  # moto serves: provisioning and the rest are still ahead
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "moto never answered"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=STOP_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1, out + err
    assert err.splitlines()[-1] == "sandbox: stopped by SIGTERM while starting"
    assert "IoT Mail Relay sandbox" not in out  # it had not started
    assert not (data / "sandbox.json").exists()
    assert_released(HOST, [ports["smtp_port"], ports["aws_port"]], data)


@integration
def test_a_sandbox_with_its_own_directory_and_free_ports_runs_alongside_and_sigterm_stops_it(
    first: Running, tmp_path: Path
) -> None:
    """The README's second sandbox (`--data-dir ... --smtp-port 0 --aws-port 0`), stopped while idle."""
    data = tmp_path / "alongside"
    # Ready once its banner is out: a signal now stops a running sandbox, not a starting one.
    with launch(data, "--batch-window", "0.2", password=PASSWORD, start_timeout=START_TIMEOUT) as running:
        assert (data / "sandbox.json").read_text()
        ports = holder(data)
        assert ports["pid"] == running.process.pid
        assert {ports["smtp_port"], ports["aws_port"]}.isdisjoint(holder(first.data).values())
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=STOP_SECONDS) == 0
    assert running.output().rstrip().endswith("stopped")
    assert not (data / "sandbox.json").exists()
    assert_released(HOST, [ports["smtp_port"], ports["aws_port"]], data)
    assert (data / LOCK_FILE).read_text() == ""
    assert first.process.poll() is None


@integration
def test_an_invalid_parameter_exits_2_and_gives_up_the_claim(tmp_path: Path) -> None:
    result = subprocess.run(
        [*command(tmp_path), "--param", "NoSuchParameter=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("sandbox: unknown parameter(s) NoSuchParameter;")
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_FILE]
    assert (tmp_path / LOCK_FILE).read_text() == ""


@integration
def test_launch_raises_did_not_start_with_the_output_when_the_sandbox_exits_first(tmp_path: Path) -> None:
    with (
        pytest.raises(
            DidNotStart, match=r"(?s)did not start:\n.*sandbox: unknown parameter\(s\) NoSuchParameter;"
        ),
        launch(tmp_path, "--param", "NoSuchParameter=1", start_timeout=START_TIMEOUT),
    ):
        pytest.fail("launch yielded a sandbox that had exited")
    assert (tmp_path / LOCK_FILE).read_text() == ""


@integration
def test_claim_refuses_a_held_directory_and_a_taken_port_and_keeps_nothing(tmp_path: Path) -> None:
    held = claim(tmp_path, HOST, 0, 0)
    try:
        with pytest.raises(Unavailable, match=rf"\(process {os.getpid()}, SMTP {HOST}:{held.smtp_port},"):
            claim(tmp_path, HOST, 0, 0)
        other = tmp_path / "other"
        with pytest.raises(Unavailable, match=rf"port {held.aws_port} .* by process {os.getpid()} "):
            claim(other, HOST, 0, held.aws_port)
        claim(other, HOST, 0, 0).release()  # the refused claim kept neither the lock nor its SMTP port
    finally:
        held.release()
    held.release()  # twice is fine
    with pytest.raises(Unavailable, match="--smtp-port and --aws-port are both 2525;"):
        claim(tmp_path, HOST, 2525, 2525)
    again = claim(tmp_path, HOST, held.smtp_port, held.aws_port)
    again.release()


def test_a_taken_download_port_is_refused_by_name_and_handed_over_when_free(tmp_path: Path) -> None:
    held = claim(tmp_path / "first", HOST, 0, 0, download_port=0)
    try:
        with pytest.raises(Unavailable, match=rf"port {held.download_port} .*--download-port"):
            claim(tmp_path / "second", HOST, 0, 0, download_port=held.download_port)
        port = held.hand_over_download()
        with socket.create_server((HOST, port)):  # what the download server does next: the port is free
            pass
    finally:
        held.release()


class _NoNotices:
    def receive_message(self, **_: Any) -> dict[str, Any]:
        return {}


def _sent(n: int) -> SimpleNamespace:
    raw = f"From: relay@example.com\r\nTo: ops@example.com\r\nSubject: reading {n}\r\n\r\nbody {n}\r\n"
    return SimpleNamespace(
        id=f"ses-{n}", raw_data=raw, source="relay@example.com", destinations=["ops@example.com"]
    )


@pytest.mark.unit
def test_the_outbox_recreates_its_directory_and_reports_an_unwritable_mail_once(tmp_path: Path) -> None:
    sent: list[SimpleNamespace] = []
    lines: list[str] = []
    outbox = Outbox(tmp_path, _NoNotices(), "notices-url", lambda: sent, lines.append, link_base="http://x/")

    shutil.rmtree(tmp_path / "outbox")
    sent.append(_sent(1))
    assert outbox.collect() == 1
    assert [p.name for p in (tmp_path / "outbox").glob("*.eml")] == [outbox.mails[0].file]

    shutil.rmtree(tmp_path / "outbox")
    (tmp_path / "outbox").write_text("in the way")  # the directory cannot be recreated
    sent.append(_sent(2))
    assert outbox.collect() == 1
    assert outbox.collect() == 0  # not retried: reported once, for that mail
    (failed,) = [line for line in lines if "NOT WRITTEN" in line]
    assert failed.startswith("sent     'reading 2' to ops@example.com (0 links) -> NOT WRITTEN to outbox/ (")
    assert "FileExistsError" in failed

    (tmp_path / "outbox").unlink()
    sent.append(_sent(3))
    assert outbox.collect() == 1  # the collector carries on with the next mail
    assert [json.loads(line)["subject"] for line in (tmp_path / "outbox" / "index.jsonl").open()] == [
        "reading 3"
    ]
