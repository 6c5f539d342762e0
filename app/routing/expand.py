"""Expansion: code entries or a route -> the addresses that get the mail, and where they came from.

Groups expand to their members; the result is de-duplicated (case-insensitively, first occurrence
wins) and the relay's own receiving addresses are dropped, so no group or route can make the relay mail
itself. The fence and the cap apply afterwards, in `screening.screen`, to what expansion produced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.routing.document import Directory


@dataclass(frozen=True)
class Expansion:
    recipients: tuple[str, ...]
    unknown_groups: tuple[str, ...]  # named but not in the directory: reported as invalid entries
    from_groups: int  # how many of the recipients only a group put there
    groups: tuple[str, ...] = ()  # the known groups named, in order (their alarm rules apply)


def expand(entries: Iterable[str], directory: Directory, drop: Iterable[str]) -> Expansion:
    """`entries` are addresses and group names (as `recipients.classify` leaves them)."""
    seen = {address.lower() for address in drop}
    recipients: list[str] = []
    unknown: list[str] = []
    named: list[str] = []
    from_groups = 0
    for entry in entries:
        if "@" in entry:
            members: Sequence[str] = (entry,)
        elif entry in directory.groups:
            members = directory.groups[entry]
            named.append(entry)
        else:
            unknown.append(entry)
            continue
        for member in members:
            if member not in seen:
                seen.add(member)
                recipients.append(member)
                from_groups += "@" not in entry
    return Expansion(tuple(recipients), tuple(unknown), from_groups, tuple(dict.fromkeys(named)))


def receiving_address(
    envelope_recipient: str | None, written: Iterable[str], receiving: Sequence[str]
) -> str | None:
    """The relay address the mail was received for: SES's `Received: ... for <address>` when it names
    one of ours (SES's word); else, when SES named none (several envelope recipients), the first To/Cc
    address that is one of ours."""
    ours = [address.lower() for address in receiving]
    if envelope_recipient and envelope_recipient.lower() in ours:
        return envelope_recipient.lower()
    return next((address.lower() for address in written if address.lower() in ours), None)
