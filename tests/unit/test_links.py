from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from app import links
from app.links import Keyring, KeyringError, Verdict

BASE = "https://abc123.lambda-url.eu-west-1.on.aws/"
DIGEST = "0123456789abcdef0123456789abcdef"
KEY = f"attachments/{DIGEST}/2/snapshot 07.jpg"
NOW = 1_700_000_000
KEYRING = Keyring("k0", b"a" * 64)


def _request(url: str) -> links.LinkRequest | None:
    parts = urlsplit(url)
    return links.parse_request(parts.path, parts.query)


def _signed(keyring: Keyring = KEYRING, key: str = KEY, expires: int = NOW + 60) -> str:
    return links.sign(keyring, BASE, key, expires)


def test_round_trip() -> None:
    url = _signed()
    assert url.startswith(f"{BASE}{DIGEST}/2/snapshot%2007.jpg?exp=")
    request = _request(url)
    assert request is not None
    assert (request.object_key, request.expires, request.kid) == (KEY, NOW + 60, "k0")
    assert links.verify(KEYRING, request, NOW) is Verdict.VALID


def test_expired_only_after_the_expiry() -> None:
    request = _request(_signed(expires=NOW + 5))
    assert request is not None
    assert links.verify(KEYRING, request, NOW + 4.9) is Verdict.VALID
    assert links.verify(KEYRING, request, NOW + 5) is Verdict.EXPIRED


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (f"/{DIGEST}/", f"/{'f' * 32}/"),  # another mail
        ("/2/", "/3/"),  # another part
        ("snapshot%2007.jpg", "snapshot%2008.jpg"),  # another file name
        (f"exp={NOW + 60}", f"exp={NOW + 6000}"),  # a longer life
        ("kid=k0", "kid=k1"),  # another key id
    ],
)
def test_every_field_is_covered_by_the_signature(old: str, new: str) -> None:
    url = _signed()
    assert old in url
    request = _request(url.replace(old, new))
    assert request is not None
    assert links.verify(KEYRING, request, NOW) is Verdict.FORBIDDEN


def test_tampered_signature_and_wrong_key_are_refused() -> None:
    url = _signed()
    sig = dict(parse_qsl(urlsplit(url).query))["sig"]
    flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
    request = _request(url.replace(sig, flipped))
    assert request is not None
    assert links.verify(KEYRING, request, NOW) is Verdict.FORBIDDEN
    other = _request(_signed(Keyring("k0", b"b" * 64)))
    assert other is not None
    assert links.verify(KEYRING, other, NOW) is Verdict.FORBIDDEN


def test_an_expired_forgery_is_forbidden_not_expired() -> None:
    request = _request(_signed(Keyring("k0", b"b" * 64), expires=NOW - 10))
    assert request is not None
    assert links.verify(KEYRING, request, NOW) is Verdict.FORBIDDEN


def test_previous_key_is_accepted_after_one_rotation_not_two() -> None:
    url = _signed()
    once = links.rotated(KEYRING)
    twice = links.rotated(once)
    assert (once.current_kid, once.previous_kid) == ("k1", "k0")
    assert (twice.current_kid, twice.previous_kid) == ("k2", "k1")
    request = _request(url)
    assert request is not None
    assert links.verify(once, request, NOW) is Verdict.VALID
    assert links.verify(twice, request, NOW) is Verdict.FORBIDDEN
    fresh = _request(_signed(once))
    assert fresh is not None
    assert fresh.kid == "k1"
    assert links.verify(twice, fresh, NOW) is Verdict.VALID


def test_verification_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(links.hmac, "compare_digest", spy)
    request = _request(_signed())
    assert request is not None
    assert links.verify(KEYRING, request, NOW) is Verdict.VALID
    assert len(calls) == 1


@pytest.mark.parametrize(
    "path",
    [
        f"/{DIGEST}/2/..",
        f"/{DIGEST}/2/.",
        f"/{DIGEST}/2/%2e%2e",
        f"/{DIGEST}/2/a%2Fb.jpg",  # an encoded slash stays in its segment, then is refused
        f"/{DIGEST}/2/a%5Cb.jpg",
        f"/{DIGEST}/2/a%00b.jpg",
        f"/{DIGEST}/2/%ff.jpg",  # not UTF-8
        f"/{DIGEST}/manifest.json",  # a manifest has no part: never addressable
        f"/{DIGEST}/2/x/y.jpg",
        f"/{DIGEST}/../2/a.jpg",
        f"/{DIGEST.upper()}/2/a.jpg",
        f"/{DIGEST}/02/a.jpg",
        f"/{DIGEST}/-1/a.jpg",
        f"/{DIGEST}/2/",
        f"{DIGEST}/2/a.jpg",
    ],
)
def test_odd_paths_do_not_parse(path: str) -> None:
    query = urlsplit(_signed()).query
    assert links.parse_request(path, query) is None


@pytest.mark.parametrize(
    "query",
    [
        "",
        "exp=1&kid=k0",
        "exp=1&kid=k0&sig=" + "A" * 43 + "&sig=" + "A" * 43,
        "exp=1&kid=k0&sig=" + "A" * 43 + "&extra=1",
        "exp=-1&kid=k0&sig=" + "A" * 43,
        "exp=1&kid=k/0&sig=" + "A" * 43,
        "exp=1&kid=k0&sig=" + "A" * 42,
        "exp=10000000000&kid=k0&sig=" + "A" * 43,  # eleven digits: past the year 2286, not a link
        "exp=1%0A&kid=k0&sig=" + "A" * 43,  # a trailing newline is not part of a number
        "exp=1&kid=k0%0A&sig=" + "A" * 43,
        "exp=1&kid=k0&sig=" + "A" * 43 + "%0A",
    ],
)
def test_odd_queries_do_not_parse(query: str) -> None:
    assert links.parse_request(f"/{DIGEST}/2/a.jpg", query) is None


def test_signing_refuses_keys_outside_the_attachments() -> None:
    with pytest.raises(ValueError, match="not an attachment key"):
        links.sign(KEYRING, BASE, "incoming/abc", NOW)


def test_keyring_accepts_the_templates_generated_shape_and_the_rotated_one() -> None:
    generated = json.dumps({"current_kid": "k0", "current": "x" * 64})
    keyring = links.parse_keyring(generated)
    assert keyring == Keyring("k0", b"x" * 64)
    rotated = links.rotated(keyring)
    assert links.parse_keyring(rotated.to_json()) == rotated
    assert len(rotated.current) >= 32


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({"current": "x" * 64}), "needs current_kid and current"),
        (json.dumps({"current_kid": "k0", "current": "short"}), "at least 32"),
        (json.dumps({"current_kid": "k 0", "current": "x" * 64}), "current_kid must be"),
        (json.dumps({"current_kid": "k1", "current": "x" * 64, "previous_kid": "k0"}), "go together"),
        (
            json.dumps(
                {"current_kid": "k1", "current": "x" * 64, "previous_kid": "k1", "previous": "y" * 64}
            ),
            "equals current_kid",
        ),
    ],
)
def test_bad_keyrings_are_refused_without_showing_the_key(secret: str, message: str) -> None:
    with pytest.raises(KeyringError, match=message) as raised:
        links.parse_keyring(secret)
    assert "x" * 32 not in str(raised.value)
