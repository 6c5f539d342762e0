"""Which mails are the same alarm, and which of them say it is over.

A sensor in trouble mails the same alarm again and again, each time with a new reading, time stamp or
counter in the subject. Folding the repeats needs a name for "the same alarm" that ignores those and
nothing else: the fingerprint, a hash of the sender (as authenticated, lower-cased), the final recipient
set (sorted, lower-cased) and the subject key. The subject key is the subject with what changes between
repeats masked and the state words removed, so that `Problem: X` and `Resolved in 5m 3s: X` share it and
a recovery finds the incident it ends.

The subject key, step by step (at most MAX_SUBJECT_CHARS characters of the subject are read):

1. Case-folded, whitespace collapsed.
2. Readings become `#`; identifiers stay as they are. Read left to right, the first rule that matches at
   a place wins:
   - kept: MAC addresses (`00:1a:2b:3c:4d:5e`), IPv4 addresses with an optional port or prefix length
     (`192.168.1.10`, `10.0.0.7:502`), dotted numbers of three or more parts that are not dates (OIDs,
     versions: `1.3.6.1.4.1`, `2.1.14`), and words that start with a letter and contain a digit
     (`cam4`, `PLC-12`, `web01.example.com`, `eth0`): a number glued to letters names a thing;
   - masked: UUIDs; ISO dates and time stamps (`2026-12-04`, `2026-12-04T12:04:33Z`,
     `20261204T120433Z`, `2026/12/04`); numeric dates (`04.12.2026`, `04-12-2026`, `12/04/2026`,
     `12/04/26`); English month names after a day and before a year (`4 December 2026`), or before a
     day or a year (`Dec 4`, `Dec 4th, 2026`, `Dec 2026`), and a weekday name before one of those or
     before a number (`Thu, 04 Dec 2026`, `Thu 12:04`), but not a day before a month alone (`Sensor 3
     may fail` keeps its 3); times (`12:04`, `12:04:33.250`, `9:45 PM`, `12:04:33 +0100`); hex ids of
     eight or more hex digits with at least one digit (`9f86d081`); numbers with a unit glued to them
     (`5m`, `3s`, `1h30m`, `250ms`, `90%`, `23°C`) or after a space when the unit is `%`, `°` or has
     two or more letters (`12 ms`, `3.2 kB`, `9.1 bar`, `90 %`); decimals (`9.1`, `9,4`); whole
     numbers of five or more digits (counters, epochs, serial numbers); and numbers after `=` or after
     a colon and a space (`value=23`, `Ping: 12`, `Zone: 3`).
   - Everything else stays, notably whole numbers of one to four digits after a word or a sign
     (`Pump 3`, `Channel 12`, `port 8080`, `#3`): `Pump 3` and `Pump 4` are two alarms. A single-letter
     unit after a space (`230 V`, `Zone 3 A`) does not make a reading, for the same reason.
3. Words: runs of letters, digits, `_` and `#`, joined by `-`, `.`, `/`, `@` or `'` inside them, plus
   comparison signs (`<`, `>`, `≤`, `≥`, `≠`). Other punctuation, symbols and emoji go, so `** X **`,
   `[X]` and `✅ X` are all `x`.
4. State phrases go: the state words (PROBLEM_WORDS, RECOVERY_WORDS) as whole words, with what the
   common monitoring tools put beside them: Alertmanager's count (`[FIRING:3]`), Zabbix's duration
   (`Resolved in 5m 3s`, `Updated problem in 1h`), PRTG's `ended` (`Down ended`) and its `now`/`before`
   before a state word (`(now: Up)`, `(before: Down)`).
5. Runs of `#` become one `#`.

The steps are repeated until nothing changes (after the first pass, a pass that changes the text only
shortens it), so the key of a key is itself.

A subject is a recovery when it has a recovery word that does not directly follow `not` (`is not OK`
is a problem), or a problem word followed by `ended` (PRTG's `Down ended`), unless that goes on with
`now` and a problem word (`Down ended (now: Warning)`). Any recovery word wins over problem words, so
`Resolved: Link down` and `ALARM CLEARED: Tank 3` are recoveries: when in doubt a mail is relayed rather
than folded. A route's or group's `recovery` pattern, when it has one, alone decides instead.

A route's or group's `key` pattern (app/routing/document.py) replaces steps 2 to 5: its named group
`key`, case-folded with its whitespace collapsed, is the subject key. When the pattern does not match,
or its group is empty, the default key applies. Patterns run on at most MAX_SUBJECT_CHARS characters.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.mail.header_text import one_line
from app.routing.document import Override

MAX_SUBJECT_CHARS = 1000
FINGERPRINT_HEX = 32
PROBLEM_WORDS = frozenset({"problem", "alarm", "alert", "critical", "warning", "down", "firing", "triggered"})
RECOVERY_WORDS = frozenset({"ok", "resolved", "recovery", "recovered", "cleared", "normal", "up"})
STATE_WORDS = PROBLEM_WORDS | RECOVERY_WORDS
PLACEHOLDER = "#"


@dataclass(frozen=True)
class Identity:
    """What the timeline needs to know about a mail's alarm."""

    fingerprint: str  # sender + recipients + subject key
    group: str  # sender + recipients: a recovery with no incident of its own may pair within its group
    key: str  # the subject key
    recovery: bool
    sender: str
    recipients: tuple[str, ...]  # sorted, lower-cased


def identify(
    sender: str | None, recipients: Iterable[str], subject: str, override: Override | None = None
) -> Identity:
    """The alarm a mail belongs to. `sender` is the address as authenticated; `recipients` the final
    set (after groups and the fence); `override` the rule of the mail's route or group, if any."""
    text = one_line(subject)[:MAX_SUBJECT_CHARS]
    key = _override_key(text, override)
    if key is None:
        key = subject_key(text)
    if override is not None and override.recovery is not None:
        recovery = override.recovery.search(text) is not None
    else:
        recovery = is_recovery(text)
    who = (sender or "").strip().lower()
    whom = tuple(sorted({address.strip().lower() for address in recipients}))
    return Identity(
        fingerprint=_digest("fingerprint", who, whom, key),
        group=_digest("group", who, whom),
        key=key,
        recovery=recovery,
        sender=who,
        recipients=whom,
    )


def override_for(alarms: Mapping[str, Override], scopes: Iterable[str]) -> Override | None:
    """The rule for a mail: the first of `scopes` (its route's receiving address, then the groups that
    named its recipients, in order) that has one."""
    for scope in scopes:
        rule = alarms.get(scope.strip().lower())
        if rule is not None:
            return rule
    return None


def subject_key(subject: str) -> str:
    """The subject with readings masked and state phrases removed (see the module's docstring)."""
    text = subject[:MAX_SUBJECT_CHARS]
    for _ in range(len(text) + 2):  # after the first, a pass that changes the text shortens it
        previous, text = text, _normalise(text)
        if text == previous:
            break
    return text


def is_recovery(subject: str) -> bool:
    """Whether the subject says the alarm is over (see the module's docstring)."""
    words = _WORD.findall(subject[:MAX_SUBJECT_CHARS].casefold())
    for index, word in enumerate(words):
        if word in RECOVERY_WORDS and (index == 0 or words[index - 1] != "not"):
            return True
        if word in PROBLEM_WORDS and words[index + 1 : index + 2] == ["ended"]:
            now = words[index + 2 : index + 4]
            if not (len(now) == 2 and now[0] == "now" and now[1] in PROBLEM_WORDS):
                return True
    return False


def _override_key(text: str, override: Override | None) -> str | None:
    if override is None or override.key is None:
        return None
    found = override.key.search(text)
    value = " ".join((found.group("key") or "").casefold().split()) if found else ""
    return value or None


def _normalise(text: str) -> str:
    text = _STATE_COUNT.sub(r"\1", " ".join(text.casefold().split()))
    text = _READINGS.sub(_mask, text)
    words = _one_placeholder_per_run(_without_state_phrases(_one_placeholder_per_run(_WORD.findall(text))))
    return " ".join(words)


def _one_placeholder_per_run(words: list[str]) -> list[str]:
    return [w for i, w in enumerate(words) if not (w == PLACEHOLDER and i and words[i - 1] == PLACEHOLDER)]


def _without_state_phrases(words: list[str]) -> list[str]:
    kept: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word in STATE_WORDS:
            index += 1
            if words[index : index + 2] == ["in", PLACEHOLDER]:  # Zabbix: Resolved in 5m 3s
                index += 2
            if words[index : index + 1] == ["ended"]:  # PRTG: Down ended
                index += 1
            continue
        if word in ("now", "before") and words[index + 1 : index + 2] and words[index + 1] in STATE_WORDS:
            index += 1  # PRTG: (now: Up), (before: Down)
            continue
        kept.append(word)
        index += 1
    return kept


def _mask(match: re.Match[str]) -> str:
    return match.group(0) if (match.lastgroup or "").startswith("keep") else f" {PLACEHOLDER} "


def _digest(*parts: object) -> str:
    encoded = json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()[:FINGERPRINT_HEX]


_D = "[0-9]"
_START = r"(?<![\w.])"  # not in the middle of a word or a dotted number
_END = r"(?![\w]|[.,][0-9])"
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_WEEKDAY = (
    r"(?:mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?"
    r"|sat(?:urday)?|sun(?:day)?)"
)
_DAY = rf"{_D}{{1,2}}(?:st|nd|rd|th)?"
_UNITS = (
    r"ms|msecs?|[uµμ]s|ns|secs?|seconds?|mins?|minutes?|hrs?|hours?|days?|weeks?"
    r"|[kmgt]i?b|bytes?|kbit|mbit|gbit|bps|kbps|mbps|gbps|pps"
    r"|m?bar|psi|[kmh]?pa|m[va]|kv|[km]wh?|wh|va|kva|vac|vdc|[kmg]?hz|rpm|dbm|db|ppm|ppb|lux|lx"
    r"|m3/h|l/min|l/s|m/s|km/h"
)
_NUMBER = rf"{_D}+(?:[.,]{_D}+)?"
_ZONE = rf"(?:z|[+-]{_D}{{2}}(?::?{_D}{{2}})?)"
_GLUED = r"(?:ms|[uµμ]s|ns|[ywdhms])"  # durations: 5m, 3s, 1h30m, 250ms
_SPACED = rf"\s?(?:%|‰|°\s?[cfk]?(?!\w)|(?:{_UNITS})(?!\w))"  # 90 %, 23 °C, 12 ms, 9.1 bar
_RULES = (  # (name, pattern): tried in this order at each place; names starting with "keep" stay
    ("keep_mac", r"(?<!\w)[0-9a-f]{2}(?::[0-9a-f]{2}){5}(?!\w)|(?<!\w)[0-9a-f]{2}(?:-[0-9a-f]{2}){5}(?!\w)"),
    ("mask_uuid", r"(?<!\w)[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}(?!\w)"),
    (
        "mask_iso",
        rf"{_START}{_D}{{4}}-{_D}{{2}}-{_D}{{2}}"
        rf"(?:[t ]{_D}{{1,2}}:{_D}{{2}}(?::{_D}{{2}}(?:[.,]{_D}+)?)?{_ZONE}?)?{_END}"
        rf"|{_START}{_D}{{8}}t{_D}{{4,6}}(?:[.,]{_D}+)?z?{_END}"
        rf"|{_START}{_D}{{4}}/{_D}{{1,2}}/{_D}{{1,2}}{_END}",
    ),
    (
        "mask_date",
        rf"{_START}{_D}{{1,2}}\.{_D}{{1,2}}\.{_D}{{4}}{_END}|{_START}{_D}{{1,2}}-{_D}{{1,2}}-{_D}{{4}}{_END}"
        rf"|{_START}{_D}{{1,2}}/{_D}{{1,2}}/(?:{_D}{{4}}|{_D}{{2}}){_END}",
    ),
    (
        "mask_named_date",
        rf"(?<!\w)(?:{_WEEKDAY}\.?,?\s+)?"
        rf"(?:{_MONTH}\.?\s+{_DAY}(?:,?\s+{_D}{{4}})?|{_DAY}\.?\s+{_MONTH}\.?,?\s+{_D}{{4}}"
        rf"|{_MONTH}\.?\s+{_D}{{4}}){_END}"
        rf"|(?<!\w){_WEEKDAY}\.?,?(?=\s+{_D})",
    ),
    ("keep_ipv4", rf"{_START}{_D}{{1,3}}(?:\.{_D}{{1,3}}){{3}}(?::{_D}{{1,5}})?(?:/{_D}{{1,2}})?{_END}"),
    ("keep_dotted", rf"{_START}{_D}+(?:\.{_D}+){{2,}}{_END}"),
    (
        "mask_time",
        rf"(?<![\w.:]){_D}{{1,2}}:{_D}{{2}}(?::{_D}{{2}}(?:[.,]{_D}{{1,9}})?)?"
        rf"(?:\s?[ap]\.?m\.?(?!\w))?(?:\s?(?:z|utc|gmt|[+-]{_D}{{2}}:?{_D}{{2}})(?!\w))?(?![\w:])",
    ),
    ("mask_hex", r"(?<!\w)(?=[0-9a-f]*[0-9])[0-9a-f]{8,}(?!\w)"),
    ("keep_word", r"(?<!\w)[^\W\d_][\w-]*\d[\w-]*(?:\.\w+)*"),
    ("mask_duration", rf"{_START}{_NUMBER}{_GLUED}(?:{_D}+{_GLUED})*(?!\w)"),
    ("mask_unit", rf"{_START}{_NUMBER}{_SPACED}"),
    ("mask_decimal", rf"(?<![\w.,]){_D}+[.,]{_D}+{_END}"),
    ("mask_long", rf"{_START}{_D}{{5,}}{_END}"),
    ("mask_after", rf"(?:=\s*|:\s+){_NUMBER}(?:{_GLUED}(?!\w)|{_SPACED}|{_END})"),
)
_READINGS = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _RULES))
_STATE_COUNT = re.compile(rf"(?<![\w#])({'|'.join(sorted(STATE_WORDS))}):{_D}+(?!\w)")
_WORD = re.compile(r"[\w#]+(?:[-./@'][\w#]+)*|[<>≤≥≠]+")
