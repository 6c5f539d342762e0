"""Hypothesis strategies for hostile mail: MIME trees with odd names and encodings, recipient codes,
and header values that try to smuggle in headers. Each generated mail knows what a correct relay must
store for it (`expected`), so properties compare against that rather than against the relay's own code.
"""

from __future__ import annotations

import base64
import quopri
from dataclasses import dataclass
from email.header import Header
from urllib.parse import quote

from hypothesis import strategies as st

HOSTILE_NAMES = [
    "../../etc/passwd",
    "..",
    "/absolute/path.txt",
    "C:\\Windows\\System32\\evil.exe",
    "<script>alert(1)</script>.html",
    "quote\"and'apostrophe.txt",
    "Tom & Jerry's <b>report</b>.pdf",
    "name\r\nBcc: victim@example.com.txt",
    "nul\x00byte.bin",
    "%2e%2e%2fencoded.txt",
    "manifest.json",
    "a" * 400 + ".csv",
    "Überwachung €.csv",
    "\u202eexe.txt",  # right-to-left override
]
HOSTILE_TEXT = [
    "hi\r\nBcc: victim@example.com",
    "hi\nX-Injected: yes",
    "<script>alert(1)</script>",
    "=?utf-8?q?nested?=",
    "\x00\x1b[31m",
    "Kessel\u0085Alarm",  # NEL: once sent the mail to the DLQ (found with 400 examples)
    "line\u2028separator\u2029paragraph",
    "invoice \u202egpj.exe",
    "boss@bank.example",  # a display name that looks like an address
    "zero\u200bwidth\ufeff",
]
_text = st.text(st.characters(codec="utf-8"), max_size=60)
names = st.one_of(st.sampled_from(HOSTILE_NAMES), _text)
header_texts = st.one_of(st.sampled_from(HOSTILE_TEXT), _text)


@dataclass(frozen=True)
class Leaf:
    content_type: str
    name: str | None  # None: no filename at all; a text leaf without one is a body, not an attachment
    payload: bytes
    encoding: str

    @property
    def is_attachment(self) -> bool:
        return not self.content_type.startswith("text/") or self.name is not None


@dataclass(frozen=True)
class Multipart:
    subtype: str
    children: tuple[Leaf | Multipart, ...]


Node = Leaf | Multipart

_BODY_ALPHABET = st.characters(codec="utf-8", exclude_characters="-[]")
_text_leaves = st.builds(
    Leaf,
    content_type=st.sampled_from(["text/plain", "text/html"]),
    name=st.none(),
    payload=st.text(_BODY_ALPHABET, max_size=200).map(lambda text: text.encode("utf-8")),
    encoding=st.sampled_from(["7bit", "8bit", "quoted-printable", "base64"]),
)
_attachment_leaves = st.builds(
    Leaf,
    content_type=st.sampled_from(
        ["application/octet-stream", "image/png", "application/zip", "application/pdf", "text/plain"]
    ),
    name=st.one_of(st.none(), names),
    payload=st.binary(min_size=1, max_size=300),  # unnamed text/plain: binary bytes in a text body
    encoding=st.just("base64"),  # exact bytes, so stored objects can be compared with what was sent
)
trees: st.SearchStrategy[Node] = st.recursive(
    st.one_of(_text_leaves, _attachment_leaves),
    lambda children: st.builds(
        Multipart,
        subtype=st.sampled_from(["mixed", "alternative", "related"]),
        children=st.lists(children, min_size=1, max_size=4).map(tuple),
    ),
    max_leaves=8,
)


def attachments_of(node: Node) -> list[Leaf]:
    if isinstance(node, Leaf):
        return [node] if node.is_attachment else []
    return [leaf for child in node.children for leaf in attachments_of(child)]


def encoded_word(text: str) -> str:
    return Header(text, "utf-8").encode(maxlinelen=10_000)


def render(node: Node, path: str = "0") -> list[str]:
    """The MIME lines of a node; boundaries derive from the node's path, so they never collide."""
    if isinstance(node, Multipart):
        boundary = f"=_fuzz_{path}_="
        lines = [f'Content-Type: multipart/{node.subtype}; boundary="{boundary}"', ""]
        for number, child in enumerate(node.children):
            lines += [f"--{boundary}", *render(child, f"{path}.{number}")]
        return [*lines, f"--{boundary}--", ""]
    content_type = node.content_type + ("; charset=utf-8" if node.content_type.startswith("text/") else "")
    lines = [f"Content-Type: {content_type}", f"Content-Transfer-Encoding: {node.encoding}"]
    if node.name is not None:
        lines.append(f"Content-Disposition: attachment; filename*=utf-8''{quote(node.name, safe='')}")
    if node.encoding == "base64":
        body = base64.encodebytes(node.payload).decode("ascii")
    elif node.encoding == "quoted-printable":
        body = quopri.encodestring(node.payload).decode("ascii")
    else:
        body = node.payload.decode("utf-8")
    return [*lines, "", body]


def mail(tree: Node, subject: str, display_name: str, code: str) -> bytes:
    """A whole mail: the code in a first text part, then the generated tree."""
    root = Multipart("mixed", (Leaf("text/plain", None, code.encode(), "8bit"), tree))
    headers = [
        "X-SES-Spam-Verdict: PASS",  # what SES prepends; without it the relay holds the mail unscanned
        "X-SES-Virus-Verdict: PASS",
        f"From: {encoded_word(display_name)} <plc-7@plant.example.com>",
        "To: inbox-7f3k9q@relay.example.com",
        f"Subject: {encoded_word(subject)}",
        "Message-ID: <fuzz@plant.example.com>",
        "MIME-Version: 1.0",
    ]
    return "\r\n".join(headers + render(root)).encode("utf-8")


# Recipient codes: well-formed addresses mixed with entries that try to add, hide or break things.
HOSTILE_ENTRIES = [
    "a@b.com Bcc: c@d.com",
    "x@example.com\r\nBcc: victim@example.com",
    "<angle@example.com>",
    "Name <named@example.org>",
    '"quoted, comma" <q@example.net>',
    "no-at-sign",
    "@example.com",
    "trailing@",
    "inbox-7f3k9q@relay.example.com",  # the relay itself: dropped, never a loop
    "UPPER@EXAMPLE.COM",
    "upper@example.com",
    "",
    " ",
]
_entry_alphabet = st.characters(codec="utf-8", exclude_characters="[]")
entries = st.one_of(st.emails(), st.sampled_from(HOSTILE_ENTRIES), st.text(_entry_alphabet, max_size=40))
recipient_lists = st.lists(entries, max_size=60)
separators = st.sampled_from([",", ";", ", ", " ;\r\n "])
