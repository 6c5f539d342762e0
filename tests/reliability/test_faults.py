"""Every AWS call the function makes fails once, for a whole delivery, then always: no mail is lost or
sent twice, and nothing left behind blocks the retry that comes after the fault cleared.

Three fault lifetimes per call:
- transient: the first attempt fails; botocore's standard retry mode absorbs it within the invocation.
- one delivery: every attempt of the first delivery fails (botocore gives up after max_attempts); the
  record is reported failed and its redelivery completes.
- always: the record is redelivered until maxReceiveCount and lands in the DLQ; once the fault clears,
  a redrive from the DLQ completes, and no recipient gets the mail twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest
from boto3.s3.transfer import TransferConfig

from app.aws import clients, storage
from app.mail.attachments import mail_digest
from tests.support.faults import (
    Answer,
    Faults,
    Predicate,
    Run,
    conditional_put,
    connection_error,
    deliver,
    fate,
    mail,
    max_receives,
    open_multipart_uploads,
    pending_markers,
    s3_error,
    sesv2_error,
    sns_error,
    url_has,
)
from tests.support.faults import (
    body_has as request_body_has,
)
from tests.support.mails import attachment_links
from tests.support.world import World, local_world

KEY = "incoming/pump-3-alarm.eml"
RECIPIENTS = ("alice@example.com", "bob@example.org")
ATTACHMENTS = (("first.csv", b"t;bar\n1;7.9\n"), ("second.csv", b"t;bar\n2;8.1\n"))
ATTEMPTS = 1 + int(str(clients.RETRIES["max_attempts"]))  # botocore's `max_attempts` counts the retries only
Lifetime = Literal["transient", "one-delivery", "always"]
LIFETIMES: tuple[Lifetime, ...] = ("transient", "one-delivery", "always")

not_conditional: Predicate = lambda request: not conditional_put(request)  # noqa: E731


@dataclass(frozen=True)
class Call:
    """One AWS call of the function, how it fails, and where the mail ends when nothing fails."""

    service: str
    operation: str
    answer: Answer
    when: Predicate
    healthy: str = "distributed"
    recipients: tuple[str, ...] = RECIPIENTS


CALLS = {
    "s3-get-mail-500": Call("s3", "GetObject", s3_error("InternalError", 500), url_has("/incoming/")),
    "s3-get-mail-connection": Call("s3", "GetObject", connection_error, url_has("/incoming/")),
    "s3-put-first-attachment": Call("s3", "PutObject", s3_error("SlowDown", 503), url_has("/2/first.csv")),
    "s3-put-second-attachment": Call(
        "s3", "PutObject", s3_error("InternalError", 500), url_has("/3/second.csv")
    ),
    "s3-put-manifest": Call("s3", "PutObject", s3_error("InternalError", 500), url_has("/manifest.json")),
    "ses-throttling": Call("sesv2", "SendEmail", sesv2_error("Throttling", 400), lambda request: True),
    "ses-too-many-requests": Call(
        "sesv2", "SendEmail", sesv2_error("TooManyRequestsException", 429), lambda request: True
    ),
    "ses-5xx": Call("sesv2", "SendEmail", sesv2_error("InternalFailure", 500), lambda request: True),
    "sns-publish-throttling": Call(
        "sns", "Publish", sns_error("Throttling", 400), lambda request: True, "fallback", ()
    ),
    "sns-publish-5xx": Call(
        "sns", "Publish", sns_error("InternalError", 500), lambda request: True, "fallback", ()
    ),
    "marker-claim-for-send": Call(
        "s3",
        "PutObject",
        s3_error("InternalError", 500),
        lambda r: "/markers/" in r.url and conditional_put(r),
    ),
    # 409: a concurrent write to the marker was in progress; the claim retries it, never takes it as claimed
    "marker-claim-409": Call(
        "s3",
        "PutObject",
        s3_error("ConditionalRequestConflict", 409),
        lambda r: "/markers/" in r.url and conditional_put(r),
    ),
    "marker-claim-for-notice": Call(
        "s3",
        "PutObject",
        s3_error("InternalError", 500),
        lambda r: "/markers/" in r.url and conditional_put(r),
        "fallback",
        (),
    ),
}
# Marking a claim done after SES accepted the chunk (its own test: the mail is handled all the same).
DONE_MARKER = Call(
    "s3", "PutObject", s3_error("InternalError", 500), lambda r: "/markers/" in r.url and not_conditional(r)
)


def run_with_fault(world: World, faults: Faults, call: Call, lifetime: Lifetime, keys: list[str]) -> Run:
    fault = faults.inject(
        call.service,
        call.operation,
        call.answer,
        call.when,
        times=1 if lifetime == "transient" else None,
    )

    def heal_after_first(delivery: int) -> None:
        if delivery == 2 and lifetime == "one-delivery":
            faults.heal()

    run = deliver(world, keys, before_delivery=heal_after_first)
    if lifetime == "transient":
        assert fault.hits == 1
        assert faults.calls[call.operation] >= 2, "botocore did not retry the failed call"
    elif lifetime == "one-delivery":
        assert fault.hits == ATTEMPTS, "botocore should try max_attempts times before giving up"
    return run


def check_after_redrive(world: World, faults: Faults, call: Call) -> None:
    """The fault cleared: a redrive from the DLQ completes; no claim or upload was left to block it."""
    assert pending_markers(world) == []
    assert open_multipart_uploads(world) == []
    faults.heal()
    redrive = deliver(world, [KEY])
    assert redrive.receives[KEY] == 1
    assert fate(world, redrive, KEY, call.recipients) == call.healthy


@pytest.mark.parametrize("lifetime", LIFETIMES)
@pytest.mark.parametrize("name", list(CALLS))
def test_a_failing_call_loses_and_repeats_nothing(
    world: World, faults: Faults, name: str, lifetime: Lifetime
) -> None:
    call = CALLS[name]
    world.put_mail(KEY, mail(call.recipients, ATTACHMENTS))
    run = run_with_fault(world, faults, call, lifetime, [KEY])

    ended = fate(world, run, KEY, call.recipients)
    if lifetime == "always":
        assert ended == "dlq"
        assert run.receives[KEY] == max_receives(world)
        check_after_redrive(world, faults, call)
    else:
        assert ended == call.healthy
        assert run.receives[KEY] == (1 if lifetime == "transient" else 2)
        assert pending_markers(world) == []
    if call.healthy == "distributed":
        stored = world.keys(world.attachments, f"attachments/{mail_digest(KEY)}/")
        assert len(stored) == len(ATTACHMENTS) + 1, "a retry must overwrite its uploads, not add to them"


@pytest.mark.parametrize("lifetime", LIFETIMES)
def test_a_failing_done_marker_after_a_send_neither_dead_letters_nor_repeats_it(
    world: World, faults: Faults, lifetime: Lifetime
) -> None:
    """SES accepted the chunk but marking it done fails: the mail is handled, so the record must not be
    retried (a retry could only dead-letter it or, after the lease, send it again)."""
    world.put_mail(KEY, mail(RECIPIENTS, ATTACHMENTS))
    run = run_with_fault(world, faults, DONE_MARKER, lifetime, [KEY])
    assert run.receives[KEY] == 1
    assert fate(world, run, KEY, RECIPIENTS) == "distributed"
    if lifetime == "transient":
        assert pending_markers(world) == []
    else:  # the claim stays pending: a duplicate event within the lease waits, it does not resend
        assert pending_markers(world) == [f"markers/{mail_digest(KEY)}/send-1-of-1"]


def test_message_rejected_becomes_one_rejected_notice_not_a_dlq_loop(world: World, faults: Faults) -> None:
    world.put_mail(KEY, mail(RECIPIENTS, ATTACHMENTS))
    faults.inject("sesv2", "SendEmail", sesv2_error("MessageRejected", 400))
    run = deliver(world, [KEY])
    assert run.receives[KEY] == 1
    assert faults.calls["SendEmail"] == 1, "a permanent rejection must not be retried"
    assert fate(world, run, KEY, RECIPIENTS) == "fallback"
    [notice] = world.notices()
    assert notice["reason"] == "rejected"
    assert "MessageRejected" in notice["detail"]
    assert pending_markers(world) == []
    again = deliver(world, [KEY])  # a duplicate S3 event for the same mail: neither resent nor re-notified
    assert again.receives[KEY] == 1
    assert faults.calls["SendEmail"] == 1
    assert len(world.notices()) == 1


DENIED = (
    "User: arn:aws:sts::123456789012:assumed-role/iot-mail-relay-RelayRole-1AB/iot-mail-relay-relay is not "
    "authorized to perform: ses:SendRawEmail on resource: "
    "arn:aws:ses:us-east-1:123456789012:configuration-set/tracking"
)


@pytest.mark.parametrize(
    ("code", "status"), [("AccessDeniedException", 403), ("AccessDenied", 403), ("NotAuthorized", 400)]
)
def test_an_authorisation_error_becomes_a_rejected_notice_naming_the_permission(
    world: World, faults: Faults, code: str, status: int
) -> None:
    """A role without the sending identity's (or configuration set's) permission: no retry can help."""
    world.put_mail(KEY, mail(RECIPIENTS, ATTACHMENTS))
    faults.inject("sesv2", "SendEmail", sesv2_error(code, status, DENIED))
    run = deliver(world, [KEY])
    assert run.receives[KEY] == 1
    assert faults.calls["SendEmail"] == 1, "an authorisation error must not be retried"
    assert fate(world, run, KEY, RECIPIENTS) == "fallback"
    [notice] = world.notices()
    assert notice["reason"] == "rejected"
    assert code in notice["detail"]
    assert (
        "lacks ses:SendRawEmail on arn:aws:ses:us-east-1:123456789012:configuration-set/tracking"
        in (notice["detail"])
    )
    assert "assumed-role" not in notice["detail"]
    assert pending_markers(world) == []


CHUNKED = tuple(f"operator-{n:03d}@example.com" for n in range(1, 121))  # 3 sends: 50, 50, 20


@pytest.mark.parametrize("lifetime", LIFETIMES)
def test_the_second_of_three_chunks_failing_resends_only_what_is_missing(lifetime: Lifetime) -> None:
    call = Call(
        "sesv2",
        "SendEmail",
        sesv2_error("InternalFailure", 500),
        request_body_has(CHUNKED[50]),
        recipients=CHUNKED,
    )
    with local_world({"MaxRecipients": "150"}) as world:
        faults = Faults()
        world.put_mail(KEY, mail(CHUNKED))
        run = run_with_fault(world, faults, call, lifetime, [KEY])
        ended = fate(world, run, KEY, CHUNKED)
        if lifetime == "always":
            assert ended == "dlq"
            assert sorted(a for sent in world.sent() for a in sent.destinations) == sorted(CHUNKED[:50])
            check_after_redrive(world, faults, call)
        else:
            assert ended == "distributed"
        assert len(world.sent()) == 3, "each chunk is sent exactly once"


BIG = bytes(range(256)) * (11 * 1024 * 4)  # 11 MiB: three parts of 5 MiB


@pytest.mark.parametrize("lifetime", LIFETIMES)
def test_an_upload_failing_mid_multipart_is_aborted_and_redone(
    world: World, faults: Faults, monkeypatch: pytest.MonkeyPatch, lifetime: Lifetime
) -> None:
    mib = 1024 * 1024
    monkeypatch.setattr(
        storage,
        "TRANSFER",
        TransferConfig(multipart_threshold=5 * mib, multipart_chunksize=5 * mib, max_concurrency=2),
    )
    call = Call("s3", "UploadPart", s3_error("InternalError", 500), url_has("partNumber=2"))
    world.put_mail(KEY, mail(RECIPIENTS, [("trend.bin", BIG)]))
    faults.watch("s3", "CreateMultipartUpload")
    run = run_with_fault(world, faults, call, lifetime, [KEY])
    assert faults.calls["CreateMultipartUpload"] >= 1, "the attachment was not sent as a multipart upload"
    ended = fate(world, run, KEY, RECIPIENTS)
    if lifetime == "always":
        assert ended == "dlq"
        check_after_redrive(world, faults, call)
    else:
        assert ended == "distributed"
    assert open_multipart_uploads(world) == []
    [link] = attachment_links(world.sent()[0].message.get_content())
    assert world.download(link) == BIG
