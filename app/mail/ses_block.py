"""SES's word on a mail: its verdicts and authentication results, read only from the block it prepends.

SES stores a received mail with its own headers *above* everything the sender wrote (Return-Path,
Received, X-SES-Spam-Verdict, X-SES-Virus-Verdict, Received-SPF, Authentication-Results, X-SES-RECEIPT,
X-SES-DKIM-SIGNATURE). A sender can write any of those names too, further down; a reader that takes the
last occurrence (flanker's `headers.get`) reads the sender's. So this module reads the first occurrence
inside SES's block only: the block ends after SES's `X-SES-RECEIPT` (and the `X-SES-DKIM-SIGNATURE` that
follows it), or, in a mail without one (fixtures, older stores), at the first header SES never writes.
Whether those results vouch for the sender is `app.mail.sender_alignment`'s question.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.mail.authres_parser import Result, parse_authentication_results, parse_received_spf

SES_AUTHSERV_ID = "amazonses.com"
SES_BLOCK_HEADERS = frozenset(
    {
        "return-path",
        "received",
        "x-ses-spam-verdict",
        "x-ses-virus-verdict",
        "received-spf",
        "authentication-results",
        "x-ses-receipt",
        "x-ses-dkim-signature",
    }
)
_BLOCK_END = "x-ses-receipt"
_AFTER_END = "x-ses-dkim-signature"


@dataclass(frozen=True)
class SesReport:
    """SES's word on one mail; None where SES's block does not say."""

    spam_verdict: str | None = None  # PASS, FAIL, GRAY, PROCESSING_FAILED
    virus_verdict: str | None = None
    results: tuple[Result, ...] = ()  # SES's Authentication-Results, plus its Received-SPF if A-R has no spf
    envelope_recipient: str | None = None  # `for <address>;` of SES's Received header


def ses_block(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers SES prepended, in order (names lower-cased)."""
    block: list[tuple[str, str]] = []
    ended = False
    for name, value in headers:
        lower = name.lower()
        if ended:
            if lower == _AFTER_END:
                block.append((lower, value))
            break
        if lower not in SES_BLOCK_HEADERS:
            break
        block.append((lower, value))
        ended = lower == _BLOCK_END
    return block


def read(headers: Iterable[tuple[str, str]]) -> SesReport:
    """The verdicts and results of SES's block; copies below it are the sender's and are ignored."""
    first: dict[str, str] = {}
    authentication: list[Result] | None = None
    for name, value in ses_block(headers):
        if name == "authentication-results":
            header = parse_authentication_results(value)
            if authentication is None and header.authserv_id == SES_AUTHSERV_ID:
                authentication = list(header.results)
            continue
        first.setdefault(name, value)
    results = authentication or []
    if not any(result.method == "spf" for result in results) and "received-spf" in first:
        spf = parse_received_spf(first["received-spf"])
        if spf is not None:
            results.append(spf)
    return SesReport(
        spam_verdict=_verdict(first.get("x-ses-spam-verdict")),
        virus_verdict=_verdict(first.get("x-ses-virus-verdict")),
        results=tuple(results),
        envelope_recipient=_envelope_recipient(first.get("received")),
    )


def _verdict(value: str | None) -> str | None:
    text = (value or "").strip().upper()
    return text or None


def _envelope_recipient(received: str | None) -> str | None:
    """SES names the envelope recipient in its Received header when there was exactly one."""
    if not received:
        return None
    words = received.replace(";", " ; ").split()
    for position, word in enumerate(words[:-1]):
        if word.lower() == "for":
            candidate = words[position + 1].strip("<>")
            return candidate.lower() if "@" in candidate else None
    return None
