"""The README's Sandbox section and "Against the sandbox", run as a newcomer runs them.

Every `make sandbox` line of the Sandbox section starts through `make`, as written, and stops on Ctrl-C
(SIGINT to its process group, as a terminal sends it). Two changes keep the test beside any other sandbox
on the machine: each gets its own temporary `--data-dir`, and a line that leaves the ports at their
defaults gets free ones. The second-sandbox line chooses free ports itself: it runs unchanged but for
its directory, while the default ports are held. The sandbox started with the README's `s3cret` line
then receives the Python and openssl examples as written (but for the port and the certificate's
path), and the "Against the sandbox" block runs in bash against it (but for the ports and the data
directory). The swaks example runs in tests/sandbox/test_routes.py; the note about swaks' two forms of
`--attach` is checked here.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.launch import ROOT
from tests.support import tools

pytestmark = pytest.mark.integration

README = (ROOT / "README.md").read_text("utf-8")
VENV = Path(sys.prefix)
DEFAULT_PORTS = {"--smtp-port": 2525, "--aws-port": 4566, "--web-port": 8025, "--download-port": 8480}
START_TIMEOUT = 60
STOP_TIMEOUT = 30
SETTLE_TIMEOUT = 60


def section(heading: str) -> str:
    """The README's text under `heading` up to the next heading of its level or above."""
    level = heading.split(" ", 1)[0]
    body = README.split(f"\n{heading}\n", 1)[1]
    ends = [m.start() for m in re.finditer(rf"^#{{1,{len(level)}}} ", body, re.MULTILINE)]
    return body[: min(ends, default=len(body))]


SANDBOX = section("## Sandbox: the whole pipeline on your machine")  # with its subsections
AGAINST = section("### Against the sandbox")
STATUS = ".venv/bin/python -m sandbox status"  # the README's command for the sandbox's own status


def make_sandbox_lines() -> list[str]:
    """The ARGS of every `make sandbox` the Sandbox section shows ("" for none), in order, once each."""
    found = re.findall(r'make sandbox(?: ARGS="([^"]*)")?', SANDBOX)
    return list(dict.fromkeys(found))


def block(text: str, opening: str) -> str:
    """The fenced block that follows the line `opening`."""
    return text.split(opening, 1)[1].split("```", 1)[0]


@dataclass
class Started:
    data: Path
    log: Path
    state: dict[str, Any]

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")


def make(args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    """`make sandbox ARGS=...` with this interpreter's virtualenv as the Makefile's, in its own group."""
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    command = ["make", f"VENV={VENV}", "-o", f"{VENV}/.installed", "sandbox", f"ARGS={args}"]
    return subprocess.Popen(command, cwd=ROOT, start_new_session=True, **kwargs)


def isolated(args: str, data: Path) -> str:
    """The line's ARGS with its own data directory, and free ports where it leaves them at the default."""
    words = shlex.split(args)
    if "--data-dir" in words:
        words[words.index("--data-dir") + 1] = str(data)
    else:
        words += ["--data-dir", str(data)]
    for option in DEFAULT_PORTS:
        if option not in words:
            words += [option, "0"]
    return shlex.join(words)


@contextmanager
def started(args: str, data: Path) -> Iterator[Started]:
    """The sandbox of `make sandbox ARGS=args` until the block ends; then Ctrl-C, which must stop it."""
    data.mkdir(parents=True, exist_ok=True)
    log = data.parent / f"{data.name}.log"
    with log.open("wb") as output:
        process = make(args, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        state = data / "sandbox.json"
        while "Ctrl-C stops the sandbox." not in log.read_text():  # the banner: it runs
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make sandbox ARGS={args!r} did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield Started(data, log, json.loads(state.read_text()))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    # make reports the interrupt as any Ctrl-C'd target; the sandbox itself stopped cleanly.
    assert log.read_text().rstrip().endswith("stopped"), log.read_text()[-3000:]


@contextmanager
def default_ports_held() -> Iterator[None]:
    """The default ports taken, as by a first sandbox (those another program holds already stay so)."""
    with ExitStack() as stack:
        for port in DEFAULT_PORTS.values():
            listener = socket.socket()
            stack.callback(listener.close)
            try:
                listener.bind(("127.0.0.1", port))
                listener.listen()
            except OSError:
                pass  # taken already: just as good
        yield


def test_the_readme_shows_each_sandbox_line_once_and_the_second_sandbox_chooses_every_port() -> None:
    lines = make_sandbox_lines()
    assert "" in lines
    assert "--help" in lines
    (second,) = [line for line in lines if "--data-dir" in line]
    assert all(f"{option} 0" in second for option in DEFAULT_PORTS)


def test_make_sandbox_help_lists_every_option() -> None:
    help_text = subprocess.run(
        ["make", f"VENV={VENV}", "-o", f"{VENV}/.installed", "sandbox", "ARGS=--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert help_text.returncode == 0, help_text.stderr
    for option in (*DEFAULT_PORTS, "--no-web", "--data-dir", "--param", "--recipients-config"):
        assert option in help_text.stdout


@pytest.mark.parametrize("args", [line for line in make_sandbox_lines() if line not in {"--help"}])
def test_each_make_sandbox_line_starts_quietly_and_stops_on_ctrl_c(args: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    if "--data-dir" in args:  # the second sandbox, beside a first one on the default ports
        with default_ports_held(), started(isolated(args, data), data) as run:
            output = run.output()
    else:
        with started(isolated(args, data), data) as run:
            output = run.output()
    assert "IoT Mail Relay sandbox" in output
    assert "is unreachable" not in output  # flanker's tables are built with the venv
    assert "Traceback" not in output
    warnings = [line for line in output.splitlines() if " WARNING " in line]
    open_relay = "ALLOWED_SENDERS and ALLOWED_RECIPIENTS are both empty"
    assert all(open_relay in line for line in warnings), warnings
    if "AllowedSenders=" in args:
        assert "allowed senders     @plant.example.com (others refused;" in output
        assert not warnings
    else:
        assert "allowed senders     anyone (open: no From is refused;" in output


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    """The README's `s3cret` sandbox: its examples use that password."""
    (args,) = [line for line in make_sandbox_lines() if "--smtp-password s3cret" in line]
    data = tmp_path_factory.mktemp("readme") / "data"
    with started(isolated(args, data), data) as run:
        yield run


def outbox_entry(run: Started, subject: str) -> dict[str, Any]:
    index = run.data / "outbox" / "index.jsonl"
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        entries = [json.loads(line) for line in index.read_text().splitlines()] if index.exists() else []
        found = [entry for entry in entries if entry["subject"] == subject]
        if found:
            return found[0]  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, run.output()[-3000:]
        time.sleep(0.2)


@pytest.fixture(scope="module")
def python_example(sandbox: Started) -> dict[str, Any]:
    """The README's Python example, sent once; the outbox entry of what the relay sent."""
    code = block(SANDBOX, "```python\n")
    port = sandbox.state["smtp"]["port"]
    code = code.replace('("127.0.0.1", 2525)', f'("127.0.0.1", {port})')
    code = code.replace('"sandbox-data/tls/smtp-cert.pem"', repr(str(sandbox.data / "tls" / "smtp-cert.pem")))
    sent = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert sent.returncode == 0, sent.stderr
    return outbox_entry(sandbox, "Pump 3")


def test_the_python_example_sends_a_mail_without_message_id_that_is_distributed(
    sandbox: Started, python_example: dict[str, Any]
) -> None:
    entry = python_example
    assert entry["original_message_id"] == ""
    assert entry["destinations"] == ["alice@example.com"]
    (link,) = entry["links"]
    with urllib.request.urlopen(link, timeout=10) as response:  # noqa: S310 - the sandbox's own endpoint
        assert response.read() == b"t,bar\n1,9.1\n"
    web = sandbox.state["web"]
    with urllib.request.urlopen(web + "api/mails?q=subject:pump", timeout=10) as response:  # noqa: S310
        (mail,) = json.loads(response.read())["mails"]
    assert (mail["state"]["kind"], mail["links"], mail["message_id"]) == ("distributed", 1, "")


def test_the_openssl_transcript_sends_a_mail_and_curl_downloads_its_attachment(
    sandbox: Started, tmp_path: Path
) -> None:
    tools.require("openssl", "curl")
    opening = "openssl s_client -starttls smtp -crlf -quiet -connect 127.0.0.1:2525"
    command = shlex.split(opening.replace(":2525", f":{sandbox.state['smtp']['port']}"))
    transcript = block(SANDBOX, f"{opening}\n```\n```\n")
    client = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert client.stdin is not None
    time.sleep(1)  # typed, not piped at once: each line after the server's answer
    for line in transcript.splitlines():
        client.stdin.write(line + "\n")
        client.stdin.flush()
        time.sleep(0.1)
    answers, _ = client.communicate(timeout=30)
    assert "235 2.7.0 Authentication successful" in answers
    assert "221 Bye" in answers
    (link,) = outbox_entry(sandbox, "Demo from openssl")["links"]
    curl = "curl -L -o demo64.txt '<link>'"
    assert f"`{curl}`" in SANDBOX
    fetched = subprocess.run(
        shlex.split(curl.replace("<link>", link)), cwd=tmp_path, capture_output=True, timeout=30, check=False
    )
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "demo64.txt").read_bytes() == b"content\n"


def test_the_against_the_sandbox_block_runs_as_written(
    sandbox: Started, python_example: dict[str, Any]
) -> None:
    """Against the mail of the Python example, the newest with a link when the block runs."""
    tools.require("jq", "curl")
    script = block(AGAINST, "```sh\n")
    endpoint, web = sandbox.state["endpoint"], sandbox.state["web"].rstrip("/")
    script = script.replace("http://127.0.0.1:4566", endpoint).replace("http://127.0.0.1:8025", web)
    script = script.replace("sandbox-data/", f"{sandbox.data}/")
    assert STATUS in script
    script = script.replace(STATUS, f"{STATUS} --data-dir {shlex.quote(str(sandbox.data))}")
    if VENV != ROOT / ".venv":  # the tests run from another virtualenv than the README's
        script = script.replace(STATUS, STATUS.replace(".venv", str(VENV), 1))
        script = script.replace('"$PWD/.venv/bin', f'"{VENV}/bin')
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    out = ran.stdout
    assert "inbound queue" in out
    # What the paragraph after the block says of relayctl status here: the queues' alarms, as the sandbox
    # evaluates them (tests/sandbox/test_end_to_end.py sees one fire)...
    paragraph = " ".join(AGAINST.split("\n"))
    alarms = re.findall(r"^alarm\s+(\S+)\s+(\S+) ", out, re.MULTILINE)
    assert len(alarms) == 3, out
    assert {state for state, _ in alarms} == {"OK"}
    assert (
        "three alarms that watch the queues, in the state the sandbox's own evaluation gives them (`OK` while it is quiet)"
        in paragraph
    )
    # ...and the rule set the sandbox creates but does not activate: its SMTP door receives the mail.
    assert re.search(r"^active rule set\s+none \(no mail is received\)$", out, re.MULTILINE), out
    assert "`active rule set    none (no mail is received)`" in paragraph
    # The sandbox's own evaluation of the same alarms, by the README's command.
    assert re.search(r"^status of \d+ s ago$", out, re.MULTILINE), out
    assert re.search(r"^  alarm \S+: ok \(", out, re.MULTILINE), out
    assert "is empty: nothing to redrive" in out
    assert re.search(r"^\s+active\s", out, re.MULTILINE)  # links
    assert "1 revoked" in out
    assert re.search(r"^\s+unrevoked\s", out, re.MULTILINE)
    assert "rotated the link keys" in out
    assert re.search(r"^\d+ alarms?: \d+ open \(\d+ flapping\), \d+ muted;", out, re.MULTILINE)
    (link,) = python_example["links"]
    with urllib.request.urlopen(link, timeout=10) as response:  # noqa: S310 - unrevoked: it works again
        assert response.read() == b"t,bar\n1,9.1\n"


def test_python_m_sandbox_status_is_always_the_venvs_python() -> None:
    """A bare `python` may be another version than the venv's 3.12, or missing (Debian has none)."""
    mentions = re.findall(r"(\S*)python -m sandbox status", README)
    assert mentions
    assert {m.lstrip("`") for m in mentions} == {".venv/bin/"}, mentions


def test_the_swaks_note_is_true_of_the_installed_swaks(tmp_path: Path) -> None:
    tools.require("swaks")
    (tmp_path / "pump3.csv").write_bytes(b"t,bar\n1,9.1\n")

    def dumped(*attach: str) -> tuple[int, Any, str]:
        run = subprocess.run(
            ["swaks", "--to", "a@example.com", "--from", "s@example.com", "--server", "127.0.0.1:9", "--dump-mail", *attach],
            cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        message = email.message_from_string(run.stdout, policy=email.policy.default)
        return run.returncode, message, run.stderr

    def attachment(message: Any) -> tuple[str, bytes]:
        (part,) = message.iter_attachments()
        return part.get_filename(), base64.b64decode(part.get_payload())

    code, message, _ = dumped(
        "--attach-type", "text/csv", "--attach-name", "pump3.csv", "--attach", "@pump3.csv"
    )
    assert code == 0
    assert "--attach-type text/csv --attach-name pump3.csv --attach @pump3.csv\n" in SANDBOX
    assert attachment(message) == ("pump3.csv", b"t,bar\n1,9.1\n")  # the README's form: byte for byte
    code, _, errors = dumped("--attach", "@missing.csv")
    assert code != 0
    assert "missing.csv not openable" in errors  # a wrong path stops it
    code, message, errors = dumped("--attach", "pump3.csv")
    assert code == 0
    assert "DEPRECATION" in errors  # the plain form still reads the file, with a warning
    assert attachment(message)[1] == b"t,bar\n1,9.1\n"
    code, message, errors = dumped("--attach", "missing.csv")
    assert code == 0
    assert errors == ""
    assert attachment(message)[1] == b"missing.csv"  # silently: a wrong plain path attaches its text
    version = subprocess.run(["swaks", "--version"], capture_output=True, text=True, check=False).stdout
    if "20201014" in version:  # Debian 12's: the name keeps the @ without --attach-name
        _, message, _ = dumped("--attach", "@pump3.csv")
        assert attachment(message)[0] == "@pump3.csv"
