"""S3's 409 ConditionalRequestConflict on a claim, replayed as the race it comes from.

Two deliveries of one mail claim its send at the same moment. S3 accepted A's conditional put and is
still writing it when B's arrives; B gets 409 (not 412, the key is not there yet) and a read right
after still finds nothing. Taking the 409 for "claimed" and then reading would let B take the claim
over and send while A sends too; retrying the conditional put after a pause finds A's claim (412).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.awsrequest import AWSPreparedRequest

from app.aws import clients, markers
from app.handler import lambda_handler
from tests.support.faults import conditional_put, mail, pending_markers, s3_error
from tests.support.world import World

KEY = "incoming/pump-3-alarm.eml"
RECIPIENTS = ("alice@example.com", "bob@example.org")
WAIT = 10  # seconds any step may wait for the other invocation before the test gives up


def _claim(request: AWSPreparedRequest) -> bool:
    return "/markers/" in request.url and conditional_put(request)


def test_a_409_on_the_claim_is_retried_and_the_mail_goes_out_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.put_mail(KEY, mail(RECIPIENTS))
    a_writing, a_may_write, a_claimed, conflicted = (threading.Event() for _ in range(4))

    def before_put(request: AWSPreparedRequest, **_: Any) -> Any:
        if not _claim(request):
            return None
        if threading.current_thread().name == "A":
            a_writing.set()
            assert a_may_write.wait(WAIT), "B never got to its retry or its read"
            # S3 accepted A's claim before B's request: A wins, whatever B wrote in between.
            del request.headers["If-None-Match"]
            return None
        if not conflicted.is_set():  # B meets A's write in progress
            conflicted.set()
            answer = s3_error("ConditionalRequestConflict", 409)(request)
            request.url = "https://fault-injected.invalid/"  # moto leaves it alone
            return answer
        return None

    def after_call(**kwargs: Any) -> None:
        name = threading.current_thread().name
        operation = kwargs["model"].name
        if name == "A" and operation == "PutObject" and a_writing.is_set():
            a_claimed.set()  # the first put of A's after its claim started is the claim
        if name != "A" and operation == "GetObject" and conflicted.is_set():
            a_may_write.set()  # B read the marker after the 409: only now does A's write land

    def pause(seconds: float) -> None:  # B's backoff: A's write lands meanwhile
        a_may_write.set()
        assert a_claimed.wait(WAIT), "A's claim never completed"

    monkeypatch.setattr(markers, "_sleep", pause)
    s3 = clients.client("s3")
    s3.meta.events.register("before-send.s3.PutObject", before_put)
    s3.meta.events.register("after-call.s3", after_call)

    responses: dict[str, Any] = {}
    a = threading.Thread(
        target=lambda: responses.update(A=lambda_handler(world.event(KEY), None)), name="A", daemon=True
    )
    a.start()
    assert a_writing.wait(WAIT)
    responses["B"] = lambda_handler(world.event(KEY), None)
    a.join(WAIT)
    assert not a.is_alive()

    assert conflicted.is_set()
    assert responses["A"] == {"batchItemFailures": []}
    # B found A's claim pending (in flight), so it asks for a retry instead of sending
    assert responses["B"] == {"batchItemFailures": [{"itemIdentifier": "1"}]}
    assert lambda_handler(world.event(KEY), None) == {"batchItemFailures": []}  # B's redelivery: done
    assert [sorted(sent.destinations) for sent in world.sent()] == [sorted(RECIPIENTS)]
    assert world.notices() == []
    assert pending_markers(world) == []
