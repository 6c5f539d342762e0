"""Content-transfer decoding of body ranges of the raw mail, whole or as a stream of chunks.

The relay decodes bodies itself (flanker only finds the structure, see `skeleton`) so that a large
attachment never exists twice in memory: the raw mail holds it encoded once, and the upload reads it
decoded a few megabytes at a time.
"""

from __future__ import annotations

import binascii
import io
from collections.abc import Callable, Iterator

from flanker.mime.message import charsets
from flanker.mime.message.errors import MimeError

CHUNK = 6 * 1024 * 1024  # encoded bytes decoded per step; a multiple of 4 and of typical line lengths

# Older DVRs and PLCs label uuencoded parts so; the body is `begin <mode> <name>`, lines, `end`.
UUENCODE = frozenset({"x-uuencode", "uuencode", "x-uue", "uue"})

_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_BASE64 = bytes(byte for byte in range(256) if byte not in _BASE64_ALPHABET)


def decoded_chunks(view: memoryview, encoding: str) -> Iterator[bytes]:
    """Yield the decoded bytes of an encoded body, CHUNK encoded bytes at a time."""
    encoding = encoding.strip().lower()
    if encoding == "base64":
        yield from _base64_chunks(view)
    elif encoding == "quoted-printable":
        yield from _line_chunks(view, binascii.a2b_qp)
    elif encoding in UUENCODE:
        yield from _line_chunks(view, _uudecode_lines)
    else:  # 7bit, 8bit, binary and unknown encodings are taken as they are
        for start in range(0, len(view), CHUNK):
            yield bytes(view[start : start + CHUNK])


def decode_all(view: memoryview, encoding: str) -> bytes:
    return b"".join(decoded_chunks(view, encoding))


def decode_text(view: memoryview, encoding: str, charset: str | None) -> str:
    """A text body as Unicode; unknown or wrong charsets fall back the way flanker does (guessing),
    and bytes no charset fits are replaced rather than costing the mail its distribution."""
    data = decode_all(view, encoding)
    try:
        return str(charsets.convert_to_unicode(charset or "us-ascii", data))
    except (MimeError, UnicodeError, LookupError, ValueError):
        return data.decode("utf-8", "replace")


class DecodingReader(io.RawIOBase):
    """A read-only, non-seekable file object over `decoded_chunks`, for boto3's managed upload.

    `read(n)` returns exactly n bytes until the end, as the transfer manager expects of a file; only
    one decoded chunk and the part being assembled exist at any time.
    """

    def __init__(self, view: memoryview, encoding: str) -> None:
        self._chunks = decoded_chunks(view, encoding)
        self._chunk = memoryview(b"")
        self.size = 0  # decoded bytes handed out so far

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        wanted = None if size is None or size < 0 else size
        pieces: list[memoryview] = []
        count = 0
        while wanted is None or count < wanted:
            if not self._chunk:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._chunk = memoryview(chunk)
            take = len(self._chunk) if wanted is None else min(len(self._chunk), wanted - count)
            pieces.append(self._chunk[:take])
            self._chunk = self._chunk[take:]
            count += take
        self.size += count
        return pieces[0].tobytes() if len(pieces) == 1 else b"".join(pieces)

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)


def _base64_chunks(view: memoryview) -> Iterator[bytes]:
    """Decode base64 in chunks cut at line ends (no copy); on anything unusual, fall back to the
    lenient decoder for the rest."""
    start = 0
    total = len(view)
    while start < total:
        end = min(start + CHUNK, total)
        if end < total:
            newline = _rfind_newline(view, start, end)
            if newline == -1:
                break
            end = newline + 1
        try:
            decoded = binascii.a2b_base64(view[start:end])
        except binascii.Error:
            break  # lines of odd length, missing padding, ...: decode the rest leniently
        yield decoded
        start = end
    yield from _lenient_base64_chunks(view[start:])


def _rfind_newline(view: memoryview, start: int, end: int) -> int:
    """The last line feed in view[start:end] (searching only its tail), or -1."""
    tail_start = max(start, end - 4096)
    position = bytes(view[tail_start:end]).rfind(b"\n")
    return -1 if position == -1 else tail_start + position


def _lenient_base64_chunks(view: memoryview) -> Iterator[bytes]:
    """Decode base64 leniently: skip non-alphabet bytes, carry partial quanta, repair bad padding."""
    carry = b""
    for start in range(0, len(view), CHUNK):
        data = carry + bytes(view[start : start + CHUNK]).translate(None, _NOT_BASE64)
        usable = len(data) - len(data) % 4
        carry = data[usable:]
        if usable:
            yield binascii.a2b_base64(data[:usable])
    if len(carry) > 1:  # a single leftover character carries less than a byte
        yield binascii.a2b_base64(carry + b"=" * (-len(carry) % 4))


def _line_chunks(view: memoryview, decode: Callable[[bytes], bytes]) -> Iterator[bytes]:
    """Decode line-oriented encodings in chunks cut at line ends, so no escape is split."""
    start = 0
    total = len(view)
    while start < total:
        end = min(start + CHUNK, total)
        if end < total:
            window = bytes(view[start:end])
            newline = window.rfind(b"\n")
            if newline != -1:
                end = start + newline + 1
            elif b"=" in window[-2:]:  # a line longer than a chunk: never cut through an escape
                end = start + window.rindex(b"=", len(window) - 2)
        yield decode(bytes(view[start:end]))
        start = end


def _uudecode_lines(data: bytes) -> bytes:
    """Decode whole uuencoded lines; `begin`/`end` lines and lines that are not uuencoding are skipped."""
    decoded = bytearray()
    for line in data.splitlines():
        if not line.strip() or line.startswith((b"begin ", b"end")):
            continue
        length = (line[0] - 32) & 63  # the first character gives the line's decoded length
        if length == 0:
            continue
        encoded = line[: 1 + (length + 2) // 3 * 4]  # some encoders pad lines past their length
        try:
            decoded += binascii.a2b_uu(encoded)
        except binascii.Error:
            continue
    return bytes(decoded)
