"""The benchmark's mails: what a camera or data logger sends, at the sizes that decide memory and time.

Attachments are random bytes (incompressible, like JPEG or video) in base64 at 76 characters a line with
CRLF line ends, as SES stores mail received over SMTP. The text part carries a valid recipient code, so
the function really distributes each mail instead of turning it into a fallback notice.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass

KB = 1024
MB = 1024 * 1024
SES_MAX_MAIL_BYTES = 40 * MB  # the function's own limit (app.relay) uses the same binary megabytes
SENDER = "camera-7@plant.example.com"
RECIPIENT = "ops@example.com"
BOUNDARY_PREFIX = "bench-boundary-"
_MAX_MAIL_HEADROOM = 4 * KB  # headers and the text part of the 40 MB mail
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kKmM]?)[bB]?$")


@dataclass(frozen=True)
class Case:
    """One mail shape; the targets say which ratios the issue's targets apply to."""

    name: str
    attachment_sizes: tuple[int, ...]  # decoded bytes of each attachment
    time_target: bool = False  # function time <= 1.5x the raw limit
    memory_target: bool = False  # function peak memory <= 3x the mail size


def single(size: int, *, time_target: bool = False, memory_target: bool = False) -> Case:
    return Case(_size_name(size), (size,), time_target, memory_target)


def largest_mail() -> Case:
    """One attachment as large as a mail SES still accepts can carry (raw mail just under 40 MB)."""
    return Case("40MB-mail", (decoded_size_for(SES_MAX_MAIL_BYTES - _MAX_MAIL_HEADROOM),), memory_target=True)


def many_attachments(count: int = 50, size: int = 100 * KB) -> Case:
    return Case(f"{count}x{_size_name(size)}", (size,) * count)


DEFAULT_SIZES = "1,10,30,max,many"


def cases_from(spec: str) -> list[Case]:
    """`--sizes`: comma-separated attachment sizes (MB unless suffixed k/K), `max` and `many`."""
    cases: list[Case] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        if token == "max":  # noqa: S105 - a size keyword, not a password
            cases.append(largest_mail())
        elif token == "many":  # noqa: S105
            cases.append(many_attachments())
        else:
            size = parse_size(token)
            # The targets: time at 10 and 30 MB, memory at 10, 30 MB (and the 40 MB mail).
            cases.append(single(size, time_target=size in (10 * MB, 30 * MB), memory_target=size >= 10 * MB))
    if not cases:
        raise ValueError("no sizes given")
    return cases


def parse_size(token: str) -> int:
    match = _SIZE.match(token)
    if not match:
        raise ValueError(f"{token!r} is not a size (examples: 10, 64k, 1.5M, max, many)")
    number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * (KB if unit == "k" else MB))
    if size <= 0:
        raise ValueError(f"{token!r} is not a positive size")
    return size


def decoded_size_for(encoded_budget: int) -> int:
    """The largest attachment whose base64 lines (76 chars + CRLF per 57 bytes) fit the budget."""
    return encoded_budget // 78 * 57


def encode_base64(data: bytes) -> bytes:
    """MIME base64: 76 characters a line, CRLF line ends."""
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


@dataclass(frozen=True)
class Mail:
    raw: bytes
    boundary: str
    filenames: tuple[str, ...]
    attachment_sizes: tuple[int, ...]


def build(case: Case, tag: str = "") -> Mail:
    """The raw mail of a case; `tag` makes Message-ID and boundary unique per generated mail."""
    tag = tag or os.urandom(6).hex()
    boundary = f"{BOUNDARY_PREFIX}{tag}"
    filenames = tuple(f"recording-{n + 1:02d}.bin" for n in range(len(case.attachment_sizes)))
    head = (
        f"Return-Path: <{SENDER}>\r\n"
        "X-SES-Spam-Verdict: PASS\r\n"  # SES's block comes first: the relay reads verdicts only there
        "X-SES-Virus-Verdict: PASS\r\n"
        f"From: Camera 7 <{SENDER}>\r\n"
        "To: inbox-7f3k9q@relay.example.com\r\n"
        f"Subject: Motion recording ({case.name})\r\n"
        "Date: Sun, 29 Nov 2026 09:58:00 +0000\r\n"
        f"Message-ID: <bench-{case.name}-{tag}@plant.example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n'
        "\r\n"
        "This is a multi-part message in MIME format.\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 7bit\r\n"
        "\r\n"
        f"Motion detected on camera 7 at 09:58:00; {len(filenames)} recording(s) attached.\r\n"
        f"Email_Rxers_Code:[{RECIPIENT}]:Email_Rxers_Code:\r\n"
    ).encode()
    chunks = [head]
    for filename, size in zip(filenames, case.attachment_sizes, strict=True):
        chunks.append(
            (
                f"\r\n--{boundary}\r\n"
                f'Content-Type: application/octet-stream; name="{filename}"\r\n'
                "Content-Transfer-Encoding: base64\r\n"
                f'Content-Disposition: attachment; filename="{filename}"\r\n'
                "\r\n"
            ).encode()
        )
        chunks.append(encode_base64(os.urandom(size)).removesuffix(b"\r\n"))
    chunks.append(f"\r\n--{boundary}--\r\n".encode())
    raw = b"".join(chunks)
    del chunks
    return Mail(raw, boundary, filenames, case.attachment_sizes)


def _size_name(size: int) -> str:
    if size % MB == 0:
        return f"{size // MB}MB"
    if size >= MB:
        return f"{size / MB:.1f}MB"
    return f"{size // KB}KB" if size % KB == 0 else f"{size}B"
