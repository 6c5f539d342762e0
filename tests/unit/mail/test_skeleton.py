"""app/mail/skeleton.py: large base64 bodies elided for flanker, and offsets mapped back to the raw mail."""

from __future__ import annotations

import base64
import os

import pytest

from app.mail import skeleton
from tests.support.mails import mail_with_attachment


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_skeleton_elides_large_base64_bodies_and_maps_offsets_back(newline: bytes) -> None:
    data = os.urandom(200_000)
    raw = mail_with_attachment(data, newline)
    stripped, offsets = skeleton.build(raw)
    assert len(stripped) < 1000
    start = stripped.index(skeleton.PLACEHOLDER)
    end = start + len(skeleton.PLACEHOLDER)
    body = raw[offsets.to_original(start) : offsets.to_original(end)]
    assert base64.b64decode(body) == data
    # Positions after the elided body shift by exactly what was cut out.
    tail = stripped.index(b"--BB--")
    assert raw[offsets.to_original(tail) :].startswith(b"--BB--")


def test_small_mails_are_left_alone() -> None:
    raw = mail_with_attachment(b"small")
    stripped, offsets = skeleton.build(raw)
    assert stripped is raw
    assert offsets.to_original(123) == 123
