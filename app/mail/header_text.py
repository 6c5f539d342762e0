"""Header text that stays one harmless line: no line breaks of any kind, no controls, no bidi tricks.

Python's e-mail policy refuses a header value that `str.splitlines` would split, and that includes
U+0085 (NEL, also a raw 0x85 byte read as Latin-1), U+2028 and U+2029, not only CR and LF: a subject
with one of them made the rewrite raise and sent the mail to the DLQ. Bidirectional overrides
(U+202E makes `gpj.exe` read `exe.jpg`) and zero-width characters can make a display name or a subject
say something other than what it holds, so they are removed.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and every separator splitlines() breaks at (U+0085 is in C1; U+2028/29 too).
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Bidi embeddings, overrides and isolates, marks, and zero-width characters.
_INVISIBLE = re.compile(r"[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def one_line(value: str) -> str:
    """`value` as a single line without controls or invisible formatting, trimmed."""
    return _BREAKS.sub(" ", _INVISIBLE.sub("", value)).strip()
