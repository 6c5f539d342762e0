"""`python -m sandbox.latency`: how long a mail takes through the sandbox, measured as a sender sees it.

Starts `python -m sandbox` in a subprocess with the project's template (free ports, its own data
directory), then:

- **lone mails**: one mail at a time, each with a 4 KB attachment; the clock starts when the SMTP
  server answers the DATA command with `250` (the moment SES has the mail) and stops when the mail is in
  the outbox's `index.jsonl`. The median of `--lone` mails is reported.
- **a burst**: `--burst` mails with a `--burst-kb` attachment each, sent back to back over one SMTP
  session; the drain rate is mails / (last mail in the outbox - first `250`).

The batching window is the template's (`BatchingWindowSeconds`) unless `--batch-window` overrides it, so
`--batch-window 5` measures the relay as it was before the window became a parameter. The figures depend
on the machine; the README gives them with the machine they were taken on.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sandbox.launch import Running, launch

SENDER = "sensor@plant.example.com"
RECIPIENT_LIST = "Email_Rxers_Code:[ops@example.com]:Email_Rxers_Code:"
POLL_SECONDS = 0.005


@dataclass(frozen=True)
class Figures:
    window_seconds: str
    lone_seconds: list[float]
    burst: int
    burst_kb: int
    burst_send_seconds: float
    burst_drain_seconds: float

    @property
    def lone_median(self) -> float:
        return statistics.median(self.lone_seconds) if self.lone_seconds else float("nan")

    @property
    def burst_rate(self) -> float:
        return self.burst / self.burst_drain_seconds if self.burst_drain_seconds > 0 else float("nan")

    def report(self) -> str:
        lone = ", ".join(f"{s:.2f}" for s in self.lone_seconds)
        lines = [f"batching window: {self.window_seconds}"]
        if self.lone_seconds:
            lines.append(
                f"lone mail, SMTP 250 -> outbox: median {self.lone_median:.2f} s"
                f" over {len(self.lone_seconds)} mails ({lone})"
            )
        if self.burst:
            lines.append(
                f"burst of {self.burst} mails ({self.burst_kb} KB attachment each): sent in"
                f" {self.burst_send_seconds:.1f} s, drained in {self.burst_drain_seconds:.1f} s"
                f" = {self.burst_rate:.1f} mails/s"
            )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_seconds": self.window_seconds,
            "lone_seconds": self.lone_seconds,
            "lone_median_seconds": self.lone_median if self.lone_seconds else None,
            "burst": self.burst,
            "burst_kb": self.burst_kb,
            "burst_send_seconds": self.burst_send_seconds,
            "burst_drain_seconds": self.burst_drain_seconds,
            "burst_mails_per_second": self.burst_rate if self.burst else None,
        }


class Probe:
    """Watches a running sandbox's outbox: when each mail arrived, by its original Message-ID."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.state = running.state
        self._index = running.data / "outbox" / "index.jsonl"
        self._offset = 0
        self.arrived: dict[str, float] = {}  # original Message-ID -> when it was seen in the outbox

    def poll_outbox(self) -> None:
        """Read the outbox index from where the last call stopped; stamp each new mail with now."""
        if not self._index.exists():
            return
        with self._index.open("rb") as index:
            index.seek(self._offset)
            chunk = index.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        now = time.monotonic()
        for line in complete.splitlines():
            entry = json.loads(line)
            self.arrived.setdefault(entry["original_message_id"].strip("<>"), now)

    def wait_for(self, message_ids: Sequence[str], timeout: float) -> float:
        """When the last of these mails reached the outbox (monotonic clock)."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll_outbox()
            if all(m in self.arrived for m in message_ids):
                return max(self.arrived[m] for m in message_ids)
            if time.monotonic() > deadline or self.running.process.poll() is not None:
                missing = [m for m in message_ids if m not in self.arrived]
                raise TimeoutError(f"{len(missing)} of {len(message_ids)} mails never reached the outbox")
            time.sleep(POLL_SECONDS)


def message(message_id: str, recipient: str, attachment: bytes) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = SENDER
    mail["To"] = recipient
    mail["Subject"] = f"Latency probe {message_id}"
    mail["Message-ID"] = f"<{message_id}>"
    mail.set_content(f"Tank 4 level alarm.\n{RECIPIENT_LIST}\n")
    mail.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="reading.bin")
    return mail


def measure(
    lone: int, burst: int, burst_kb: int, template: Path, batch_window: float | None, pause: float = 0.5
) -> Figures:
    extra = [] if batch_window is None else ["--batch-window", f"{batch_window:g}"]
    with (
        tempfile.TemporaryDirectory(prefix="relay-latency-") as directory,
        launch(Path(directory), *extra, template=template) as started,
    ):
        running = Probe(started)
        recipient = running.state["smtp"]["recipients"][0]
        window = str(running.state["event_source"]["window_seconds"]) + " s (template)"
        if batch_window is not None:
            window = f"{batch_window:g} s (--batch-window)"
        run = os.urandom(4).hex()
        lone_seconds: list[float] = []
        with started.smtp() as client:
            # One mail to warm up: the handler's first import (flanker's tables, boto3) is not latency.
            warm = f"warm-{run}@plant.example.com"
            client.send_message(message(warm, recipient, os.urandom(4096)))
            running.wait_for([warm], 60)
            for i in range(lone):
                time.sleep(pause)  # the pipeline is idle again: a lone mail, not a tail of the last one
                message_id = f"lone-{run}-{i}@plant.example.com"
                client.send_message(message(message_id, recipient, os.urandom(4096)))
                accepted = time.monotonic()  # send_message returns on the DATA command's 250
                lone_seconds.append(running.wait_for([message_id], 60) - accepted)
        send_seconds = drain_seconds = 0.0
        if burst:
            mails = [
                message(f"burst-{run}-{i}@plant.example.com", recipient, os.urandom(burst_kb * 1024))
                for i in range(burst)
            ]
            with started.smtp() as client:
                accepted_at = []
                for mail in mails:
                    client.send_message(mail)
                    accepted_at.append(time.monotonic())
            first, sent = accepted_at[0], accepted_at[-1]
            last = running.wait_for([str(m["Message-ID"]).strip("<>") for m in mails], 600)
            send_seconds, drain_seconds = sent - first, last - first
        return Figures(window, lone_seconds, burst, burst_kb, send_seconds, drain_seconds)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox.latency", description=__doc__.split("\n\n")[0])
    p.add_argument("--lone", type=int, default=9, help="lone mails to time (default 9)")
    p.add_argument("--burst", type=int, default=200, help="mails in the burst; 0: none (default 200)")
    p.add_argument("--burst-kb", type=int, default=100, help="attachment size in the burst (default 100)")
    p.add_argument("--batch-window", type=float, help="override the template's batching window")
    p.add_argument("--template", type=Path, default=Path("template.yaml"))
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    figures = measure(args.lone, args.burst, args.burst_kb, args.template, args.batch_window)
    print(json.dumps(figures.as_dict(), indent=2) if args.json else figures.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
