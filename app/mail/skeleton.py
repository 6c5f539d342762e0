"""A small stand-in for a large mail, so flanker finds the MIME structure without scanning megabytes.

flanker's scanner runs a regular expression over every character of the mail and keeps a Unicode copy of
it, which costs seconds and several times the mail's size for a 40 MB camera upload. Base64 bodies cannot
contain MIME structure, so large ones are replaced by a short placeholder before flanker sees the text;
`OffsetMap` turns flanker's positions in the skeleton back into positions in the raw bytes, from which the
relay decodes bodies itself.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

ELIDE_AT_LEAST = 16 * 1024  # smaller bodies are cheaper to keep than to elide
PLACEHOLDER = b"AAAA"  # valid base64, so even a decode by mistake cannot fail

HEADER_END = re.compile(rb"\r?\n\r?\n")  # the blank line that ends a header block
_BASE64_CTE = re.compile(rb"^content-transfer-encoding:[ \t]*base64[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_MAX_HEADER_BLOCK = 64 * 1024


@dataclass(frozen=True)
class _Cut:
    skeleton_start: int  # where the placeholder starts in the skeleton
    original_start: int  # where the elided body starts in the raw mail
    original_end: int  # exclusive


class OffsetMap:
    """Maps skeleton offsets to raw-mail offsets across the elided bodies."""

    def __init__(self, cuts: list[_Cut]) -> None:
        self._cuts = cuts
        self._starts = [cut.skeleton_start for cut in cuts]

    def to_original(self, position: int) -> int:
        index = bisect.bisect_right(self._starts, position) - 1
        if index < 0:
            return position
        cut = self._cuts[index]
        offset = position - cut.skeleton_start
        if offset < len(PLACEHOLDER):
            # Inside a placeholder: its start maps to the body's start, anything later to its end.
            return cut.original_start if offset == 0 else cut.original_end
        return cut.original_end + offset - len(PLACEHOLDER)


def build(raw: bytes) -> tuple[bytes, OffsetMap]:
    """Return the skeleton of `raw` and the map back to it; small mails come back unchanged."""
    cuts: list[_Cut] = []
    pieces: list[bytes] = []
    copied = 0  # raw[:copied] is already in pieces
    skeleton_length = 0
    dash_lines = _dash_lines(raw)
    for number, header_start in enumerate([0, *(end + 1 for _, end in dash_lines)]):
        header_end = HEADER_END.search(raw, header_start, header_start + _MAX_HEADER_BLOCK)
        if header_end is None or not _BASE64_CTE.search(raw, header_start, header_end.start()):
            continue
        body_start = header_end.end()
        body_end = _body_end(raw, body_start, dash_lines[number:])
        if body_end - body_start < ELIDE_AT_LEAST or body_start < copied:
            continue
        pieces.append(raw[copied:body_start])
        skeleton_length += body_start - copied
        cuts.append(_Cut(skeleton_length, body_start, body_end))
        pieces.append(PLACEHOLDER)
        skeleton_length += len(PLACEHOLDER)
        copied = body_end
    if not cuts:
        return raw, OffsetMap([])
    pieces.append(raw[copied:])
    return b"".join(pieces), OffsetMap(cuts)


def _dash_lines(raw: bytes) -> list[tuple[int, int]]:
    """(line feed before, line feed after) of every line starting with `--`: one pass over the mail."""
    lines = []
    position = raw.find(b"\n--")
    while position != -1:
        line_end = raw.find(b"\n", position + 1)
        if line_end == -1:
            break
        lines.append((position, line_end))
        position = raw.find(b"\n--", line_end)
    return lines


def _body_end(raw: bytes, start: int, later_dash_lines: list[tuple[int, int]]) -> int:
    """End of a body: the line break before the next `--` line, or the end of the mail."""
    position = next((before for before, _ in later_dash_lines if before >= start), -1)
    if position == -1:
        return len(raw)
    return position - 1 if position > start and raw[position - 1 : position] == b"\r" else position
