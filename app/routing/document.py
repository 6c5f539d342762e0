"""The recipients document: groups of addresses and routes from receiving addresses, validated.

People change, firmware does not: a device names a group (or only mails its own receiving address) and
operators change who is in the group by editing one JSON document in S3, without a deploy:

    {"groups": {"boiler-oncall": ["alice@example.com", "bob@example.org"]},
     "routes": {"cam-lobby-8f2k@relay.example.com": ["boiler-oncall", "guard@example.com"]},
     "alarms": {"cam-lobby-8f2k@relay.example.com": {"key": "^(?P<key>[^:]+):", "recovery": "cleared"}}}

The optional `alarms` object tunes alarm folding for one route (by its receiving address) or one group
(by its name): `key` is a regular expression whose named group `key` becomes the subject part of the
alarm's fingerprint, `recovery` a regular expression that alone decides whether a mail is a recovery
(app/alarms/fingerprint.py says how both are used). Both are matched case-insensitively. The operator
writes them and attackers write the subjects they run on, so a pattern is at most MAX_PATTERN_CHARS
long and the subject it sees is cut to fingerprint.MAX_SUBJECT_CHARS; a pattern that fails to compile,
lacks its named group, or would call every mail a recovery is a problem like any other.

Pure: bytes in, a `Directory` or the list of what is wrong out. Both the function and `relayctl
recipients check` validate with this one module, so what the tool accepts the function uses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.mail.recipients import GROUP_NAME, validate

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_MEMBERS = 1000  # per group or route: MAX_RECIPIENTS caps what one mail may reach anyway
MAX_ALARM_RULES = 1000
MAX_PATTERN_CHARS = 500
PATTERN_FLAGS = re.IGNORECASE


class DocumentError(ValueError):
    """The document is not a valid recipients document; the message lists what is wrong."""


@dataclass(frozen=True)
class Override:
    """How one route's or group's alarms are told apart and recognised as recoveries."""

    key: re.Pattern[str] | None = None  # has a named group `key`
    recovery: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Directory:
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> addresses
    routes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # address -> groups and addresses
    alarms: Mapping[str, Override] = field(default_factory=dict)  # route address or group name -> rule


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
    alarms = _alarms(document.get("alarms", {}), groups, routes, problems)
    return Directory(groups=groups, routes=routes, alarms=alarms), problems


_KEYS = ("groups", "routes", "alarms")
_RULE_KEYS = ("key", "recovery")


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


def _alarms(
    value: object,
    groups: Mapping[str, tuple[str, ...]],
    routes: Mapping[str, tuple[str, ...]],
    problems: list[str],
) -> dict[str, Override]:
    rules = _mapping(value, "alarms", problems)
    if len(rules) > MAX_ALARM_RULES:
        problems.append(f"'alarms': more than {MAX_ALARM_RULES} entries")
        return {}
    alarms: dict[str, Override] = {}
    for name, rule in rules.items():
        where = f"alarms {name!r}"
        scope = validate(name.strip()) if "@" in name else name.strip().lower()
        if scope is None or scope not in (routes if "@" in name else groups):
            problems.append(f"{where}: not a route or group of this document")
            continue
        if scope in alarms:
            problems.append(f"{where}: defined twice (names ignore case)")
            continue
        if not isinstance(rule, dict) or not rule:
            problems.append(f"{where}: must be an object with 'key' and/or 'recovery'")
            continue
        before = len(problems)
        unknown = [k for k in rule if k not in _RULE_KEYS]
        problems += [f"{where}: unknown key {k!r} (expected {_RULE_KEYS})" for k in unknown]
        key = _pattern(rule.get("key"), f"{where} 'key'", problems)
        if key is not None and "key" not in key.groupindex:
            problems.append(f"{where} 'key': has no named group 'key', as in (?P<key>...)")
        recovery = _pattern(rule.get("recovery"), f"{where} 'recovery'", problems)
        if recovery is not None and recovery.search(""):
            problems.append(f"{where} 'recovery': matches an empty subject: every mail would be a recovery")
        if len(problems) == before:
            alarms[scope] = Override(key=key, recovery=recovery)
    return alarms


def _pattern(value: object, where: str, problems: list[str]) -> re.Pattern[str] | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_PATTERN_CHARS:
        problems.append(f"{where}: must be a non-empty string of at most {MAX_PATTERN_CHARS} characters")
        return None
    try:
        return re.compile(value, PATTERN_FLAGS)
    except (re.error, OverflowError, RecursionError) as e:
        problems.append(f"{where}: not a regular expression: {e}")
        return None
