"""What left the pipeline: every mail SES sent as an `.eml` file, every fallback notice as JSON.

moto keeps sent mail in its SES backend; the server runs in this process, so the backend is read
directly (moto's documented way to inspect sent mail). Notices arrive on a queue subscribed to the
fallback topic, exactly as an SQS subscriber in AWS would receive them.

`outbox/index.jsonl` has a line per sent mail: the file, SES's message id (the relay notes it in the
mail's send marker, which is how the web view tells whose mail it was), recipients, subject, the original
Message-ID and the relay's attachment links. A URL the sender wrote in the body is not a link of the
relay's: only URLs under the download base count, here and in the web view alike.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from app.links import MUTE_PATH

log = logging.getLogger("sandbox.outbox")

_URL = re.compile(r"https?://[^\s<>\"')\]]+")


@dataclass(frozen=True)
class SentMail:
    file: str
    ses_message_id: str
    source: str
    destinations: list[str]
    subject: str
    original_message_id: str
    links: list[str]


def links_in(message: EmailMessage) -> list[str]:
    """The distinct URLs in the text and HTML parts, in order."""
    found: list[str] = []
    for part in message.walk():
        if part.get_content_maintype() != "text" or part.get_content_disposition() == "attachment":
            continue
        try:
            text = part.get_content()
        except (LookupError, ValueError, AttributeError):  # unknown charset or no payload: no links
            continue
        for match in _URL.findall(text):
            url = match.replace("&amp;", "&")
            if url not in found:
                found.append(url)
    return found


def relay_links(urls: list[str], base: str) -> list[str]:
    """The relay's own attachment links among `urls`: those under `base`, the download function's URL (or
    the S3 endpoint, for a template without one), but for the links that mute an alarm, which the same
    URL serves (`app.links.MUTE_PATH`)."""
    prefix = base.rstrip("/") + "/"
    mute = base.rstrip("/") + MUTE_PATH
    return [url for url in urls if url.startswith(prefix) and not url.startswith(mute)]


def ses_sent_messages(account_id: str, region: str) -> list[Any]:
    from moto.ses.models import ses_backends

    return list(ses_backends[account_id][region].sent_messages)


class Outbox:
    def __init__(
        self,
        directory: Path,
        sqs: Any,
        notices_queue_url: str,
        sent_messages: Callable[[], list[Any]],
        echo: Callable[[str], None] = print,
        *,
        link_base: str,
    ) -> None:
        """`link_base`: where the relay's attachment links point (see `relay_links`)."""
        self.mail_dir = directory / "outbox"
        self.notice_dir = directory / "notices"
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        self.notice_dir.mkdir(parents=True, exist_ok=True)
        self.sqs = sqs
        self.notices_queue_url = notices_queue_url
        self.sent_messages = sent_messages
        self.echo = echo
        self.link_base = link_base
        self.mails: list[SentMail] = []
        self.notices: dict[str, dict[str, Any]] = {}  # file name -> notice record
        self._seen = 0
        self._notice_count = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sandbox-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        self.collect()  # what arrived while stopping

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.collect():
                    self._stop.wait(0.2)
            except Exception:
                log.exception("outbox: collecting failed")
                self._stop.wait(1)

    def collect(self) -> int:
        with self._lock:
            return self._collect_mail() + self._collect_notices()

    def _collect_mail(self) -> int:
        sent = self.sent_messages()
        new = sent[self._seen :]
        for raw in new:
            self._seen += 1
            data = raw.raw_data.encode("utf-8") if isinstance(raw.raw_data, str) else raw.raw_data
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{self._seen:05d}.eml"
            message = email.message_from_bytes(data, _class=EmailMessage, policy=email.policy.default)
            entry = SentMail(
                file=name,
                ses_message_id=str(raw.id),
                source=str(raw.source),
                destinations=[str(d) for d in raw.destinations],
                subject=str(message.get("Subject", "")),
                original_message_id=str(message.get("X-Original-Message-ID", "")),
                links=relay_links(links_in(message), self.link_base),
            )
            self.mails.append(entry)
            index_line = (json.dumps(entry.__dict__) + "\n").encode("utf-8")
            failure = _write(self.mail_dir, name, data) or _write(
                self.mail_dir, "index.jsonl", index_line, append=True
            )
            self.echo(
                f"sent     {entry.subject!r} to {', '.join(entry.destinations)}"
                f" ({len(entry.links)} link{'s' if len(entry.links) != 1 else ''}) -> "
                + (f"outbox/{name}" if failure is None else f"NOT WRITTEN to outbox/ ({failure})")
            )
            for url in entry.links:
                self.echo(f"         {url}")
        return len(new)

    def _collect_notices(self) -> int:
        response = self.sqs.receive_message(
            QueueUrl=self.notices_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        messages = response.get("Messages", [])
        for message in messages:
            envelope = json.loads(message["Body"])
            try:
                notice = json.loads(envelope.get("Message", ""))
            except ValueError:
                notice = {"raw": envelope.get("Message")}
            record = {
                "subject": envelope.get("Subject"),
                "timestamp": envelope.get("Timestamp"),
                "topic_arn": envelope.get("TopicArn"),
                "notice": notice,
            }
            self._notice_count += 1
            reason = notice.get("reason", "notice")
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{self._notice_count:05d}-{reason}.json"
            self.notices[name] = record
            text = json.dumps(record, indent=2, ensure_ascii=False)
            failure = _write(self.notice_dir, name, text.encode("utf-8"))
            self.echo(
                f"notice   {notice.get('reason')}: {record['subject']!r} ({notice.get('detail', '')}) -> "
                + (f"notices/{name}" if failure is None else f"NOT WRITTEN to notices/ ({failure})")
            )
            # Deleted even when not written: a redelivered notice would only fail (and be reported) again.
            self.sqs.delete_message(QueueUrl=self.notices_queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def forget(self, mail_files: set[str], notice_files: set[str]) -> None:
        """Remove these sent mails and notices (the web view's delete): their files, and the mails' lines
        in `index.jsonl`, which is rewritten under the collector's lock so that no new line is lost."""
        if any(Path(name).name != name for name in mail_files | notice_files):
            raise ValueError("file names only, not paths")
        with self._lock:
            self.mails = [mail for mail in self.mails if mail.file not in mail_files]
            for name in notice_files:
                self.notices.pop(name, None)
                (self.notice_dir / name).unlink(missing_ok=True)
            for name in mail_files:
                (self.mail_dir / name).unlink(missing_ok=True)
            index = self.mail_dir / "index.jsonl"
            if mail_files and index.exists():
                lines = index.read_text("utf-8").splitlines(keepends=True)
                kept = [
                    line for line in lines if line.strip() and json.loads(line).get("file") not in mail_files
                ]
                rewritten = index.with_name("index.jsonl.new")
                rewritten.write_text("".join(kept), "utf-8")
                rewritten.replace(index)


def _write(directory: Path, name: str, data: bytes, append: bool = False) -> str | None:
    """Write (or append to) one file, recreating the directory if it vanished (someone cleaned up under a
    running sandbox). Returns the error's text when it cannot, for the caller to report once, with the
    mail or notice it concerns, instead of failing the collector."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / name).open("ab" if append else "wb") as file:
            file.write(data)
    except OSError as e:
        return f"{name}: {type(e).__name__}: {e.strerror or e}"
    return None
