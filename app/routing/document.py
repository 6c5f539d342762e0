"""The recipients document: groups of addresses and routes from receiving addresses, validated.

People change, firmware does not: a device names a group (or only mails its own receiving address) and
operators change who is in the group by editing one JSON document in S3, without a deploy:

    {"groups": {"boiler-oncall": ["alice@example.com", "bob@example.org"]},
     "routes": {"cam-lobby-8f2k@relay.example.com": ["boiler-oncall", "guard@example.com"]}}

Pure: bytes in, a `Directory` or the list of what is wrong out. Both the function and `relayctl
recipients check` validate with this one module, so what the tool accepts the function uses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.mail.recipients import GROUP_NAME, validate

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_MEMBERS = 1000  # per group or route: MAX_RECIPIENTS caps what one mail may reach anyway


class DocumentError(ValueError):
    """The document is not a valid recipients document; the message lists what is wrong."""


@dataclass(frozen=True)
class Directory:
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> addresses
    routes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # address -> groups and addresses


EMPTY = Directory()


def parse(data: bytes) -> Directory:
    """The directory the document describes; raises DocumentError naming every problem (up to ten)."""
    directory, problems = check(data)
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise DocumentError(shown)
    return directory


def check(data: bytes) -> tuple[Directory, list[str]]:
    """The directory (with the valid parts) and every problem found, for tools that report them all."""
    if len(data) > MAX_DOCUMENT_BYTES:
        return EMPTY, [f"the document is larger than {MAX_DOCUMENT_BYTES} bytes"]
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return EMPTY, [f"not JSON: {e}"]
    if not isinstance(document, dict):
        return EMPTY, ["the document must be a JSON object with 'groups' and 'routes'"]
    problems = [f"unknown key {key!r} (expected {_KEYS})" for key in document if key not in _KEYS]
    groups = _groups(document.get("groups", {}), problems)
    routes = _routes(document.get("routes", {}), groups, problems)
    return Directory(groups=groups, routes=routes), problems


_KEYS = ("groups", "routes")


def _groups(value: object, problems: list[str]) -> dict[str, tuple[str, ...]]:
    groups: dict[str, tuple[str, ...]] = {}
    for name, members in _mapping(value, "groups", problems).items():
        key = name.strip().lower()
        if not GROUP_NAME.match(key):
            problems.append(f"group {name!r}: 1-64 of a-z 0-9 . _ - starting with a letter or digit")
            continue
        if key in groups:
            problems.append(f"group {name!r}: defined twice (names ignore case)")
            continue
        addresses = _entries(members, f"group {name!r}", problems, allow_groups=False)
        groups[key] = addresses
    return groups


def _routes(
    value: object, groups: Mapping[str, tuple[str, ...]], problems: list[str]
) -> dict[str, tuple[str, ...]]:
    routes: dict[str, tuple[str, ...]] = {}
    for receiving, entries in _mapping(value, "routes", problems).items():
        address = validate(receiving)
        if address is None:
            problems.append(f"route {receiving!r}: not a receiving address")
            continue
        targets = _entries(entries, f"route {receiving!r}", problems, allow_groups=True)
        for target in targets:
            if "@" not in target and target not in groups:
                problems.append(f"route {receiving!r}: unknown group {target!r}")
        routes[address] = tuple(t for t in targets if "@" in t or t in groups)
    return routes


def _mapping(value: object, what: str, problems: list[str]) -> dict[str, object]:
    if not isinstance(value, dict):
        problems.append(f"'{what}' must be an object")
        return {}
    return value


def _entries(value: object, where: str, problems: list[str], allow_groups: bool) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append(f"{where}: must be a list of strings")
        return ()
    if len(value) > MAX_MEMBERS:
        problems.append(f"{where}: more than {MAX_MEMBERS} entries")
        return ()
    found: list[str] = []
    for item in value:
        name = item.strip().lower()
        entry = name if allow_groups and GROUP_NAME.match(name) else validate(item.strip())
        if entry is None:
            problems.append(f"{where}: {item!r} is not an address" + (" or a group" if allow_groups else ""))
        elif entry not in found:
            found.append(entry)
    return tuple(found)
