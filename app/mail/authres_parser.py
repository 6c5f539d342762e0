"""A small reader of `Authentication-Results` (RFC 8601) and `Received-SPF` (RFC 7208) header values.

Written here rather than taken from a library because SES writes its SPF result the way `Received-SPF`
does: `spf=pass (comment) client-ip=...; envelope-from=...; helo=...;`, properties as `;`-separated
pairs that a strict RFC 8601 parser rejects as unknown methods. Here, a pair whose key is not a known
method belongs to the result before it. Comments and quoted strings are lexed as what they are, so no
text inside them is ever read as a result (a MAIL FROM of `"x;dkim=pass"@evil.example` stays one value).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# RFC 8601 and IANA's "Email Authentication Methods" registry: only these start a new result.
METHODS = frozenset(
    {"arc", "auth", "dkim", "dkim-adsp", "dmarc", "dnswl", "domainkeys", "iprev", "rrvs", "sender-id"}
    | {"smime", "spf", "vbr", "x-tls"}
)


@dataclass(frozen=True)
class Result:
    method: str  # lower-case, e.g. "dkim"
    result: str  # lower-case, e.g. "pass"
    properties: dict[str, str] = field(default_factory=dict)  # lower-case keys: "header.d", "envelope-from"


@dataclass(frozen=True)
class Header:
    authserv_id: str  # lower-case
    results: tuple[Result, ...]


def parse_authentication_results(value: str) -> Header:
    """One `Authentication-Results` value; results that do not parse are left out, never guessed."""
    sections = _sections(value)
    if not sections[0] or sections[0][0] == EQUALS:
        return Header(authserv_id="", results=())
    authserv_id = sections[0][0].lower()
    results: list[Result] = []
    for section in sections[1:]:
        pairs = _pairs(section)
        if not pairs:
            continue
        key, result = pairs[0]
        method = key.partition("/")[0]  # "dkim/1" names a method version
        if method in METHODS:
            results.append(Result(method, result.lower(), dict(pairs[1:])))
        elif results:  # SES's `; envelope-from=...;` after `spf=pass ...`
            results[-1].properties.update(pairs)
    return Header(authserv_id=authserv_id, results=tuple(results))


def parse_received_spf(value: str) -> Result | None:
    """`pass (comment) client-ip=...; envelope-from=...; helo=...;` as an `spf` result."""
    sections = _sections(value)
    head = sections[0]
    if not head or head[0] == EQUALS or (len(head) > 1 and head[1] == EQUALS):
        return None
    properties: dict[str, str] = {}
    for section in [head[1:], *sections[1:]]:
        properties.update(_pairs(section))
    return Result("spf", head[0].lower(), properties)


class _Equals(str):
    """The `=` operator, distinct from a quoted string whose text is "="."""


EQUALS = _Equals("=")


def _pairs(tokens: list[str]) -> list[tuple[str, str]]:
    """The `key=value` pairs of one section, up to the first token that does not fit the pattern."""
    pairs: list[tuple[str, str]] = []
    for position in range(0, len(tokens) - 2, 3):
        key, operator, value = tokens[position : position + 3]
        if operator is not EQUALS or key is EQUALS or value is EQUALS:
            break
        pairs.append((key.lower(), value))
    return pairs


def _sections(value: str) -> list[list[str]]:
    """Words split at `;` (a word runs atoms and quoted strings together), with `=` as EQUALS and
    comments dropped. Quoted text never becomes a separator or an operator."""
    sections: list[list[str]] = [[]]
    word: list[str] = []
    in_word = False
    position = 0

    def end_word() -> None:
        nonlocal in_word
        if in_word:
            sections[-1].append("".join(word))
            word.clear()
            in_word = False

    while position < len(value):
        char = value[position]
        if char == "(":
            end_word()
            position = _skip_comment(value, position)
            continue
        if char == '"':
            text, position = _quoted(value, position)
            word.append(text)
            in_word = True
            continue
        if char.isspace() or char in ";=":
            end_word()
            if char == ";":
                sections.append([])
            elif char == "=":
                sections[-1].append(EQUALS)
        else:
            word.append(char)
            in_word = True
        position += 1
    end_word()
    return sections


def _skip_comment(value: str, position: int) -> int:
    """The position after a (possibly nested) comment that starts at `position`."""
    depth = 0
    while position < len(value):
        char = value[position]
        if char == "\\":
            position += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return position + 1
        position += 1
    return position


def _quoted(value: str, position: int) -> tuple[str, int]:
    """The text of a quoted string starting at `position` (escapes resolved) and the position after it."""
    text: list[str] = []
    position += 1
    while position < len(value):
        char = value[position]
        if char == "\\" and position + 1 < len(value):
            text.append(value[position + 1])
            position += 2
            continue
        if char == '"':
            return "".join(text), position + 1
        text.append(char)
        position += 1
    return "".join(text), position
