"""Mails built in the tests, byte for byte, where a fixture file would hide what matters."""

from __future__ import annotations

import base64


def b64_lines(data: bytes, newline: bytes = b"\r\n") -> bytes:
    return base64.encodebytes(data).replace(b"\n", newline)


def mail_with_attachment(data: bytes, newline: bytes = b"\r\n") -> bytes:
    """A text part and one base64 attachment `x.bin` holding `data`, lines ending in `newline`."""
    head = (
        b"From: a@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="BB"\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\nhello\r\n'
        b"--BB\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="x.bin"\r\n\r\n'
    ).replace(b"\r\n", newline)
    return head + b64_lines(data, newline) + newline + b"--BB--" + newline


def attachment_links(text: str) -> list[str]:
    """The links in a relayed mail's text that lead to its attachments: every URL but the links that
    mute the alarm, which a first mail carries (app/mute_page.py)."""
    return [w for w in text.split() if w.startswith(("https://", "http://")) and "/mute/" not in w]
