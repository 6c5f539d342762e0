"""`make bench`'s alarm storm: a sensor stuck tripping, one alarm a minute for a day to 3 recipients, on a
simulated clock, with alarm folding on and with `RepeatFolding=off`: the mails each recipient gets and
what the day costs, from the billable calls counted as they were made.

For each setting the benchmark builds the template's account with that parameter (its own stack, so the
`off` account is what a deploy with `RepeatFolding=off` is: the alarm clock's schedule disabled, the
relay told so by its environment) and runs `python -m bench.storm run SPEC` in a fresh interpreter with
the functions' environment. That process plays the day in simulated time, nothing sleeps:

- every simulated minute a mail arrives: stored in the incoming bucket as SES would store it, then
  `app.handler.lambda_handler` on its SQS record. The relay's `Ports.clock` reads the simulated time
  (the handler builds its ports once per container, in `handler._ports`: the process hands it the
  production ports with that clock);
- every simulated minute, half a minute later, the alarm clock runs (`app.clock.lambda_handler`, whose
  `datetime.now` is made to read the simulated time: the clock has no seam of its own), if the template
  enables its schedule;
- the ticks the clock queues reach the relay at their simulated time (now + the message's delay), each
  in its own invocation, as the event source mapping would deliver them;
- after the day the clock runs on until the alarm has closed itself (IncidentQuietMinutes + 5).

botocore's events on the functions' own clients (`app.aws.clients`) record every call, its parameters
and its outcome; `bench.cost.Usage` turns them into billable quantities after each invocation (outside
its timing), adds what AWS does on the relay's behalf (SES receiving and storing each mail, S3's
notification, the event source mapping's receive and delete, one X-Ray trace per invocation) and the
measured duration of each invocation at the template's memory size. The benchmark's process checks the
work (SES sent what was counted; with folding, every mail was relayed or listed in exactly one digest)
and prices the quantities with `bench/prices.json`. Its moto server snapshots only the items a
transaction names, not the whole table (`item_rollback`): moto's copying made each of the day's
transactions slower than the last, which DynamoDB does not.
"""

from __future__ import annotations

import base64
import heapq
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from bench import cost
from bench.harness import ROOT, Bench, BenchError

HOURS = 24
RECIPIENTS = ("ops@example.com", "alice@example.com", "bob@example.org")
SENDER = "plc-7@plant.example.com"
T0 = datetime(2026, 12, 7, tzinfo=UTC)  # a Monday, 00:00 UTC
MINUTE = timedelta(minutes=1)
CLOCK_OFFSET = timedelta(seconds=30)  # the scheduled rule fires at some second of each minute
TAIL_MINUTES = 5  # the clock runs this long past IncidentQuietMinutes after the storm
SERVICES = ("s3", "sesv2", "sns", "sqs", "dynamodb", "secretsmanager")  # every client app.aws makes
LISTED_SENDS = 50  # the results list when each send went out, up to this many
MAIL_CAP = 12  # the bound: at most this many mails per recipient for a day of storm
_DIGEST = re.compile(r"^(?:Digest|Closed|Recovered), (\d+) repeats?\b")


# -- the sensor ---------------------------------------------------------------------------------------


def reading_csv(number: int) -> bytes:
    """The sensor's last hour of pressure readings, one a minute, as a small CSV (about 1.5 KB)."""
    lines = ["time,bar"] + [f"{m:02d}:00,{8 + (number + m) % 17 / 10:.2f}" for m in range(60)]
    return ("\r\n".join(lines) + "\r\n").encode()


def alarm_mail(number: int, at: datetime) -> bytes:
    """The number-th alarm as SES stores it: verdicts passed, a recipient code for three recipients,
    the reading changing in the subject (the fingerprint masks numbers and times) and a CSV attached."""
    code = f"Email_Rxers_Code:[{','.join(RECIPIENTS)}]:Email_Rxers_Code:"
    pressure = 8 + number % 13 / 10
    subject = f"ALARM: PT-101 discharge pressure {pressure:.1f} bar at {at:%H:%M:%S}"
    attachment = base64.encodebytes(reading_csv(number)).decode().replace("\n", "\r\n")
    return (
        "X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\n"
        f"From: PLC 7 <{SENDER}>\r\nTo: inbox-7f3k9q@relay.example.com\r\nSubject: {subject}\r\n"
        f"Date: {at:%a, %d %b %Y %H:%M:%S} +0000\r\nMessage-ID: <alarm-{number}@plant.example.com>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPT-101 above 8 bar. {code}\r\n"
        '--b\r\nContent-Type: text/csv; name="reading.csv"\r\nContent-Transfer-Encoding: base64\r\n'
        f'Content-Disposition: attachment; filename="reading.csv"\r\n\r\n{attachment}--b--\r\n'
    ).encode()


# -- the measured process -----------------------------------------------------------------------------


class Recorder:
    """botocore event hooks on the functions' clients: every call with its parameters and outcome."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.calls: list[cost.Call] = []
        self.attempts: Counter[str] = Counter()
        self.observers: list[Callable[[cost.Call], None]] = []
        self._lock = threading.Lock()  # S3 uploads run in s3transfer's threads

    def install(self, client: Any) -> None:
        service = client.meta.service_model.service_id.hyphenize()
        events = client.meta.events
        events.register(f"provide-client-params.{service}", self._params)
        events.register(f"before-send.{service}", self._attempt)
        events.register(f"after-call.{service}", self._after_call)

    def take(self) -> list[cost.Call]:
        with self._lock:
            calls, self.calls = self.calls, []
        return calls

    @staticmethod
    def _params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = params

    def _attempt(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self.attempts[event_name.removeprefix("before-send.")] += 1

    def _after_call(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        failed = http_response.status_code >= 300
        call = cost.Call(
            service=model.service_model.service_id.hyphenize(),
            operation=model.name,
            params=context.get("bench_params", {}),
            ok=not failed,
            error=str(parsed.get("Error", {}).get("Code", http_response.status_code)) if failed else "",
            response=parsed,
            at=self.now(),
        )
        with self._lock:
            self.calls.append(call)
        for observe in self.observers:
            observe(call)


@dataclass(order=True)
class Event:
    at: datetime
    order: int  # at the same time: ticks, then mails, then the clock (as the acceptance test orders them)
    kind: str = field(compare=False)
    payload: Any = field(compare=False, default=None)


@dataclass
class Function:
    name: str
    arn: str
    memory_mb: int
    timeout_s: int
    durations: list[float] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {
            "invocations": len(self.durations),
            "memory_mb": self.memory_mb,
            "total_s": sum(self.durations),
            "median_s": statistics.median(self.durations),
            "max_s": max(self.durations),
        }


class Day:
    """The storm in simulated time, in the measured process (the functions' environment is set)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import boto3

        from app import handler
        from app.aws import clients
        from app.config import load_settings

        self.spec = spec
        self.now = T0
        self.ports = replace(handler.build_ports(load_settings()), clock=self.clock)
        self.usage = cost.Usage(
            {name: cost.Schema.from_create(create) for name, create in spec["tables"].items()},
            {"incoming": spec["incoming_bucket"], "attachments": spec["attachments_bucket"]},
        )
        self.recorder = Recorder(self.clock)
        for service in SERVICES:
            self.recorder.install(clients.client(service))
        self.recorder.observers.append(self._queued)
        self.ses = boto3.session.Session().client("s3")  # SES storing the mail: not the function's client
        self.relay = Function(**spec["relay"])
        self.alarm_clock = Function(**spec["clock_function"]) if spec["clock"] else None
        self.kinds: Counter[str] = Counter()
        self.mail_bytes = 0
        self.events: list[Event] = []
        minutes = round(spec["hours"] * 60)
        for number in range(minutes):
            heapq.heappush(self.events, Event(T0 + number * MINUTE, 1, "mail", number))
        if self.alarm_clock is not None:
            for number in range(minutes + spec["quiet_minutes"] + TAIL_MINUTES):
                heapq.heappush(self.events, Event(T0 + number * MINUTE + CLOCK_OFFSET, 2, "clock"))

    def clock(self) -> datetime:
        return self.now

    def run(self) -> dict[str, Any]:
        from app import clock as alarm_clock
        from app import handler

        class SimulatedDatetime(datetime):
            """The alarm clock's `datetime`: `now()` is the simulated time."""

            @classmethod
            def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
                return day.now if tz in (None, UTC) else day.now.astimezone(tz)

        day = self
        started = time.perf_counter()
        with (
            mock.patch.object(handler, "_ports", return_value=self.ports),
            mock.patch.object(alarm_clock, "datetime", SimulatedDatetime),
        ):
            while self.events:
                event = heapq.heappop(self.events)
                self.now = event.at
                self.kinds[event.kind] += 1
                if event.kind == "clock":
                    self._sweep()
                else:
                    self._relay(event)
        return self._figures(time.perf_counter() - started)

    def _sweep(self) -> None:
        from app import clock as alarm_clock
        from localaws.events import scheduled_event

        if self.alarm_clock is None:
            raise RuntimeError("a clock event without the clock's schedule")
        event = scheduled_event(f"{self.alarm_clock.arn}-schedule", now=self.now)
        self._invoke(self.alarm_clock, lambda context: alarm_clock.lambda_handler(event, context))

    def _relay(self, event: Event) -> None:
        from app import handler
        from localaws.events import sqs_event, sqs_record

        if event.kind == "mail":
            key = f"incoming/storm/{event.payload:05d}.eml"
            raw = alarm_mail(event.payload, self.now)
            self.ses.put_object(Bucket=self.spec["incoming_bucket"], Key=key, Body=raw)
            self.usage.mail_received(len(raw))
            self.mail_bytes += len(raw)
            batch = sqs_event(key, bucket=self.spec["incoming_bucket"], first_id=event.payload)
        else:
            batch = {"Records": [sqs_record(f"tick-{self.kinds['tick']}", event.payload)]}
        self.usage.batch_delivered()
        response = self._invoke(self.relay, lambda context: handler.lambda_handler(batch, context))
        if response["batchItemFailures"]:
            raise RuntimeError(f"the relay asked to retry a {event.kind} at {self.now:%H:%M}: {response}")

    def _invoke(self, function: Function, run: Callable[[Any], Any]) -> Any:
        """One invocation, timed; its calls become billable quantities after the timing."""
        from localaws.events import LambdaContext

        context = LambdaContext(function.name, function.arn, function.memory_mb, function.timeout_s)
        begun = time.perf_counter()
        result = run(context)
        elapsed = time.perf_counter() - begun
        function.durations.append(elapsed)
        self.usage.invocation(function.name, function.memory_mb, elapsed)
        for call in self.recorder.take():
            self.usage.call(call)
        return result

    def _queued(self, call: cost.Call) -> None:
        """The clock's ticks reach the relay at their simulated time (the message's delay)."""
        if call.operation == "SendMessageBatch" and call.ok:
            for entry in call.params["Entries"]:
                at = self.now + timedelta(seconds=int(entry.get("DelaySeconds", 0)))
                heapq.heappush(self.events, Event(at, 0, "tick", entry["MessageBody"]))

    def _figures(self, wall_s: float) -> dict[str, Any]:
        functions = {"relay": self.relay, "clock": self.alarm_clock}
        calls = self.usage.calls
        return {
            "hours": self.spec["hours"],
            "folding": self.spec["folding"],
            "mails": self.kinds["mail"],
            "mail_bytes": self.mail_bytes,
            "invocations": {
                "relay mails": self.kinds["mail"],
                "relay ticks": self.kinds["tick"],
                "clock": self.kinds["clock"],
            },
            "simulated_minutes": (self.now - T0) / MINUTE,
            "durations": {role: f.figures() for role, f in functions.items() if f is not None},
            "sends": {
                "count": len(self.usage.sends),
                "recipients": sum(cost.recipients(c) for c in self.usage.sends),
                "bytes": sum(len(cost.raw_mail(c)) for c in self.usage.sends),  # once per send
                # when each went out, in simulated minutes (a storm relayed mail by mail: the first ones)
                "at_minutes": [(c.at - T0) / MINUTE for c in self.usage.sends[:LISTED_SENDS] if c.at],
            },
            "calls": dict(sorted(calls.items())),
            "retried_attempts": sum(self.recorder.attempts.values()) - sum(calls.values()),
            "quantities": self.usage.quantities(),
            "breakdown": self.usage.breakdown(),
            "dynamodb": {
                "units": dict(self.usage.dynamodb.units),
                "failed_writes": self.usage.dynamodb.failed_writes,
            },
            "wall_s": wall_s,
        }


# -- the benchmark's process --------------------------------------------------------------------------


def blueprint_spec(blueprint: Any, hours: float) -> dict[str, Any]:
    """What the measured process needs to know of the stack (the functions' memory, the schedule)."""
    relay = blueprint.function
    schedules = [s for s in blueprint.schedules if s.function_id != relay.logical_id]
    if len(schedules) != 1:
        raise ValueError(f"expected one scheduled function (the alarm clock), found {len(schedules)}")
    clock = blueprint.functions[schedules[0].function_id]
    env = relay.environment

    def function(f: Any) -> dict[str, Any]:
        return {"name": f.name, "arn": f.arn, "memory_mb": f.memory_mb, "timeout_s": f.timeout_seconds}

    return {
        "hours": hours,
        "folding": env["REPEAT_FOLDING"] == "on",
        "clock": schedules[0].enabled,
        "quiet_minutes": int(env["INCIDENT_QUIET_MINUTES"]),
        "relay": function(relay),
        "clock_function": function(clock),
        "incoming_bucket": blueprint.incoming_bucket,
        "attachments_bucket": env["ATTACHMENTS_BUCKET"],
        "tables": {table.name: table.create for table in blueprint.tables},
    }


@contextmanager
def item_rollback() -> Iterator[None]:
    """moto's TransactWriteItems deep-copies each table it writes before every transaction, to roll it
    back if the transaction fails: with a day's rows and decisions in the alarm table each transaction
    took longer than the last (quadratic: 5 minutes for the day, and the relay's measured durations
    growing with moto's copying, which DynamoDB does not do). While inside, it snapshots only the
    items the transaction names and puts those back when it fails; what the relay sees is the same."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    copying = DynamoDBBackend.transact_write_items

    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = []
        for action in transact_items:
            ((_, op),) = action.items()
            table = backend.get_table(op["TableName"])
            names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
            key = op.get("Key") or {name: op["Item"][name] for name in names}
            current = backend.get_item(op["TableName"], key)
            saved.append((op["TableName"], key, current.to_json()["Attributes"] if current else None))
        try:
            with mock.patch.object(Table, "__deepcopy__", lambda table, memo: table, create=True):
                copying(backend, transact_items)
        except Exception:
            for name, key, attributes in reversed(saved):
                if attributes is None:
                    backend.delete_item(name, key)
                else:
                    backend.put_item(name, attributes)
            raise

    with mock.patch.object(DynamoDBBackend, "transact_write_items", transact_write_items):
        yield


def fresh_backends() -> None:
    """Forget every account moto's backends hold in this process (the stacks of one name collide)."""
    from moto.core.base_backend import BackendDict

    BackendDict.reset()


def measure(hours: float = HOURS, prices_path: Path = cost.PRICES) -> dict[str, Any]:
    """Both settings, each in its own account and measured process; checked, then priced."""
    from localaws.account import served
    from localaws.template import load

    prices = cost.load_prices(prices_path)
    settings: dict[str, Any] = {}
    for setting in ("on", "off"):
        overrides = {"RepeatFolding": setting}
        blueprint = load(ROOT / "template.yaml", overrides, stack_name=f"storm-{setting}")
        fresh_backends()
        with served(blueprint) as account, item_rollback():
            aws = Bench(account)
            spec = blueprint_spec(blueprint, hours)
            sent_before = len(account.sent_mail())
            print(f"  alarm storm, folding {setting}: {hours:g} h simulated ...", flush=True)
            result = _child(spec, aws.child_environment())
            sent = account.sent_mail()[sent_before:]
            mails = [(m.destinations, str(m.message["Subject"])) for m in sent]
            result["listed_in_digests"] = check(result, mails)
        result["per_recipient"] = dict(Counter(r for m in sent for r in m.destinations))
        result["cost"] = cost.bill(result["quantities"], prices)
        settings[setting] = result
        print(
            f"  alarm storm, folding {setting}: {result['sends']['count']} sends, "
            f"${result['cost']['total_usd']:.4f}, {result['wall_s']:.0f} s",
            flush=True,
        )
    on, off = settings["on"]["cost"]["total_usd"], settings["off"]["cost"]["total_usd"]
    return {
        "hours": hours,
        "recipients": len(RECIPIENTS),
        "prices": {"file": _shown(prices_path), "date": prices["date"], "region": prices["region"]},
        "settings": settings,
        "cost_ratio_off_to_on": off / on if on else None,
    }


def _shown(path: Path) -> str:
    """The price table's path as the results name it: relative to the repository when inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


def check(result: dict[str, Any], sent: list[tuple[tuple[str, ...], str]]) -> list[int]:
    """The work was done: SES sent what was counted, and every mail reached the recipients once
    (relayed, or listed in exactly one digest). Returns how many repeats each digest listed."""
    counted = result["sends"]["count"]
    if len(sent) != counted:
        raise BenchError(f"SES has {len(sent)} sent mails, the hooks counted {counted} sends")
    per_recipient = Counter(r for destinations, _ in sent for r in destinations)
    if set(per_recipient) != set(RECIPIENTS) or len(set(per_recipient.values())) != 1:
        raise BenchError(f"the recipients did not get the same mails: {dict(per_recipient)}")
    listed = [int(found[1]) for _, subject in sent if (found := _DIGEST.match(subject.strip()))]
    relayed = len(sent) - len(listed)
    if relayed + sum(listed) != result["mails"]:
        raise BenchError(
            f"{result['mails']} mails received but {relayed} relayed and {sum(listed)} listed in digests"
        )
    if not result["folding"] and listed:
        raise BenchError(f"folding is off but {len(listed)} digests were sent")
    if sum(len(d) for d, _ in sent) != result["sends"]["recipients"]:
        raise BenchError("SES's sent mails have other recipients than the hooks counted")
    return listed


def _child(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.storm", "run", json.dumps(spec)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BenchError(f"the storm workload failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- figures ------------------------------------------------------------------------------------------


def mails_per_recipient(entry: dict[str, Any]) -> float:
    counts = entry["per_recipient"].values()
    return statistics.mean(counts) if counts else 0.0


def table(figures: dict[str, Any]) -> list[str]:
    on, off = figures["settings"]["on"], figures["settings"]["off"]
    prices = figures["prices"]
    span = "day" if figures["hours"] == 24 else f"{figures['hours']:g} h"
    lines = [
        "",
        f"alarm storm: one alarm a minute for {figures['hours']:g} h to {figures['recipients']} recipients "
        f"(simulated clock), priced at {prices['region']} prices of {prices['date']} ({prices['file']})",
        f"  {'':<34} {'folding on':>14} {'folding off':>14}",
    ]

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> None:
        lines.append(f"  {label:<34} {cell(on):>14} {cell(off):>14}")

    row("mails per recipient", lambda e: f"{mails_per_recipient(e):g}")
    row("SES sends (SendEmail calls)", lambda e: str(e["sends"]["count"]))
    row("relay invocations (mails + ticks)",
        lambda e: f"{e['invocations']['relay mails']} + {e['invocations']['relay ticks']}")  # fmt: skip
    row("alarm clock invocations", lambda e: str(e["invocations"]["clock"]))
    row("relay median duration", lambda e: _median_ms(e, "relay"))
    row("alarm clock median duration", lambda e: _median_ms(e, "clock"))
    for line in _cost_lines(on, off):
        lines.append(line)
    row(f"cost per {span} (USD)", lambda e: f"${e['cost']['total_usd']:.4f}")
    ratio = figures["cost_ratio_off_to_on"]
    if ratio:
        lines.append(f"  folding off costs {ratio:.1f}x folding on")
    return lines


def _median_ms(entry: dict[str, Any], role: str) -> str:
    figures = entry["durations"].get(role)
    return f"{figures['median_s'] * 1000:.1f} ms" if figures else "-"


def _cost_lines(on: dict[str, Any], off: dict[str, Any]) -> Iterable[str]:
    by_price = {
        setting: {line["price"]: line for line in entry["cost"]["lines"]}
        for setting, entry in (("on", on), ("off", off))
    }
    for name, line in by_price["on"].items():
        other = by_price["off"][name]
        if not line["quantity"] and not other["quantity"]:
            continue
        cells = [f"{_quantity(e['quantity'])} ${e['usd']:.4f}" for e in (line, other)]
        yield f"    {name:<32} {cells[0]:>14} {cells[1]:>14}"


def _quantity(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 0.001 else f"{value:.1e}"


def verdicts(figures: dict[str, Any]) -> list[tuple[str, bool]]:
    """A day of storm reaches each recipient as at most MAIL_CAP mails with folding on."""
    if figures["hours"] != HOURS:
        return []
    most = max(figures["settings"]["on"]["per_recipient"].values())
    return [(f"storm: {most} mails per recipient in a day with folding <= {MAIL_CAP}", most <= MAIL_CAP)]


def main(argv: list[str]) -> int:
    kind, spec = argv[0], json.loads(argv[1])
    if kind != "run":
        raise SystemExit(f"unknown storm workload {kind}")
    print(json.dumps(Day(spec).run()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
