from __future__ import annotations

import hmac
import json
from dataclasses import replace
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


# ---------------------------------------------------------------- mute links
FINGERPRINT = "9f86d081884c7d659a2feaa0c55ad015"
RECIPIENT = "guard+night@example.com"


def _mute_url(
    keyring: Keyring = KEYRING, seconds: int = 3600, to: str = RECIPIENT, expires: int = NOW + 60
) -> str:
    return links.sign_mute(keyring, BASE, FINGERPRINT, seconds, to, expires)


def _token(url: str) -> links.MuteToken | None:
    parts = urlsplit(url)
    return links.parse_mute(parts.path, parts.query)


def test_mute_link_round_trip() -> None:
    url = _mute_url()
    assert url.startswith(f"{BASE}mute/{FINGERPRINT}?for=3600&to=guard%2Bnight%40example.com&exp=")
    token = _token(url)
    assert token is not None
    assert (token.fingerprint, token.seconds, token.to, token.expires, token.kid) == (
        FINGERPRINT,
        3600,
        RECIPIENT,
        NOW + 60,
        "k0",
    )
    assert links.verify_mute(KEYRING, token, NOW) is Verdict.VALID
    assert f"{BASE}mute/{FINGERPRINT}?{token.query}" == url  # the page's form posts back the same


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (f"/{FINGERPRINT}?", f"/{'0' * 32}?"),  # another alarm
        ("for=3600", "for=86400"),  # a longer mute
        ("to=guard%2Bnight%40example.com", "to=boss%40example.com"),  # another recipient
        ("to=guard%2Bnight%40example.com", "to=%2A"),  # no one in particular
        (f"exp={NOW + 60}", f"exp={NOW + 6000}"),  # a longer life
        ("kid=k0", "kid=k1"),  # another key id
    ],
)
def test_every_field_of_a_mute_link_is_covered_by_the_signature(old: str, new: str) -> None:
    url = _mute_url()
    assert old in url
    token = _token(url.replace(old, new))
    assert token is not None
    assert links.verify_mute(KEYRING, token, NOW) is Verdict.FORBIDDEN


def test_a_tampered_mute_signature_and_another_key_are_refused() -> None:
    url = _mute_url()
    sig = dict(parse_qsl(urlsplit(url).query))["sig"]
    token = _token(url.replace(sig, ("B" if sig[0] == "A" else "A") + sig[1:]))
    assert token is not None
    assert links.verify_mute(KEYRING, token, NOW) is Verdict.FORBIDDEN
    other = _token(_mute_url(Keyring("k0", b"b" * 64)))
    assert other is not None
    assert links.verify_mute(KEYRING, other, NOW) is Verdict.FORBIDDEN


def test_a_mute_link_expires_and_an_expired_forgery_is_forbidden() -> None:
    token = _token(_mute_url(expires=NOW + 5))
    assert token is not None
    assert links.verify_mute(KEYRING, token, NOW + 4.9) is Verdict.VALID
    assert links.verify_mute(KEYRING, token, NOW + 5) is Verdict.EXPIRED
    forged = _token(_mute_url(Keyring("k0", b"b" * 64), expires=NOW - 10))
    assert forged is not None
    assert links.verify_mute(KEYRING, forged, NOW) is Verdict.FORBIDDEN


def test_a_download_signature_never_mutes_and_a_mute_signature_never_downloads() -> None:
    """The two kinds sign different canonical strings: same key, same expiry, same key id, no reuse."""
    expires = NOW + 60
    download_sig = dict(parse_qsl(urlsplit(_signed(expires=expires)).query))["sig"]
    mute = _token(_mute_url(expires=expires))
    assert mute is not None
    assert links.verify_mute(KEYRING, replace(mute, sig=download_sig), NOW) is Verdict.FORBIDDEN
    request = _request(_signed(expires=expires))
    assert request is not None
    assert links.verify(KEYRING, replace(request, sig=mute.sig), NOW) is Verdict.FORBIDDEN
    mute_url = _mute_url()
    assert links.parse_request(urlsplit(mute_url).path, urlsplit(mute_url).query) is None
    assert _token(_signed()) is None


def test_a_mute_link_of_the_previous_key_works_after_one_rotation_not_two() -> None:
    url = _mute_url()
    once = links.rotated(KEYRING)
    token = _token(url)
    assert token is not None
    assert links.verify_mute(once, token, NOW) is Verdict.VALID
    assert links.verify_mute(links.rotated(once), token, NOW) is Verdict.FORBIDDEN
    assert links.page_valid(once, token, str(NOW), links.page_nonce(once, token, NOW), NOW)


def test_a_mail_to_several_names_no_recipient_and_odd_addresses_are_named_as_anyone() -> None:
    assert links.nameable("ops@example.com") == "ops@example.com"
    assert links.nameable('"a b"@example.com') == links.ANY_RECIPIENT
    assert links.nameable("a\n@example.com") == links.ANY_RECIPIENT
    token = _token(_mute_url(to=links.ANY_RECIPIENT))
    assert token is not None
    assert token.to == "*"
    assert links.verify_mute(KEYRING, token, NOW) is Verdict.VALID


def test_signing_refuses_what_no_mute_link_can_carry() -> None:
    with pytest.raises(ValueError, match="fingerprint"):
        links.sign_mute(KEYRING, BASE, "not-a-fingerprint", 3600, RECIPIENT, NOW)
    with pytest.raises(ValueError, match="lasts one of"):
        links.sign_mute(KEYRING, BASE, FINGERPRINT, 7200, RECIPIENT, NOW)


@pytest.mark.parametrize(
    "path",
    [
        f"/mute/{FINGERPRINT.upper()}",
        f"/mute/{FINGERPRINT}/",
        f"/mute/{FINGERPRINT[:-1]}",
        f"/mute//{FINGERPRINT}",
        f"/Mute/{FINGERPRINT}",
        f"/{FINGERPRINT}",
        "/mute/",
    ],
)
def test_odd_mute_paths_do_not_parse(path: str) -> None:
    assert links.parse_mute(path, urlsplit(_mute_url()).query) is None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("for=3600", "for=7200"),  # not a duration a mail offers
        ("for=3600", "for=03600"),
        ("for=3600", "for=3600&for=3600"),
        ("to=guard%2Bnight", "to=guard%0A"),
        ("to=guard%2Bnight", "to=%FF"),  # not UTF-8
        ("to=guard%2Bnight%40example.com", "to="),
        (f"exp={NOW + 60}", "exp=-1"),
        ("kid=k0", "kid=k%2F0"),
        ("&sig=", "&extra=1&sig="),
        ("&sig=", "&sig=A"),
    ],
)
def test_odd_mute_queries_do_not_parse(old: str, new: str) -> None:
    parts = urlsplit(_mute_url())
    assert old in parts.query
    assert links.parse_mute(parts.path, parts.query.replace(old, new)) is None


def test_a_page_nonce_is_bound_to_its_token_and_lasts_a_quarter_of_an_hour() -> None:
    token = _token(_mute_url())
    longer = _token(_mute_url(seconds=8 * 3600))
    assert token is not None
    assert longer is not None
    nonce = links.page_nonce(KEYRING, token, NOW)
    assert nonce != token.sig
    assert links.page_valid(KEYRING, token, str(NOW), nonce, NOW)
    assert links.page_valid(KEYRING, token, str(NOW), nonce, NOW + links.PAGE_SECONDS)
    assert not links.page_valid(KEYRING, token, str(NOW), nonce, NOW + links.PAGE_SECONDS + 1)
    assert not links.page_valid(KEYRING, longer, str(NOW), nonce, NOW)  # another link's page
    assert not links.page_valid(KEYRING, token, str(NOW + 1), nonce, NOW + 1)  # another time
    assert not links.page_valid(KEYRING, token, str(NOW), token.sig, NOW)  # the token is no nonce
    assert not links.page_valid(KEYRING, token, "", nonce, NOW)
    future = links.page_nonce(KEYRING, token, NOW + 60)
    assert not links.page_valid(KEYRING, token, str(NOW + 60), future, NOW)  # shown in the future
