"""Property tests: whatever MIME tree, names, header values, recipient code or bytes arrive, the handler
answers, every mail gets exactly one outcome, keys stay under their mail's prefix, the sent mail carries
only the relay's own headers, and every link serves exactly the bytes that were attached."""

from __future__ import annotations

import html
import re
from collections import Counter
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

from hypothesis import given
from hypothesis import strategies as st

from app.links import parse_request
from app.mail.attachments import mail_digest
from tests.support import FIXTURES as FIXTURE_DIR
from tests.support import hostile
from tests.support.fuzzing import FUZZ, new_key, relay
from tests.support.world import RELAY_ADDRESS, SentMail, World

# The headers rewrite.build writes; anything else in a sent mail was injected.
RELAY_HEADERS = {
    "from",
    "to",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "x-original-message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}
CODE = "Email_Rxers_Code:[{}]:Email_Rxers_Code:"
FIXTURES = sorted(FIXTURE_DIR.glob("*.eml"))


def parsed(sent: SentMail) -> EmailMessage:
    message = message_from_bytes(sent.raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def links(text: str) -> list[str]:
    return re.findall(r"https://\S+", text)


def key_of(url: str) -> str:
    """The object key a download link names, as the download function reads it."""
    parts = urlsplit(url)
    request = parse_request(parts.path, parts.query)
    assert request is not None, f"not a download link: {url}"
    return request.object_key


def assert_only_relay_headers(sent: SentMail) -> None:
    message = parsed(sent)
    names = Counter(name.lower() for name in message)
    assert set(names) <= RELAY_HEADERS, f"unexpected headers: {set(names) - RELAY_HEADERS}"
    assert all(count == 1 for count in names.values()), names
    for name in message:
        assert "\n" not in str(message[name])
        assert "\r" not in str(message[name])
    header_block = sent.raw.split(b"\r\n\r\n", 1)[0]
    assert header_block.isascii(), "the sent header block must be 7-bit"


@FUZZ
@given(
    tree=hostile.trees,
    subject=hostile.header_texts,
    display_name=hostile.header_texts,
)
def test_any_mime_tree_is_distributed_with_links_to_exactly_its_attachments(
    shared_world: World, tree: hostile.Node, subject: str, display_name: str
) -> None:
    key = new_key()
    raw = hostile.mail(tree, subject, display_name, CODE.format("fuzz@example.com"))
    result = relay(shared_world, key, raw)
    assert result.outcome == "distributed"
    [sent] = result.sent
    assert sent.destinations == ("fuzz@example.com",)
    assert_only_relay_headers(sent)

    message = parsed(sent)
    plain = message.get_body(("plain",))
    assert plain is not None
    urls = links(plain.get_content())
    expected = hostile.attachments_of(tree)
    assert len(urls) == len(expected)
    prefix = f"attachments/{mail_digest(key)}/"
    keys = [key_of(url) for url in urls]
    for object_key in keys:
        assert object_key.startswith(prefix)
        assert ".." not in object_key.split("/")
        assert object_key.count("/") == 3  # attachments/<digest>/<part>/<name>: the name holds no slash
    stored = shared_world.keys(shared_world.attachments, prefix)
    assert sorted(stored) == sorted([*keys, prefix + "manifest.json"])
    assert Counter(shared_world.download(url) for url in urls) == Counter(leaf.payload for leaf in expected)

    markup = message.get_body(("html",))
    if markup is not None and expected:
        document = markup.get_content()
        for object_key in keys:
            assert f">{html.escape(object_key.rsplit('/', 1)[1])}</a>" in document


@FUZZ
@given(entries=hostile.recipient_lists, separator=hostile.separators)
def test_any_recipient_code_sends_only_to_listed_valid_addresses_once(
    shared_world: World, entries: list[str], separator: str
) -> None:
    key = new_key()
    tree = hostile.Leaf("application/octet-stream", "log.bin", b"\x00\x01", "base64")
    result = relay(shared_world, key, hostile.mail(tree, "code", "plc", CODE.format(separator.join(entries))))
    if result.outcome == "fallback":
        [notice] = result.notices
        assert notice["reason"] in {"no_recipients", "invalid_recipients", "too_many_recipients"}
        return
    destinations = [address for sent in result.sent for address in sent.destinations]
    assert len(destinations) == len(set(destinations)), "a recipient got the mail twice"
    assert len(destinations) <= int(shared_world.environment["MAX_RECIPIENTS"])
    assert RELAY_ADDRESS not in destinations
    lowered = [entry.lower() for entry in entries]
    for address in destinations:
        assert address == address.lower()
        assert "\n" not in address
        assert " " not in address
        assert any(address in entry for entry in lowered), f"{address} was not in the code"
    for sent in result.sent:
        assert_only_relay_headers(sent)
        assert b"Email_Rxers_Code" not in sent.raw, "the code (the other recipients) must not be sent"


mutations = st.lists(
    st.tuples(st.integers(min_value=0, max_value=4000), st.binary(max_size=8), st.integers(0, 16)),
    max_size=6,
)


def mutate(raw: bytes, edits: list[tuple[int, bytes, int]], cut: int | None) -> bytes:
    data = bytearray(raw)
    for position, insert, delete in edits:
        at = position % (len(data) + 1)
        data[at : at + delete] = insert
    return bytes(data[:cut] if cut is not None else data)


@FUZZ
@given(
    base=st.sampled_from(FIXTURES),
    edits=mutations,
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=3000)),
)
def test_mutated_fixture_mails_get_an_outcome(
    shared_world: World, base: Path, edits: list[tuple[int, bytes, int]], cut: int | None
) -> None:
    result = relay(shared_world, new_key(), mutate(base.read_bytes(), edits, cut))
    result.outcome  # noqa: B018  (asserts the mail reached exactly one outcome)
    for sent in result.sent:
        assert_only_relay_headers(sent)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=3000), st.text(max_size=3000).map(str.encode)))
def test_arbitrary_bytes_get_an_outcome(shared_world: World, raw: bytes) -> None:
    result = relay(shared_world, new_key(), raw)
    assert result.outcome in {"distributed", "fallback"}
