"""One mail -> one outcome: distributed, a fallback notice, or retry.

The path: read the raw mail, parse, screen (verdicts, sender, recipients), offload the attachments and
sign their links, rewrite, then send in chunks of 50 under idempotency markers. The decision needs no
AWS and lives in `app.screening`; everything that does goes through the ports (`app.ports`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from app import folding, metrics, previews, records, tracing
from app.alarms.timeline import Arrival, Attachment, Decision
from app.aws.mailer import chunks
from app.aws.markers import marker_key
from app.config import Settings
from app.errors import RetryableError, SendRejected
from app.mail import attachments, decode, rewrite
from app.mail.parse import Mail, MalformedMail, TooManyParts, parse
from app.outcomes import Notice, Outcome, Reason
from app.ports import Ports
from app.screening import Distribution, Refusal, screen

log = logging.getLogger("iot_mail_relay")

MB = 1024 * 1024
MAX_RAW_BYTES = 48 * MB  # SES receives at most 40 MB; anything larger is not read at all
SES_MAX_MESSAGE_BYTES = 40 * MB
_LEFT_OUT = {  # the notice's detail when a distributed mail left some listed recipients out
    Reason.INVALID_RECIPIENTS: "sent to the valid recipients only; these were rejected",
    Reason.RECIPIENT_NOT_ALLOWED: "sent to the recipients inside ALLOWED_RECIPIENTS only; these were refused",
}


@dataclass
class Handled:
    """What became of one mail: its outcome, and the fields of its log line, trace and metrics."""

    outcome: Outcome
    reason: Reason | None = None
    detail: str = ""
    message_id: str | None = None
    recipients: int = 0
    attachments: int = 0
    source: str = "none"  # how the recipients were found: code, route or none
    from_groups: int = 0
    attachment_bytes: int = 0
    previews: int = 0
    preview_skips: dict[str, int] = field(default_factory=dict)  # reason -> images (app.previews.Skip)
    incident: str | None = None  # the alarm incident the mail belongs to (app/folding.py)
    fold: str = "off"  # what folding decided: first, repeat, recovery, plain, flapping, off, unavailable
    counts: dict[str, int] = field(default_factory=dict)  # folding's metrics (metrics.FOLDING_METRICS)


def process(item: records.Item, settings: Settings, ports: Ports) -> Outcome:
    """Handle one item of a record; never raises, so one mail cannot fail its batch-mates."""
    if isinstance(item, records.Ignored):
        level = logging.WARNING if item.refused else logging.INFO
        outcome = Outcome.REFUSED if item.refused else Outcome.SKIPPED
        log.log(level, "record %s: %s", outcome, item.why, extra={"outcome": str(outcome), "key": item.key})
        return outcome
    if isinstance(item, records.Tick):
        return folding.process_tick(item, settings, ports)
    started, acceptance = time.monotonic(), metrics.Acceptance()
    with tracing.mail_subsegment(item.key) as trace, acceptance:
        try:
            result = _relay(item, settings, ports)
        except RetryableError as e:
            result = Handled(Outcome.RETRY, detail=str(e))
        except Exception as e:  # a bug must not lose the mail: retry, and in the end the DLQ keeps it
            log.exception("unexpected error relaying %s", item.key)
            result = Handled(Outcome.RETRY, detail=f"unexpected {type(e).__name__}")
        trace.annotate(
            outcome=str(result.outcome),
            reason=str(result.reason or ""),
            message_id=result.message_id or "",
            recipients=result.recipients,
            attachments=result.attachments,
            recipients_source=result.source,
            group_recipients=result.from_groups,
            previews=result.previews,
            incident=result.incident or "",
            fold=result.fold,
        )
    log.info(
        "mail %s",
        result.outcome,
        extra={
            "outcome": str(result.outcome),
            "reason": str(result.reason or ""),
            "detail": result.detail,
            "key": item.key,
            "message_id": result.message_id,
            "recipients": result.recipients,
            "attachments": result.attachments,
            "recipients_source": result.source,
            "group_recipients": result.from_groups,
            "previews": result.previews,
            "preview_skips": result.preview_skips,
            "incident": result.incident,
            "fold": result.fold,
            # CloudWatch metrics of this mail, in the same line (app/metrics.py).
            **metrics.emf(
                settings.metrics_namespace,
                metrics.MailMetrics(
                    outcome=str(result.outcome),
                    reason=str(result.reason) if result.reason else None,
                    recipients=result.recipients,
                    attachments=result.attachments,
                    attachment_bytes=result.attachment_bytes,
                    processing_ms=(time.monotonic() - started) * 1000,
                    relay_latency_ms=metrics.latency_ms(item.event_time, acceptance.at),
                    counts=result.counts,
                ),
                datetime.now(UTC),
            ),
        },
    )
    return result.outcome


def _relay(ref: records.MailRef, settings: Settings, ports: Ports) -> Handled:
    raw = ports.storage.read_object(ref.bucket, ref.key, MAX_RAW_BYTES)
    if raw is None:
        too_large = Refusal(Reason.TOO_LARGE, f"larger than {MAX_RAW_BYTES} bytes")
        return _notify(ref, settings, ports, None, too_large)
    try:
        mail = parse(raw)
    except MalformedMail as e:
        return _notify(ref, settings, ports, None, Refusal(Reason.MALFORMED, str(e)))
    except TooManyParts as e:
        return _notify(ref, settings, ports, None, Refusal(Reason.TOO_LARGE, str(e)))
    decision = screen(mail, settings, ports.directory)
    if isinstance(decision, Refusal):
        return replace(_notify(ref, settings, ports, mail, decision), source=decision.source)

    now = ports.clock()
    expires_at = now + timedelta(seconds=settings.url_expiry_seconds)
    shots = previews.Previewer(settings.inline_previews)
    links, stored = _offload(ref, settings, ports, mail, decision, now, expires_at, shots)
    arrival = Arrival(ref.key, mail.subject, tuple(stored), expires_at)
    verdict = folding.decide(mail, decision, arrival, settings, ports, now)
    counts = _counts(verdict)
    if not verdict.relay:  # a repeat: listed, with its links, in the alarm's next digest
        _notify_left_out(ref, settings, ports, mail, decision)
        return Handled(
            Outcome.FOLDED,
            message_id=mail.message_id,
            attachments=len(links),
            attachment_bytes=sum(link.size for link in links),
            source=decision.source,
            previews=shots.made,
            preview_skips=shots.reasons(),
            incident=verdict.incident,
            fold=verdict.fold,
            counts=counts,
        )
    message = rewrite.build(mail, links, expires_at, settings.sender_email, now, verdict.notes)
    if len(message) > SES_MAX_MESSAGE_BYTES and shots.made:  # a preview never costs a mail: without
        shots.withdraw()  # them, a text-only mail needs no HTML copy of its text either
        links = [replace(link, preview=None) for link in links]
        message = rewrite.build(mail, links, expires_at, settings.sender_email, now, verdict.notes)
    if len(message) > SES_MAX_MESSAGE_BYTES:
        refusal = Refusal(Reason.TOO_LARGE, f"the rewritten mail has {len(message)} bytes, over SES's limit")
        refused = _notify(ref, settings, ports, mail, refusal)
        return replace(refused, previews=shots.made, preview_skips=shots.reasons())
    batches = chunks(decision.recipients)
    rejected = _send(ref, settings, ports, message, batches)
    if rejected:
        detail = f"SES refused {len(rejected)} of {len(batches)} sends: {'; '.join(rejected)}"
        result = _notify(ref, settings, ports, mail, Refusal(Reason.REJECTED, detail))
        if len(rejected) == len(batches):
            return replace(
                result,
                incident=verdict.incident,
                fold=verdict.fold,
                counts=counts,
                previews=shots.made,
                preview_skips=shots.reasons(),
            )
    _notify_left_out(ref, settings, ports, mail, decision)
    verdict = folding.send_queued(verdict, settings, ports)  # a first mail goes out before old digests
    return Handled(
        Outcome.DISTRIBUTED,
        message_id=mail.message_id,
        recipients=len(decision.recipients),
        attachments=len(links),
        attachment_bytes=sum(link.size for link in links),
        source=decision.source,
        from_groups=decision.from_groups,
        previews=shots.made,
        preview_skips=shots.reasons(),
        incident=verdict.incident,
        fold=verdict.fold,
        counts=_counts(verdict),
        detail=", ".join(
            f"{count} {what} recipients"
            for count, what in ((len(decision.invalid), "invalid"), (len(decision.refused), "refused"))
            if count
        ),
    )


def _notify_left_out(
    ref: records.MailRef, settings: Settings, ports: Ports, mail: Mail, decision: Distribution
) -> None:
    """The mail went out (or was folded into a digest): the operator learns who was left out, and why."""
    for reason, entries in (
        (Reason.INVALID_RECIPIENTS, decision.invalid),
        (Reason.RECIPIENT_NOT_ALLOWED, decision.refused),
    ):
        if entries:
            _notify(ref, settings, ports, mail, Refusal(reason, _LEFT_OUT[reason], entries))


def _counts(verdict: folding.Verdict) -> dict[str, int]:
    """This mail's share of folding's metrics."""
    counts = {
        "Folded": int(verdict.decision in (Decision.FOLD, Decision.FLAPPING)),
        "Recoveries": int(verdict.decision is Decision.RELAY_RECOVERY),
        "Flapping": int(verdict.decision is Decision.FLAPPING),
        "Digests": verdict.digests,
        "FoldingUnavailable": int(verdict.unavailable),
    }
    return counts if verdict.decision is not None or verdict.unavailable else {}


def _offload(
    ref: records.MailRef,
    settings: Settings,
    ports: Ports,
    mail: Mail,
    decision: Distribution,
    now: datetime,
    expires_at: datetime,
    shots: previews.Previewer,
) -> tuple[list[rewrite.Link], list[Attachment]]:
    """Upload every attachment, sign its link, make its preview when it is an image (from the bytes
    the upload streamed, kept on the way), and write the manifest operators revoke by."""
    links: list[rewrite.Link] = []
    stored: list[Attachment] = []
    manifest_entries: list[dict[str, object]] = []
    for part in mail.attachments:
        filename = attachments.safe_filename(part.original_name, part.content_type, part.index)
        key = attachments.object_key(ref.key, part.index, filename)
        reader = decode.DecodingReader(part.body.view(), part.body.encoding)
        watched = shots.watch(reader, filename, part.content_type)
        ports.storage.upload(
            settings.attachments_bucket,
            key,
            watched,
            {
                "ContentType": part.content_type,
                "ContentDisposition": attachments.content_disposition(filename),
                "Metadata": {
                    "incoming-key": quote(ref.key, safe=""),
                    "message-id": quote(mail.message_id or "", safe=""),
                },
            },
        )
        url = ports.signer.sign(settings.attachments_bucket, key, expires_at)
        preview = shots.preview(watched)
        links.append(rewrite.Link(filename, reader.size, part.content_type, part.content_id, url, preview))
        stored.append(Attachment(filename, reader.size, part.content_type, key))
        manifest_entries.append(
            {"key": key, "filename": filename, "size": reader.size, "content_type": part.content_type}
        )
    ports.storage.put_json(
        settings.attachments_bucket,
        attachments.manifest_key(ref.key),
        {
            "incoming_key": ref.key,
            "message_id": mail.message_id,
            "subject": mail.subject,
            "created_at": now.isoformat(),
            "expires_at": expires_at.isoformat(),
            "recipient_digests": [attachments.recipient_digest(r) for r in decision.recipients],
            "attachments": manifest_entries,
        },
    )
    return links, stored


def _send(
    ref: records.MailRef, settings: Settings, ports: Ports, message: bytes, batches: list[tuple[str, ...]]
) -> list[str]:
    """Send each chunk once; returns what SES refused for good (those chunks are not retried)."""
    digest = attachments.mail_digest(ref.key)
    rejected: list[str] = []
    for number, batch in enumerate(batches, start=1):

        def send_chunk(number: int = number, batch: tuple[str, ...] = batch) -> str:
            try:
                sent = ports.mailer.send(
                    message, batch, settings.sender_email, settings.configuration_set_name
                )
            except SendRejected as e:
                rejected.append(f"chunk {number}: {e}")
                return f"rejected: {e}"
            metrics.accepted()
            return sent

        ports.markers.once(marker_key(digest, f"send-{number}-of-{len(batches)}"), send_chunk)
    return rejected


def _notify(
    ref: records.MailRef, settings: Settings, ports: Ports, mail: Mail | None, refusal: Refusal
) -> Handled:
    notice = Notice(
        reason=refusal.reason,
        detail=refusal.detail,
        bucket=ref.bucket,
        key=ref.key,
        message_id=mail.message_id if mail else None,
        sender=(mail.sender or mail.from_header or None) if mail else None,
        subject=mail.subject if mail else None,
        invalid_recipients=refusal.invalid,
    )

    def publish() -> str:
        ports.notices.publish(settings.fallback_topic_arn, notice)
        metrics.accepted()
        return "published"

    key = marker_key(attachments.mail_digest(ref.key), f"notice-{refusal.reason}")
    ports.markers.once(key, publish)
    return Handled(
        Outcome.FALLBACK, reason=refusal.reason, detail=refusal.detail, message_id=notice.message_id
    )
