"""Starts and stops the pieces in order: the template's account (moto's server, `localaws`), the
functions' environment, the outbox, the poller, the SMTP front door, the status reports, and the web view."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localaws.account import Account, served
from localaws.blueprint import Blueprint
from localaws.events import LambdaContext
from localaws.server import DUMMY_KEY
from localaws.template import load
from sandbox import smtp, status, xray
from sandbox.alarmstate import AlarmMirror
from sandbox.claim import Claim, claim, unavailable_port
from sandbox.download import DownloadServer
from sandbox.journal import Journal
from sandbox.metrics import EmfCapture
from sandbox.outbox import Outbox, ses_sent_messages
from sandbox.poller import Handler, Poller
from sandbox.schedule import Scheduler

log = logging.getLogger("sandbox")

STATE_FILE = "sandbox.json"
STATUS_FILE = "status.json"
STATUS_REFRESH_SECONDS = 2.0
NOTICES_QUEUE = "sandbox-fallback-notices"  # the sandbox's own window on the fallback topic


@dataclass
class Options:
    template: Path = Path("template.yaml")
    data_dir: Path = Path("sandbox-data")
    host: str = "127.0.0.1"
    smtp_port: int = 2525
    aws_port: int = 4566
    credentials: smtp.Credentials | None = None
    params: dict[str, str] = field(default_factory=dict)
    stack_name: str = "sandbox"
    visibility_timeout: int | None = None
    batch_window: float | None = None
    status_interval: float = 30.0
    authenticated_domains: tuple[str, ...] = smtp.DEFAULT_AUTHENTICATED_DOMAINS
    recipients_config: Path | None = None  # a groups and routes document to load at start
    download_port: int = 8480  # the download function's "function URL"; 0 picks a free port
    web_port: int | None = None  # the web view's; None: no view (0: a free port)


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Sandbox:
    def __init__(
        self, options: Options, echo: Callable[[str], None] = print, claimed: Claim | None = None
    ) -> None:
        """`claimed`: the data directory and ports, when the caller has claimed them already."""
        self.options = options
        self.echo = echo
        self.download_port = options.download_port or free_port(options.host)
        url_host = "127.0.0.1" if options.host in {"0.0.0.0", ""} else options.host  # noqa: S104
        self.blueprint: Blueprint = load(
            options.template,
            options.params,
            stack_name=options.stack_name,
            function_url=lambda _function: f"http://{url_host}:{self.download_port}/",
        )
        self._download: DownloadServer | None = None
        self._download_handler: Any = None
        self.credentials = options.credentials or smtp.Credentials.generate()
        self.endpoint = ""
        self.smtp_port = 0
        self.accepted: list[smtp.Accepted] = []
        self.groups: dict[str, int] = {}  # loaded from --recipients-config: name -> members
        self.routes = 0
        self._claim = claimed
        self._aws: contextlib.ExitStack | None = None
        self.account: Account | None = None
        self._smtp: Any = None
        self._handler: Handler | None = None
        self._stop_status = threading.Event()
        self._status_thread: threading.Thread | None = None
        self.poller: Poller | None = None
        self.scheduler: Scheduler | None = None
        self._handlers: dict[str, Any] = {}
        self.outbox: Outbox | None = None
        self.notices_queue_url = ""
        self.metrics = EmfCapture()  # the function's EMF metrics, read from its log records
        self.xray: xray.Daemon | None = None
        self.journal: Journal | None = None
        self._web: Any = None
        self._traced: Handler | None = None
        self._alarm_mirror: AlarmMirror | None = None  # moto's alarms set to the sandbox's evaluation
        self.web_url = ""

    # -- clients -----------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        if self.account is None:
            raise RuntimeError("the sandbox is not started")
        return self.account.client(service)

    def queue_url(self, logical_id: str) -> str:
        if self.account is None:
            raise RuntimeError("the sandbox is not started")
        return self.account.queue_url(logical_id)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Claim the data directory and the ports, then start the pieces. Raises `claim.Unavailable` when
        another sandbox or program has one of them (nothing is touched then); on any failure, or an
        exception from a signal handler, what had started is stopped again before the error propagates."""
        o = self.options
        if self._claim is None:
            self._claim = claim(o.data_dir, o.host, o.smtp_port, o.aws_port, o.web_port)
        try:
            self._start(self._claim)
        except BaseException:
            self.stop()
            raise

    def _start(self, claimed: Claim) -> None:
        o = self.options
        data = o.data_dir
        for sub in ("outbox", "notices"):
            shutil.rmtree(data / sub, ignore_errors=True)  # a new moto account: last run's output is stale
        logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's own deprecation chatter
        self._aws = contextlib.ExitStack()
        self.account = self._aws.enter_context(
            served(self.blueprint, o.host, claimed.aws_port, claimed.aws_fd(), o.visibility_timeout)
        )
        self.endpoint = f"http://{o.host}:{claimed.aws_port}"
        self.notices_queue_url = self._watch_fallback_topic()
        self._function_environment()
        self._load_recipients_config()
        self._start_observers()

        self.outbox = Outbox(
            data,
            self.client("sqs"),
            self.notices_queue_url,
            lambda: ses_sent_messages(self.blueprint.account_id, self.blueprint.region),
            self.echo,
            link_base=self.blueprint.download_url or self.endpoint,
        )
        self.outbox.start()
        self.metrics.attach()
        source = self.blueprint.event_source
        function = self.blueprint.function
        self.poller = Poller(
            sqs=self.client("sqs"),
            queue_url=self.queue_url(self.blueprint.inbound_queue.logical_id),
            queue_arn=source.queue_arn,
            region=self.blueprint.region,
            handler=self._traced_handler,
            context=lambda: LambdaContext(
                function.name, function.arn, function.memory_mb, function.timeout_seconds
            ),
            batch_size=source.batch_size,
            window_seconds=source.window_seconds if o.batch_window is None else o.batch_window,
            report_failures=source.report_batch_item_failures,
        )
        self.poller.start()
        self.scheduler = Scheduler(self.blueprint, self._function_handler)
        self.scheduler.start()
        if self.blueprint.download is not None:
            if self._claim is not None:
                self._claim.hand_over_download()  # the port it held; the server binds it now
            self._download = DownloadServer(o.host, self.download_port, self.download_handler)
            self._download.start()

        s3 = self.client("s3")
        bucket = self.blueprint.incoming_bucket

        def store(key: str, raw: bytes) -> None:
            s3.put_object(Bucket=bucket, Key=key, Body=raw)

        handler = smtp.ReceiptRuleHandler(
            self.blueprint.recipients,
            store,
            self.blueprint.incoming_prefix,
            self._accepted,
            authenticated_domains=o.authenticated_domains,
        )
        tls = smtp.tls_context(data / "tls")
        self.smtp_port = claimed.smtp_port
        self._smtp = smtp.controller(handler, self.credentials, tls, o.host, self.smtp_port)
        claimed.hand_over_smtp()
        try:
            self._smtp.start()
        except OSError as e:  # another program took the port in the instant since the claim closed it
            raise unavailable_port(o.host, self.smtp_port, "--smtp-port", e) from e
        self._start_web(claimed)
        self._write_state()
        created = {alarm.name for alarm in self.blueprint.alarms if alarm.metric}  # as localaws creates them
        self._alarm_mirror = AlarmMirror(self.client("cloudwatch"), created)
        self._status_thread = threading.Thread(target=self._report_status, name="sandbox-status", daemon=True)
        self._status_thread.start()

    def stop(self) -> None:
        """Reverse order: no new mail, finish the batch in hand, collect the last output, stop moto, give
        up the ports and the directory. Also after a failed or interrupted start, and more than once;
        a piece that fails to stop is logged and does not keep the others running."""
        self._stop_status.set()
        pieces = (
            "_web",
            "_smtp",
            "scheduler",
            "poller",
            "_status_thread",
            "outbox",
            "_aws",
            "xray",
            "journal",
        )
        for piece in pieces:
            running = getattr(self, piece)
            setattr(self, piece, None)  # stopped once, even if stopping is interrupted
            if running is None:
                continue
            try:
                if isinstance(running, threading.Thread):
                    running.join(5)
                elif isinstance(running, contextlib.ExitStack):
                    running.close()
                else:
                    running.stop()
            except Exception:
                log.exception("stopping %s failed", piece.lstrip("_"))
        self.metrics.detach()
        if self._claim is not None and not self._claim.released:
            for name in (STATE_FILE, STATUS_FILE):  # ours only while the claim holds
                (self.options.data_dir / name).unlink(missing_ok=True)
            self._claim.release()

    # -- pieces ------------------------------------------------------------------------------------
    def _function_environment(self) -> None:
        """The functions' environment as Lambda would set it (one process runs them all, so the template
        must give them the same value for a shared name), before a handler is first imported."""
        if self.account is None:
            raise RuntimeError("the sandbox is not started")
        stray = [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_")]  # would bypass moto
        for name in [*stray, "AWS_PROFILE"]:
            os.environ.pop(name, None)
        os.environ.update(self.account.environment())

    def _watch_fallback_topic(self) -> str:
        """A queue subscribed to the fallback topic: the outbox reads the notices from it."""
        sqs, sns = self.client("sqs"), self.client("sns")
        url = str(sqs.create_queue(QueueName=NOTICES_QUEUE)["QueueUrl"])
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        topic = self.blueprint.function.environment["FALLBACK_TOPIC_ARN"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
                }
            ],
        }
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        return url

    def _load_recipients_config(self) -> None:
        """`--recipients-config FILE`: validated as the function would, then put where it reads it."""
        path = self.options.recipients_config
        if path is None:
            return
        from app.routing import document

        data = path.read_bytes()
        try:
            directory = document.parse(data)
        except document.DocumentError as e:
            raise ValueError(f"--recipients-config {path}: {e}") from None
        uri = self.blueprint.function.environment.get("RECIPIENTS_CONFIG", "")
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        self.client("s3").put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/json")
        self.groups = {name: len(members) for name, members in directory.groups.items()}
        self.routes = len(directory.routes)

    # -- the web view and what it shows (sandbox/web, sandbox/xray.py, sandbox/journal.py) --------------
    def _start_observers(self) -> None:
        """The X-Ray daemon's listener and the function's log lines, before the handler is imported."""
        self.xray = xray.Daemon()
        self.xray.start()
        xray.configure(self.xray.address)
        self.journal = Journal()
        self.journal.attach()

    def _traced_handler(self) -> Handler:
        if self._traced is None:
            self._traced = xray.traced(self.handler(), self.blueprint.function.name)
        return self._traced

    def _start_web(self, claimed: Claim) -> None:
        if claimed.web is None:
            return
        from app.config import DownloadSettings
        from sandbox.web import data, server
        from sandbox.web.linkstate import LinkJudge

        b = self.blueprint
        dlq = b.dead_letter_queue
        download = b.download
        config_uri = b.function.environment.get("RECIPIENTS_CONFIG", "")
        sources = data.Sources(
            s3=self.client("s3"),
            sqs=self.client("sqs"),
            bucket=b.incoming_bucket,
            prefix=b.incoming_prefix,
            data_dir=self.options.data_dir,
            # where attachment links point: the download function's URL (S3 itself without one)
            endpoint=b.download_url or self.endpoint,
            account_id=b.account_id,
            region=b.region,
            inbound_queue=b.inbound_queue.name,
            inbound_url=self.queue_url(b.inbound_queue.logical_id),
            dead_letter_queue=dlq.name if dlq else None,
            dead_letter_url=self.queue_url(dlq.logical_id) if dlq else None,
            status=self.status,
            daemon=self.xray,
            journal=self.journal,
            outbox=self.outbox,
            links=LinkJudge(b.download_url, DownloadSettings.from_environ(download.environment))
            if download and b.download_url
            else None,
            recipients_document=config_uri.removeprefix("s3://").partition("/")[2],
        )
        self._web = server.WebView(
            claimed.hand_over_web(), self.options.host, sources, lambda: server.redrive(sources)
        )
        self._web.start()
        self.web_url = self._web.url

    def handler(self) -> Handler:
        """The relay's handler (the image's command), imported on first use, after the environment is
        in place (the settings are read once)."""
        if self._handler is None:
            if self.account is None:
                raise RuntimeError("the sandbox is not started")
            self._handler = self.account.handler(self.blueprint.event_source.function_id)
        return self._handler

    def _function_handler(self, function_id: str) -> Any:
        """A scheduled function's handler, imported on first use."""
        if function_id not in self._handlers:
            if self.account is None:
                raise RuntimeError("the sandbox is not started")
            self._handlers[function_id] = self.account.handler(function_id)
        return self._handlers[function_id]

    def download_handler(self) -> Any:
        """The handler behind the function URL (the template's image command), imported on first use."""
        if self._download_handler is None:
            if self.account is None or not self.blueprint.endpoints:
                raise RuntimeError("the template has no function URL")
            self._download_handler = self.account.handler(self.blueprint.endpoints[0].function_id)
        return self._download_handler

    def _accepted(self, accepted: smtp.Accepted) -> None:
        self.accepted.append(accepted)
        self.echo(
            f"received {accepted.mail_from or '<>'} -> {accepted.key} ({accepted.size} bytes,"
            f" virus {accepted.virus_verdict})"
        )

    def status(self) -> status.Status:
        if self.poller is None:
            raise RuntimeError("the sandbox is not started")
        return status.snapshot(self.blueprint, self.poller.stats, self.metrics)

    def _report_status(self) -> None:
        """status.json every two seconds, and moto's alarms set to its evaluation (`sandbox.alarmstate`); a
        status line every interval when something changed."""
        interval = self.options.status_interval
        last_line, last_echo = "", 0.0
        while not self._stop_status.wait(STATUS_REFRESH_SECONDS):
            try:
                current = self.status()
            except Exception:
                log.exception("status: could not read the queues")
                continue
            (self.options.data_dir / STATUS_FILE).write_text(current.to_json(), "utf-8")
            try:
                if self._alarm_mirror is not None and not self._stop_status.is_set():  # moto may be stopping
                    self._alarm_mirror.update(current.alarms)
            except Exception:
                log.exception("status: could not set the alarms' states in moto")
            line = current.line()
            if interval > 0 and current.time - last_echo >= interval and line != last_line:
                self.echo(line)
                last_line, last_echo = line, current.time

    def _write_state(self) -> None:
        """Where everything is, for tests, scripts and `python -m sandbox status`."""
        b = self.blueprint
        state = {
            "endpoint": self.endpoint,
            "region": b.region,
            "account_id": b.account_id,
            "smtp": {
                "host": self.options.host,
                "port": self.smtp_port,
                "username": self.credentials.username,
                "password": self.credentials.password,
                "recipients": list(b.recipients),
            },
            "environment": b.function.environment,
            "queues": {q.logical_id: self.queue_url(q.logical_id) for q in b.queues},
            "inbound_queue_url": self.queue_url(b.inbound_queue.logical_id),
            "dead_letter_queue_url": self.queue_url(b.dead_letter_queue.logical_id)
            if b.dead_letter_queue
            else None,
            "buckets": {bucket.logical_id: bucket.name for bucket in b.buckets},
            "topics": {topic.logical_id: topic.arn for topic in b.topics},
            "event_source": b.event_source.__dict__,
            "not_emulated": b.not_emulated,
            "tables": {t.logical_id: t.name for t in b.tables},
            "download": {
                "url": b.download_url,
                "function": b.download.name,
                "link_key_secret_arn": b.download.environment.get("LINK_KEY_SECRET_ARN"),
            }
            if b.download
            else None,
            "web": self.web_url or None,
        }
        path = self.options.data_dir / STATE_FILE
        path.touch(mode=0o600)
        path.write_text(json.dumps(state, indent=2), "utf-8")

    def _groups_text(self) -> str:
        if self.options.recipients_config is None:
            return "none loaded (--recipients-config FILE)"
        listed = ", ".join(f"{name} ({size})" for name, size in self.groups.items()) or "no groups"
        return f"{listed}; {self.routes} routes, from {self.options.recipients_config}"

    def banner(self) -> str:
        b = self.blueprint
        c = self.credentials
        recipient = b.recipients[0]
        dlq = b.dead_letter_queue
        environment = b.function.environment
        lines = [
            f"IoT Mail Relay sandbox (stack {b.stack_name!r} from {self.options.template})",
            f"  AWS endpoint (moto) {self.endpoint}  region {b.region}  keys {DUMMY_KEY}/{DUMMY_KEY}",
            f"  SMTP                {self.options.host}:{self.smtp_port}  STARTTLS + AUTH LOGIN/PLAIN",
            f"                      user {c.username}  password {c.password}",
            f"  receipt rule        {', '.join(b.recipients)} -> s3://{b.incoming_bucket}/{b.incoming_prefix}",
            f"  recipient groups    {self._groups_text()}",
            f"  inbound queue       {b.inbound_queue.name} (batch {b.event_source.batch_size},"
            f" window {self.poller.window_seconds if self.poller else b.event_source.window_seconds} s,"
            f" max receives {b.inbound_queue.max_receive_count})",
            f"  dead-letter queue   {dlq.name if dlq else '-'}",
            f"  sender              {b.function.environment.get('SENDER_EMAIL')}",
            f"  allowed senders     {senders_text(environment)}",
            f"  allowed recipients  {recipients_text(environment)}",
            f"  SES authenticates   {', '.join(self.options.authenticated_domains) or '-'}"
            " (From domains that get aligned dkim/spf/dmarc=pass)",
            f"  download links      {b.download_url or '- (S3 pre-signed)'}",
            f"  alarm folding       {folding_text(environment, b)}",
            f"  outbox              {self.options.data_dir / 'outbox'}",
            f"  notices             {self.options.data_dir / 'notices'}",
            *_wrapped("  not emulated        ", list(b.not_emulated)),
            *(
                [f"  web view            {self.web_url}  (the mails, what became of each, alarms, traces)"]
                if self.web_url
                else []
            ),
            "",
            "Try:",
            f"  swaks --server {self.options.host}:{self.smtp_port} --tls --auth LOGIN"
            f" --auth-user {c.username} --auth-password '{c.password}' \\",
            f"    --from sensor@plant.example.com --to {recipient} \\",
            "    --body 'Email_Rxers_Code:[you@example.com]:Email_Rxers_Code:'"
            " --attach-name README.md --attach @README.md",
            "",
            "Ctrl-C stops the sandbox.",
        ]
        return "\n".join(lines)


def folding_text(environment: dict[str, str], blueprint: Blueprint) -> str:
    """Whether repeats fold, and by what numbers (REPEAT_FOLDING and its settings, the clock's rate)."""
    if environment.get("REPEAT_FOLDING", "off") != "on":
        return "off: every mail is relayed on its own (--param RepeatFolding=on)"
    rates = [s.expression for s in blueprint.schedules if s.enabled]
    return (
        f"on: first digest after {environment.get('DIGEST_AFTER_MINUTES')} min, quiet close after"
        f" {environment.get('INCIDENT_QUIET_MINUTES')} min; clock {', '.join(rates) or 'not scheduled'}"
        f" (table {environment.get('INCIDENTS_TABLE')})"
    )


def senders_text(environment: dict[str, str]) -> str:
    """Who the function refuses as a sender, in the banner's words (ALLOWED_SENDERS, SENDER_AUTH)."""
    allowed = environment.get("ALLOWED_SENDERS", "")
    if not allowed:
        return "anyone (open: no From is refused; SENDER_AUTH applies only to a list)"
    if (environment.get("SENDER_AUTH") or "required") == "off":
        return f"{allowed} (others refused; the From alone decides: SENDER_AUTH off)"
    return f"{allowed} (others refused; these only when SES authenticates their domain: SENDER_AUTH required)"


def recipients_text(environment: dict[str, str]) -> str:
    allowed = environment.get("ALLOWED_RECIPIENTS", "")
    if not allowed:
        return "anyone (open)"
    return f"{allowed} (others left out and named in a notice)"


def _wrapped(label: str, items: list[str], width: int = 110) -> list[str]:
    """A banner entry listing `items`, wrapped between items under its label."""
    lines, line = [], ""
    for item in items or ["-"]:
        if line and len(label) + len(line) + len(item) + 2 > width:
            lines.append(line + ",")
            line = ""
        line = f"{line}, {item}" if line else item
    return [label + text if n == 0 else " " * len(label) + text for n, text in enumerate([*lines, line])]
