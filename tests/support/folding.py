"""Alarm folding in the tests: alarm mails as SES stores them, and the relay driven with a clock the test
moves (mails and the clock's ticks processed as the handler would)."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app import handler, records
from app.config import load_settings
from app.outcomes import Outcome
from app.ports import Ports
from app.records import MailRef
from app.relay import process
from tests.support.world import SentMail, World

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
RECIPIENTS = ("ops@example.com", "alice@example.com", "bob@example.org")
MINUTE = timedelta(minutes=1)


def alarm(
    subject: str,
    attachment: bytes | None = None,
    sender: str = "plc-7@plant.example.com",
    message_id: str | None = None,
    recipients: tuple[str, ...] = RECIPIENTS,
) -> bytes:
    """A sensor's alarm as SES stores it (verdicts passed), naming three recipients (or `recipients`)."""
    code = f"Email_Rxers_Code:[{','.join(recipients)}]:Email_Rxers_Code:"
    head = (
        "X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\n"
        f"From: {sender}\r\nTo: inbox-7f3k9q@relay.example.com\r\nSubject: {subject}\r\n"
        + (f"Message-ID: <{message_id}>\r\n" if message_id else "")
        + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain\r\n\r\nReading attached. {code}\r\n"
    )
    tail = "--b--\r\n"
    if attachment is not None:
        tail = (
            "--b\r\nContent-Type: text/csv; name=reading.csv\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            f"{base64.b64encode(attachment).decode()}\r\n--b--\r\n"
        )
    return (head + tail).encode()


class Relay:
    """The relay with a clock the test moves: mails and ticks as the handler would process them."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.settings = load_settings()
        self.now = T0
        self.ports: Ports = replace(handler.build_ports(self.settings), clock=lambda: self.now)
        self.count = 0

    def mail(
        self,
        subject: str,
        at: datetime,
        attachment: bytes | None = None,
        key: str = "",
        recipients: tuple[str, ...] = RECIPIENTS,
    ) -> Outcome:
        self.now = at
        if not key:
            self.count += 1
            key = f"incoming/alarm-{self.count}.eml"
            self.world.put_mail(key, alarm(subject, attachment, recipients=recipients))
        return process(MailRef(self.world.incoming, key), self.settings, self.ports)

    def tick(self, at: datetime, alarms: Iterable[str] | None = None) -> int:
        """The ticks the clock would queue at `at` (every due alarm's, or those of `alarms`), processed."""
        self.now = at
        assert self.ports.incidents is not None
        due = [d.fingerprint for d in self.ports.incidents.due(at)] if alarms is None else list(alarms)
        for fingerprint in due:
            record = {"messageId": "t", "body": records.tick_body(fingerprint, 1)}
            (tick,) = records.items(record, self.world.incoming)
            assert process(tick, self.settings, self.ports) is Outcome.TICK
        return len(due)


def per_recipient(sent: list[SentMail]) -> Counter[str]:
    return Counter(address for mail in sent for address in mail.destinations)


def text_of(mail: SentMail) -> str:
    body = mail.message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())
