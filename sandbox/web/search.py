"""The mail list's search, in the manner of Mailpit's: words, each of which must match.

A plain word (or a "quoted phrase") matches the sender, the recipients, the subject, the body text, the
mail's state (`distributed`, `notice: virus`, `folded` and its detail, with alarm folding's decision and
incident: `state:folded`, or an incident's id), its Message-ID or its key, ignoring case.
`from:`, `to:`, `subject:`, `state:` limit a word to one of them; `has:attachment` and `has:links` keep
mails with attachments or relayed links; a leading `-` excludes. A query with `annotation.` in it is an
X-Ray filter expression over the function's trace annotations instead (see `traces`), as in the console.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

FIELDS = ("from", "to", "subject", "state")
FLAGS = ("has:attachment", "has:attachments", "has:links", "has:link")


class Searchable(Protocol):
    """What a mail offers the search: each field's text, and the flags."""

    def field(self, name: str) -> str: ...

    @property
    def attachments(self) -> int: ...

    @property
    def links(self) -> int: ...


@dataclass(frozen=True)
class Term:
    text: str  # lower-cased
    field: str = ""  # "" for anywhere, else one of FIELDS, or "flag"
    exclude: bool = False


def is_annotation_query(query: str) -> bool:
    return "annotation." in query


def terms(query: str) -> list[Term]:
    """The query's terms; quotes group a phrase (an unbalanced quote counts as a character); a backslash
    is a character like any other (`C:\\temp` is searched as typed, not as shlex's escape)."""
    lexer = shlex.shlex(query, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.escape = ""
    try:
        words = list(lexer)
    except ValueError:
        words = query.split()
    found = []
    for word in words:
        exclude = len(word) > 1 and word[0] in "-!"
        lowered = (word[1:] if exclude else word).lower()
        if lowered in FLAGS:
            found.append(Term(lowered.rstrip("s").removeprefix("has:"), "flag", exclude))
            continue
        name, colon, value = lowered.partition(":")
        if colon and name in FIELDS and value:
            found.append(Term(value, name, exclude))
        elif lowered:
            found.append(Term(lowered, "", exclude))
    return found


def _hit(mail: Searchable, term: Term) -> bool:
    if term.field == "flag":
        return (mail.attachments if term.text == "attachment" else mail.links) > 0
    names = (term.field,) if term.field else (*FIELDS, "body", "message-id", "key")
    return any(term.text in mail.field(name).lower() for name in names)


def matcher(query: str) -> Callable[[Searchable], bool]:
    """A predicate for the mails that match every term of `query` (everything for an empty one)."""
    wanted = terms(query)
    return lambda mail: all(_hit(mail, term) != term.exclude for term in wanted)
