"""Abuse limits: what a hostile sender can make the relay do is bounded, and what it sends is inert."""

from __future__ import annotations

import base64
import html
import io
import zipfile
from typing import Any

import pytest

from app import relay as relay_module
from app.mail.parse import MAX_DEPTH, MAX_HEADER_BYTES, MAX_PARTS
from tests.support import hostile
from tests.support.fuzzing import relay
from tests.support.world import World, local_world

CODE = "Email_Rxers_Code:[guard@example.com]:Email_Rxers_Code:"
KEY = "incoming/abuse.eml"


def with_attachments(count: int) -> bytes:
    leaves = tuple(
        hostile.Leaf("application/octet-stream", f"f{n}.bin", b"x", "base64") for n in range(count)
    )
    return hostile.mail(hostile.Multipart("mixed", leaves), "many", "plc", CODE)


def nested(levels: int) -> bytes:
    """A mail whose text part sits inside `levels` nested multiparts (the mail itself is the first)."""
    node: hostile.Node = hostile.Leaf("text/plain", None, CODE.encode(), "7bit")
    for _ in range(levels):
        node = hostile.Multipart("mixed", (node,))
    lines = [
        "X-SES-Spam-Verdict: PASS",
        "X-SES-Virus-Verdict: PASS",
        "From: plc-7@plant.example.com",
        "Subject: deep",
        "MIME-Version: 1.0",
        *hostile.render(node),
    ]
    return "\r\n".join(lines).encode()


def refused(world: World, raw: bytes) -> str:
    result = relay(world, KEY, raw)
    assert result.outcome == "fallback"
    assert world.keys(world.attachments) == [], "nothing may be stored for a refused mail"
    return str(result.notices[0]["reason"])


def test_attachments_up_to_the_part_cap_are_distributed(world: World) -> None:
    result = relay(world, KEY, with_attachments(MAX_PARTS - 3))  # + root, text part, inner multipart
    assert result.outcome == "distributed"
    assert len(world.keys(world.attachments)) == MAX_PARTS - 3 + 1  # and the manifest


def test_one_part_over_the_cap_is_refused_as_too_large(world: World) -> None:
    assert refused(world, with_attachments(MAX_PARTS - 2)) == "too_large"


def test_nesting_up_to_the_depth_cap_is_distributed(world: World) -> None:
    assert relay(world, KEY, nested(MAX_DEPTH)).outcome == "distributed"


def test_nesting_deeper_than_the_cap_is_refused_as_malformed(world: World) -> None:
    assert refused(world, nested(MAX_DEPTH + 1)) == "malformed"


def test_a_header_block_over_the_cap_is_refused_unread(world: World) -> None:
    filler = "".join(f"X-Filler-{n}: {'y' * 990}\r\n" for n in range(MAX_HEADER_BYTES // 1000 + 10))
    raw = f"X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\nFrom: plc-7@plant.example.com\r\n{filler}\r\n{CODE}\r\n".encode()
    assert refused(world, raw) == "malformed"


def test_a_single_giant_subject_is_distributed_or_refused_never_crashes(world: World) -> None:
    raw = f"X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\nFrom: plc-7@plant.example.com\r\nSubject: {'S' * 200_000}\r\n\r\n{CODE}\r\n".encode()
    result = relay(world, KEY, raw)
    assert result.outcome in {"distributed", "fallback"}


def test_more_recipients_than_max_recipients_are_refused(world: World) -> None:
    entries = ",".join(f"r{n}@example.com" for n in range(51))
    raw = f"X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\nFrom: plc-7@plant.example.com\r\nSubject: many\r\n\r\nEmail_Rxers_Code:[{entries}]:Email_Rxers_Code:\r\n"
    result = relay(world, KEY, raw.encode())
    assert result.outcome == "fallback"
    assert result.notices[0]["reason"] == "too_many_recipients"


def test_a_mail_over_the_size_limit_is_refused_without_reading_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_module, "MAX_RAW_BYTES", 10_000)
    raw = with_attachments(1) + b"\r\n" + b"z" * 20_000
    assert refused(world, raw) == "too_large"


ZIP_BOMBISH = io.BytesIO()
with zipfile.ZipFile(ZIP_BOMBISH, "w", zipfile.ZIP_DEFLATED) as archive:
    archive.writestr("zeros.bin", b"\0" * 5_000_000)  # 5 MB of zeros in a few KB
NOT_A_PNG = b"\x89PNG\r\n\x1a\n" + b"\xff" * 64  # a PNG signature over garbage


def test_archives_and_images_are_stored_byte_for_byte_and_never_opened(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the relay must not open, decompress or execute attachments")

    # botocore reads its (gzipped) service models when clients are first made: make them beforehand
    # (a mail with an attachment: its link needs the key ring from Secrets Manager as well).
    warm_up = hostile.Leaf("text/plain", "warm-up.txt", b"hello", "base64")
    assert (
        relay(world, "incoming/warm-up.eml", hostile.mail(warm_up, "w", "plc", CODE)).outcome == "distributed"
    )

    import gzip
    import os
    import subprocess
    import tarfile

    for target, name in [
        (zipfile, "ZipFile"),
        (tarfile, "open"),
        (gzip, "GzipFile"),
        (subprocess, "Popen"),
        (os, "system"),
    ]:
        monkeypatch.setattr(target, name, forbidden)
    leaves = (
        hostile.Leaf("application/zip", "logs.zip", ZIP_BOMBISH.getvalue(), "base64"),
        hostile.Leaf("image/png", "snapshot.png", NOT_A_PNG, "base64"),
        hostile.Leaf("application/x-msdownload", "update.exe", b"MZ\x90\x00", "base64"),
    )
    result = relay(world, KEY, hostile.mail(hostile.Multipart("mixed", leaves), "files", "plc", CODE))
    assert result.outcome == "distributed"
    stored = {
        key.rsplit("/", 1)[1]: world.s3.get_object(Bucket=world.attachments, Key=key)
        for key in world.keys(world.attachments)
        if "manifest" not in key
    }
    assert stored["logs.zip"]["Body"].read() == ZIP_BOMBISH.getvalue()
    assert stored["logs.zip"]["ContentType"] == "application/zip"
    assert stored["snapshot.png"]["Body"].read() == NOT_A_PNG
    assert stored["update.exe"]["Body"].read() == b"MZ\x90\x00"
    for name in ("logs.zip", "snapshot.png", "update.exe"):
        assert stored[name]["ContentDisposition"].startswith("attachment;"), "downloads, never inline"


def test_markup_in_filenames_and_subject_is_escaped_in_the_html_part(world: World) -> None:
    name = "Tom & Jerry's <img src=x onerror=alert(1)>.pdf"
    subject = "<script>alert('subject')</script>"
    body = hostile.Multipart(
        "alternative",
        (
            hostile.Leaf("text/plain", None, CODE.encode(), "7bit"),
            hostile.Leaf("text/html", None, f"<p>{CODE}</p>".encode(), "7bit"),
        ),
    )
    tree = hostile.Multipart("mixed", (body, hostile.Leaf("application/pdf", name, b"%PDF-1.4", "base64")))
    result = relay(world, KEY, hostile.mail(tree, subject, "<b>plc</b>", ""))
    assert result.outcome == "distributed"
    message = result.sent[0].message
    markup = message.get_body(("html",))
    assert markup is not None
    document = markup.get_content()
    [stored_name] = [k.rsplit("/", 1)[1] for k in world.keys(world.attachments) if k.endswith(".pdf")]
    assert f">{html.escape(stored_name)}</a>" in document
    assert "&amp;" in document
    for raw_markup in ("<img", "onerror=alert(1)>", "<script", "<b>plc"):
        assert raw_markup not in document
    assert str(message["Subject"]) == subject  # carried as header text, never as markup


def test_undecodable_bytes_in_a_text_part_do_not_cost_the_mail(world: World) -> None:
    """Bytes no charset fits (binary data labelled text/plain; charset=utf-8) are replaced, not fatal."""
    tree = hostile.Leaf("text/plain", None, b"\x00\x80", "base64")
    result = relay(world, KEY, hostile.mail(tree, "binary text", "plc", CODE))
    assert result.outcome == "distributed"


def test_base64_garbage_in_an_attachment_is_stored_not_fatal(world: World) -> None:
    raw = hostile.mail(hostile.Leaf("application/octet-stream", "x.bin", b"ok", "base64"), "g", "plc", CODE)
    raw = raw.replace(base64.b64encode(b"ok"), b"!!not*base64~~")
    assert relay(world, KEY, raw).outcome in {"distributed", "fallback"}


@pytest.mark.parametrize("max_recipients", ["1", "3"])
def test_the_recipient_cap_follows_the_setting(max_recipients: str) -> None:
    entries = ",".join(f"r{n}@example.com" for n in range(3))
    raw = f"X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\nFrom: plc-7@plant.example.com\r\nSubject: s\r\n\r\nEmail_Rxers_Code:[{entries}]:Email_Rxers_Code:\r\n"
    with local_world({"MaxRecipients": max_recipients}) as world:
        result = relay(world, KEY, raw.encode())
        assert result.outcome == ("distributed" if max_recipients == "3" else "fallback")
