"""`python -m sandbox` as a subprocess: started on free ports with its own data directory, waited for until
it wrote where everything is (`sandbox.json`), stopped with Ctrl-C (killed if it hangs). What the
latency measurement, the end-to-end tests and scripts use instead of each starting it their own way.
"""

from __future__ import annotations

import json
import secrets
import signal
import smtplib
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START_TIMEOUT = 60.0
READY_LINE = "Ctrl-C stops the sandbox."  # the banner's last line: printed once start-up is over
STOP_TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parent.parent


class DidNotStart(RuntimeError):
    """The sandbox exited or did not get ready in time; the message ends with its output."""


@dataclass
class Running:
    """A started sandbox: its process, what it wrote about itself, its data directory and its output."""

    process: subprocess.Popen[bytes]
    state: dict[str, Any]
    data: Path
    log: Path

    def client(self, service: str) -> Any:
        """A boto3 client of the sandbox's AWS endpoint (moto)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            service,
            endpoint_url=self.state["endpoint"],
            region_name=self.state["region"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
            config=Config(signature_version="s3v4") if service == "s3" else None,
        )

    def smtp(self, timeout: float = 60) -> smtplib.SMTP:
        """A session as a sensor opens one: STARTTLS verified against the certificate the sandbox
        generated, then AUTH with its credentials."""
        smtp = self.state["smtp"]
        context = ssl.create_default_context(cafile=str(self.data / "tls" / "smtp-cert.pem"))
        client = smtplib.SMTP(smtp["host"], smtp["port"], timeout=timeout)
        client.starttls(context=context)
        client.login(smtp["username"], smtp["password"])
        return client

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")


def command(
    data: Path,
    *options: str,
    template: Path = ROOT / "template.yaml",
    password: str | None = None,
    smtp_port: int = 0,
    aws_port: int = 0,
) -> list[str]:
    """The command line: free ports unless given, status lines off, then `options`."""
    return [
        sys.executable,
        "-m",
        "sandbox",
        "--template",
        str(template),
        "--data-dir",
        str(data),
        "--smtp-port",
        str(smtp_port),
        "--aws-port",
        str(aws_port),
        "--download-port",
        "0",
        "--web-port",
        "0",
        # one word with `=`: a generated password may start with "-"; read back from sandbox.json
        f"--smtp-password={password or secrets.token_urlsafe(12)}",
        "--status-interval",
        "0",
        *options,
    ]


@contextmanager
def launch(
    data: Path,
    *options: str,
    template: Path = ROOT / "template.yaml",
    password: str | None = None,
    start_timeout: float = START_TIMEOUT,
) -> Iterator[Running]:
    """A sandbox running until the block ends. Raises DidNotStart when it exits or is not ready in time.
    Ready means its banner is out: from then on a signal stops a running sandbox, not a starting one."""
    data.mkdir(parents=True, exist_ok=True)
    log = data / "sandbox.log"
    argv = command(data, *options, template=template, password=password)
    with log.open("wb") as output:
        process = subprocess.Popen(argv, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        state = data / "sandbox.json"
        deadline = time.monotonic() + start_timeout
        while not state.exists() or READY_LINE not in log.read_text("utf-8", errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise DidNotStart(f"the sandbox did not start:\n{log.read_text('utf-8', errors='replace')}")
            time.sleep(0.1)
        yield Running(process, json.loads(state.read_text("utf-8")), data, log)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """Ctrl-C, as a user stops it; killed when it does not end within `timeout`."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
