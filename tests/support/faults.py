"""Fault injection at the boto3 layer, an event source mapping in miniature, and the conservation law.

Faults hook botocore's `before-send` event of the function's own clients: a fault answers in place of
moto with an error response (or raises a connection error) and moto never carries the request out, so
botocore's retry mode sees exactly what it would see from AWS and retries what it would retry. `deliver` plays the SQS event source mapping:
records reported in `batchItemFailures` come back until maxReceiveCount, then go to the DLQ.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import EndpointConnectionError

from app.aws import clients
from app.handler import lambda_handler
from tests.support.world import World

Predicate = Callable[[AWSPreparedRequest], bool]
Answer = Callable[[AWSPreparedRequest], AWSResponse]


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterable[bytes]:
        yield self._data


def s3_error(code: str, status: int) -> Answer:
    """A REST-XML error as S3 returns it."""
    body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
    return lambda request: AWSResponse(request.url, status, {}, _Body(body))


def sesv2_error(code: str, status: int, message: str = "injected") -> Answer:
    """A REST-JSON error as SES v2 returns it (the code travels in x-amzn-ErrorType)."""
    body = json.dumps({"message": message}).encode()
    return lambda request: AWSResponse(request.url, status, {"x-amzn-ErrorType": code}, _Body(body))


def dynamodb_error(code: str, status: int = 400) -> Answer:
    """A JSON-protocol error as DynamoDB returns it (the code travels in `__type`)."""
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected"}).encode()
    return lambda request: AWSResponse(request.url, status, {}, _Body(body))


def dynamodb_cancelled(*reasons: str) -> Answer:
    """A TransactWriteItems cancelled as DynamoDB cancels it: one reason per action, in order, `None`
    for the actions that were fine (DynamoDB API Reference, TransactionCanceledException)."""
    body = json.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons "
            f"[{', '.join(reasons)}]",
            "CancellationReasons": [{"Code": reason} for reason in reasons],
        }
    ).encode()
    return lambda request: AWSResponse(request.url, 400, {}, _Body(body))


def sns_error(code: str, status: int) -> Answer:
    """A query-protocol error as SNS returns it."""
    body = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{code}</Code><Message>injected</Message></Error><RequestId>1</RequestId></ErrorResponse>"
    ).encode()
    return lambda request: AWSResponse(request.url, status, {}, _Body(body))


def connection_error(request: AWSPreparedRequest) -> AWSResponse:
    raise EndpointConnectionError(endpoint_url=request.url)


def url_has(*fragments: str) -> Predicate:
    return lambda request: all(fragment in request.url for fragment in fragments)


def body_has(fragment: str) -> Predicate:
    def predicate(request: AWSPreparedRequest) -> bool:
        body = request.body
        data = body if isinstance(body, bytes) else str(body or "").encode()
        return fragment.encode() in data

    return predicate


def conditional_put(request: AWSPreparedRequest) -> bool:
    return "If-None-Match" in request.headers


@dataclass
class Fault:
    service: str
    operation: str
    answer: Answer
    when: Predicate
    times: int | None  # None: every matching attempt until healed
    hits: int = 0


@dataclass
class Faults:
    """Failures injected into the function's clients; `calls` counts every attempt per operation."""

    active: list[Fault] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    _hooked: set[tuple[str, str]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # multipart parts go up in threads

    def inject(
        self,
        service: str,
        operation: str,
        answer: Answer,
        when: Predicate = lambda request: True,
        times: int | None = None,
    ) -> Fault:
        fault = Fault(service, operation, answer, when, times)
        self.active.append(fault)
        self.watch(service, operation)
        return fault

    def watch(self, service: str, operation: str) -> None:
        """Count attempts of an operation (injecting a fault watches it too)."""
        if (service, operation) in self._hooked:
            return
        self._hooked.add((service, operation))
        clients.client(service).meta.events.register(
            f"before-send.{service}.{operation}", self._hook(service, operation)
        )

    def heal(self) -> None:
        self.active.clear()

    def _hook(self, service: str, operation: str) -> Callable[..., AWSResponse | None]:
        def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
            with self._lock:
                self.calls[operation] += 1
                fault = next(
                    (
                        f
                        for f in self.active
                        if (f.service, f.operation) == (service, operation)
                        and (f.times is None or f.hits < f.times)
                        and f.when(request)
                    ),
                    None,
                )
                if fault is None:
                    return None  # moto answers
                fault.hits += 1
            answer = fault.answer(request)
            # Every before-send handler runs; moto's (registered first, called after this one) must not
            # carry out the request that "failed": pointed elsewhere, it is left alone by moto.
            request.url = "https://fault-injected.invalid/"
            return answer

        return before_send


@dataclass
class Run:
    """What the event source mapping saw: receives per incoming key and the keys it dead-lettered."""

    receives: Counter[str]
    dlq: list[str]


def max_receives(world: World) -> int:
    """The inbound queue's maxReceiveCount, from the template's redrive policy."""
    count = world.blueprint.inbound_queue.max_receive_count
    assert count is not None, "the template's inbound queue has no redrive policy"
    return count


def deliver(
    world: World,
    keys: Iterable[str],
    context: Any = None,
    before_delivery: Callable[[int], None] | None = None,
    max_receive_count: int | None = None,
) -> Run:
    """Deliver one record per key, redeliver what failed, dead-letter after max_receive_count receives
    (the template's, unless given)."""
    limit = max_receive_count or max_receives(world)
    by_id = {str(number): key for number, key in enumerate(keys, start=1)}
    receives: Counter[str] = Counter()
    dlq: list[str] = []
    pending = list(by_id)
    delivery = 0
    while pending:
        delivery += 1
        if before_delivery is not None:
            before_delivery(delivery)
        records = []
        for message_id in pending:
            receives[by_id[message_id]] += 1
            [record] = world.event(by_id[message_id], first_id=int(message_id))["Records"]
            record["attributes"]["ApproximateReceiveCount"] = str(receives[by_id[message_id]])
            records.append(record)
        response = lambda_handler({"Records": records}, context)
        failed = [item["itemIdentifier"] for item in response["batchItemFailures"]]
        assert set(failed) <= set(pending), f"unknown ids reported failed: {failed}"
        pending = []
        for message_id in failed:
            if receives[by_id[message_id]] >= limit:
                dlq.append(by_id[message_id])
            else:
                pending.append(message_id)
    return Run(receives=receives, dlq=dlq)


def fate(world: World, run: Run, key: str, recipients: Iterable[str]) -> str:
    """Where one mail ended, after asserting the conservation law for it.

    Exactly one of: `distributed` (every recipient got it exactly once, no notice), `fallback`
    (one notice, nothing sent) or `dlq` (dead-lettered, no notice); never a recipient twice. The world
    must hold this one mail's sends only; `recipients` is empty for a mail that should become a notice.
    """
    received = Counter(address for sent in world.sent() for address in sent.destinations)
    duplicates = {address: n for address, n in received.items() if n > 1}
    assert not duplicates, f"recipients got the mail more than once: {duplicates}"
    notices = [notice for notice in world.notices() if notice["key"] == key]
    assert len(notices) <= 1, f"more than one notice: {notices}"
    ends = {
        "distributed": set(received) == set(recipients) and not notices and key not in run.dlq,
        "fallback": bool(notices) and not received and key not in run.dlq,
        # a dead-lettered mail may have reached the recipients of its first chunks, never all of them
        "dlq": key in run.dlq and not notices and (not recipients or set(received) != set(recipients)),
    }
    reached = [name for name, true in ends.items() if true]
    assert len(reached) == 1, f"{key} ended in {reached or 'no state'}: sent {dict(received)}, {notices}"
    return reached[0]


def pending_markers(world: World) -> list[str]:
    """Claims left `pending`: each would block (InFlight) or, after the lease, repeat its step."""
    left = []
    for key in world.keys(world.incoming, "markers/"):
        document = json.loads(world.s3.get_object(Bucket=world.incoming, Key=key)["Body"].read())
        if document.get("state") != "done":
            left.append(key)
    return left


def open_multipart_uploads(world: World) -> list[str]:
    response = world.s3.list_multipart_uploads(Bucket=world.attachments)
    return [upload["Key"] for upload in response.get("Uploads", [])]


def mail(
    recipients: Iterable[str],
    attachments: Iterable[tuple[str, bytes]] = (),
    subject: str = "Pump 3 pressure alarm",
) -> bytes:
    """A sensor mail: a text part carrying the recipient code, then base64 attachments.

    Part indices (and so attachment keys): 0 the multipart root, 1 the text, 2.. the attachments.
    """
    code = f"Email_Rxers_Code:[{','.join(recipients)}]:Email_Rxers_Code:" if recipients else ""
    lines = [
        "X-SES-Spam-Verdict: PASS",
        "X-SES-Virus-Verdict: PASS",
        "From: plc-7@plant.example.com",
        "To: inbox-7f3k9q@relay.example.com",
        f"Subject: {subject}",
        "Message-ID: <fault-1@plant.example.com>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b1"',
        "",
        "--b1",
        "Content-Type: text/plain; charset=utf-8",
        "",
        f"Pressure 7.9 bar. {code}",
    ]
    for name, data in attachments:
        lines += [
            "--b1",
            f'Content-Type: application/octet-stream; name="{name}"',
            "Content-Transfer-Encoding: base64",
            f'Content-Disposition: attachment; filename="{name}"',
            "",
            base64.encodebytes(data).decode("ascii"),
        ]
    lines.append("--b1--")
    return "\r\n".join(lines).encode()
