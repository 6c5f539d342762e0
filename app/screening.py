"""The decision about one parsed mail, without AWS: refuse it (and why), or distribute it to whom.

Only SES's own block speaks for the verdicts and the sender's authentication (`mail.ses`); the order of
the checks is the order of harm: nothing of a mail SES did not scan is stored, nothing of an unvouched
sender is sent, and the fence decides last who, of the listed recipients, may receive it. `relay`
carries the decision out; everything here is a pure function of the mail, the settings and the
recipients directory, so each rule has a unit test of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from app.config import SenderAuth, Settings
from app.mail import fence, sender_alignment
from app.mail.parse import Mail
from app.mail.recipients import classify, extract
from app.outcomes import Reason
from app.routing.document import EMPTY, Directory
from app.routing.expand import expand, receiving_address


@dataclass(frozen=True)
class Refusal:
    reason: Reason
    detail: str
    invalid: tuple[str, ...] = ()
    source: str = "none"  # how the recipients were found: "code", "route" or "none"


@dataclass(frozen=True)
class Distribution:
    recipients: tuple[str, ...]
    invalid: tuple[str, ...]  # rejected entries: the mail still goes out, and a notice lists them
    refused: tuple[str, ...] = ()  # valid addresses outside ALLOWED_RECIPIENTS: a notice lists them
    source: str = "code"  # "code" or "route"
    from_groups: int = 0  # recipients that only a group put there
    scopes: tuple[str, ...] = ()  # the route's address, then the groups named: whose alarm rules apply


def screen(
    mail: Mail, settings: Settings, directory: Callable[[], Directory] = lambda: EMPTY
) -> Refusal | Distribution:
    """Whether and to whom the mail may be distributed. `directory` gives the groups and routes; it is
    asked only when the mail names a group or has no code."""
    if mail.virus_verdict == "FAIL":
        return Refusal(Reason.VIRUS, "SES's virus scan failed the mail")
    if mail.virus_verdict != "PASS":
        return Refusal(
            Reason.UNSCANNED, f"SES's virus verdict is {mail.virus_verdict or 'missing'}, not PASS"
        )
    if mail.spam_verdict == "FAIL":
        return Refusal(Reason.SPAM, "SES's spam scan failed the mail")
    refusal = _screen_sender(mail, settings)
    if refusal:
        return refusal
    listed = _recipients(mail, settings, directory)
    if isinstance(listed, Refusal):
        return listed
    inside, refused = listed.recipients, tuple[str, ...]()
    if settings.allowed_recipients:
        inside = tuple(r for r in listed.recipients if fence.admits(settings.allowed_recipients, r))
        refused = tuple(r for r in listed.recipients if r not in inside)
    if not inside:
        return Refusal(Reason.RECIPIENT_NOT_ALLOWED, "no recipient is inside ALLOWED_RECIPIENTS", refused)
    if len(inside) > settings.max_recipients:
        return Refusal(
            Reason.TOO_MANY_RECIPIENTS,
            f"{len(inside)} recipients, more than MAX_RECIPIENTS={settings.max_recipients}",
        )
    return replace(listed, recipients=inside, refused=refused)


def _recipients(mail: Mail, settings: Settings, directory: Callable[[], Directory]) -> Refusal | Distribution:
    """The code decides when there is one; else the route of the address the mail was received for.
    Groups expand, and the relay's own addresses are dropped; the fence and the cap come after."""
    drop = settings.receiving_addresses
    found = extract(mail.bodies, drop=drop)
    source, route_address = "code", None
    if not found.found:
        address = receiving_address(mail.ses.envelope_recipient, mail.addressed_to, drop)
        route = directory().routes.get(address) if address else None
        if not route:
            return Refusal(
                Reason.NO_RECIPIENTS, "the body has no Email_Rxers_Code recipient list", source="none"
            )
        found, source, route_address = classify(route, drop), "route", address
    if not found.entries and not found.invalid:
        return Refusal(Reason.NO_RECIPIENTS, "the recipient list is empty", source=source)
    expansion = expand(found.entries, directory() if found.groups else EMPTY, drop)
    invalid = found.invalid + tuple(f"{name} (unknown group)" for name in expansion.unknown_groups)
    if not expansion.recipients:
        return Refusal(Reason.INVALID_RECIPIENTS, "no entry of the recipient list is valid", invalid, source)
    scopes = ((route_address,) if route_address else ()) + expansion.groups
    return Distribution(
        expansion.recipients, invalid, source=source, from_groups=expansion.from_groups, scopes=scopes
    )


def _screen_sender(mail: Mail, settings: Settings) -> Refusal | None:
    if not settings.allowed_senders:
        return None
    if not mail.sender:
        return Refusal(Reason.SENDER_NOT_ALLOWED, f"{_no_sender(mail)}: no sender to match ALLOWED_SENDERS")
    if not fence.admits(settings.allowed_senders, mail.sender):
        return Refusal(Reason.SENDER_NOT_ALLOWED, f"{mail.sender} is not in ALLOWED_SENDERS")
    if settings.sender_auth is SenderAuth.REQUIRED:
        domain = mail.sender.rpartition("@")[2]
        verification = sender_alignment.verify(mail.ses, domain)
        if not verification.authenticated:
            return Refusal(
                Reason.SENDER_NOT_AUTHENTICATED,
                f"SES authenticated no aligned domain for {domain}: it reported {verification.summary}",
            )
    return None


def _no_sender(mail: Mail) -> str:
    if mail.from_count == 0:
        return "the mail has no From"
    if mail.from_count > 1:
        return f"the mail has {mail.from_count} From headers"
    return "the From does not name exactly one address"
