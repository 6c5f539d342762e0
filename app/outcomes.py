"""What can become of one mail, and the fallback notice an operator receives when it is not distributed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    DISTRIBUTED = "distributed"
    FOLDED = "folded"  # a repeat of an open alarm: listed in a digest instead of sent on its own
    FALLBACK = "fallback"
    SKIPPED = "skipped"  # test events and SES's setup notification: acknowledged, nothing to do
    REFUSED = "refused"  # not ours (another bucket, unreadable record): acknowledged and logged
    RETRY = "retry"  # reported as a batch item failure
    TICK = "tick"  # a scheduled look at an alarm (digests due, closings), done


class Reason(StrEnum):
    NO_RECIPIENTS = "no_recipients"
    INVALID_RECIPIENTS = "invalid_recipients"
    TOO_MANY_RECIPIENTS = "too_many_recipients"
    SENDER_NOT_ALLOWED = "sender_not_allowed"
    SENDER_NOT_AUTHENTICATED = "sender_not_authenticated"  # allowed From, but SES does not vouch for it
    RECIPIENT_NOT_ALLOWED = "recipient_not_allowed"  # outside ALLOWED_RECIPIENTS
    SPAM = "spam"
    VIRUS = "virus"
    UNSCANNED = "unscanned"  # SES's virus verdict is not PASS (GRAY, PROCESSING_FAILED) or missing
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    REJECTED = "rejected"  # SES refused to send (permanent): retrying would only fill the DLQ


SUBJECTS = {
    Reason.NO_RECIPIENTS: "Mail without a recipient code",
    Reason.INVALID_RECIPIENTS: "Mail with invalid recipients",
    Reason.TOO_MANY_RECIPIENTS: "Mail with too many recipients",
    Reason.SENDER_NOT_ALLOWED: "Mail from a sender not allowed",
    Reason.SENDER_NOT_AUTHENTICATED: "Mail from an unauthenticated sender",
    Reason.RECIPIENT_NOT_ALLOWED: "Mail to recipients not allowed",
    Reason.SPAM: "Mail held as spam",
    Reason.VIRUS: "Mail held: virus found",
    Reason.UNSCANNED: "Mail held: not scanned for viruses",
    Reason.MALFORMED: "Unreadable mail",
    Reason.TOO_LARGE: "Mail too large to distribute",
    Reason.REJECTED: "Mail rejected by SES",
}


@dataclass(frozen=True)
class Notice:
    reason: Reason
    detail: str
    bucket: str
    key: str
    message_id: str | None = None
    sender: str | None = None
    subject: str | None = None
    invalid_recipients: tuple[str, ...] = field(default=())  # the entries the reason is about

    @property
    def title(self) -> str:
        return f"IoT Mail Relay: {SUBJECTS[self.reason]}"

    def as_message(self) -> dict[str, object]:
        body = asdict(self)
        body["reason"] = str(self.reason)
        body["from"] = body.pop("sender")
        listed = body.pop("invalid_recipients")
        if self.reason is Reason.INVALID_RECIPIENTS:
            body["invalid_recipients"] = list(listed)
        elif self.reason is Reason.RECIPIENT_NOT_ALLOWED:
            body["refused_recipients"] = list(listed)
        return body
