"""app/mail/decode.py: base64 and quoted-printable bodies, whole or read in chunks, as sloppy encoders
write them."""

from __future__ import annotations

import base64
import binascii
import os

import pytest

from app.mail import decode
from tests.support.mails import b64_lines


@pytest.mark.parametrize("size", [0, 1, 2, 3, 57, 1000, decode.CHUNK + 5])
def test_base64_chunks_match_a_plain_decode(size: int) -> None:
    data = os.urandom(size)
    encoded = b64_lines(data)
    assert decode.decode_all(memoryview(encoded), "base64") == data


def test_base64_is_decoded_leniently() -> None:
    # Missing padding, stray characters and odd line lengths, as sloppy encoders write them.
    assert decode.decode_all(memoryview(b"Y29udGVudAo"), "Base64") == b"content\n"
    assert decode.decode_all(memoryview(b"Y29u\r\ndGV*udAo=\r\n"), "base64") == b"content\n"


def test_quoted_printable_across_chunk_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "CHUNK", 16)
    text = "Grüße aus der Leitwarte, Temperatur 97 °C und so weiter. " * 5
    encoded = binascii.b2a_qp(text.encode("utf-8"))
    assert decode.decode_all(memoryview(encoded), "quoted-printable").decode("utf-8") == text


def test_reader_counts_and_returns_every_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "CHUNK", 1024)
    data = os.urandom(10_000)
    reader = decode.DecodingReader(memoryview(b64_lines(data)), "base64")
    out = b""
    while chunk := reader.read(777):
        out += chunk
    assert out == data
    assert reader.size == len(data)


def test_unknown_charset_falls_back_without_failing() -> None:
    text = decode.decode_text(memoryview("Grüße".encode()), "8bit", "x-no-such-charset")
    assert text == "Grüße"


@pytest.mark.parametrize("line_length", [76, 73, 64, 1])
def test_base64_with_any_line_length_across_small_chunks(
    monkeypatch: pytest.MonkeyPatch, line_length: int
) -> None:
    monkeypatch.setattr(decode, "CHUNK", 100)
    data = os.urandom(5000)
    flat = base64.b64encode(data)
    encoded = b"\r\n".join(flat[i : i + line_length] for i in range(0, len(flat), line_length))
    assert decode.decode_all(memoryview(encoded), "base64") == data
    reader = decode.DecodingReader(memoryview(encoded), "base64")
    assert reader.read(1000) + reader.read(10_000) == data
    assert reader.read(10) == b""
