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

CHUNK = 6 * 1024 * 1024  # encoded bytes decoded per step; a multiple of 4 and of typical line lengths

_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_BASE64 = bytes(byte for byte in range(256) if byte not in _BASE64_ALPHABET)


def decoded_chunks(view: memoryview, encoding: str) -> Iterator[bytes]:
    """Yield the decoded bytes of an encoded body, CHUNK encoded bytes at a time."""
    encoding = encoding.strip().lower()
    if encoding == "base64":
        yield from _base64_chunks(view)
    elif encoding == "quoted-printable":
        yield from _line_chunks(view, binascii.a2b_qp)
    else:  # 7bit, 8bit, binary and unknown encodings are taken as they are
        for start in range(0, len(view), CHUNK):
            yield bytes(view[start : start + CHUNK])


def decode_all(view: memoryview, encoding: str) -> bytes:
    return b"".join(decoded_chunks(view, encoding))


def decode_text(view: memoryview, encoding: str, charset: str | None) -> str:
    """A text body as Unicode; unknown or wrong charsets fall back the way flanker does (guessing)."""
    return str(charsets.convert_to_unicode(charset or "us-ascii", decode_all(view, encoding)))


class DecodingReader(io.RawIOBase):
    """A read-only file object over `decoded_chunks`, for boto3's managed (multipart) upload."""

    def __init__(self, view: memoryview, encoding: str) -> None:
        self._chunks = decoded_chunks(view, encoding)
        self._buffer = b""
        self.size = 0  # decoded bytes handed out so far

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = chunk
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        self.size += count
        return count


def _base64_chunks(view: memoryview) -> Iterator[bytes]:
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
