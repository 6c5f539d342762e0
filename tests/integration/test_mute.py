"""Muting an alarm from its mail, against the template's account in moto: the links a first mail and a
digest carry, the page a GET shows (the alarm table untouched), the POST that mutes (only with the
page's nonce, from the page), the audit line, the storm a mute folds and the digest that ends it, and
the key rotation a link survives. The relay and the mute page share one simulated clock."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from app import download, links, muting
from app.outcomes import Outcome
from tests.support.emf import assert_valid_emf
from tests.support.folding import MINUTE, RECIPIENTS, T0, Relay, per_recipient, text_of
from tests.support.muting import (
    fingerprint_of,
    form_of,
    keyring_of,
    log_lines,
    mute_links,
    origin_of,
    retarget,
)
from tests.support.world import World

HOUR = 3600
STORM = "PROBLEM: Pump 3 pressure 9.1 bar"
CLIENT = {"source_ip": "203.0.113.9", "user_agent": "Mozilla/5.0 (guard's phone)"}


@pytest.fixture
def relay(world: World, monkeypatch: pytest.MonkeyPatch) -> Relay:
    """The relay with the test's clock; the mute page (behind the download URL) reads the same one."""
    relay = Relay(world)
    monkeypatch.setattr(download, "_clock", lambda: relay.now)
    return relay


def table(world: World) -> list[dict[str, Any]]:
    """Every item of the alarm table, in key order: what a GET must leave as it was."""
    items = world.account.client("dynamodb").scan(TableName=world.environment["INCIDENTS_TABLE"])["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def call(world: World, method: str, url: str, **request: Any) -> dict[str, Any]:
    return world.account.invoke_url(method, url, **(CLIENT | request))


def press(world: World, url: str, **changes: str) -> dict[str, Any]:
    """Open the link, press the page's button and follow the redirect, as a browser does: the page
    the browser lands on."""
    page = call(world, "GET", url)
    assert page["statusCode"] == 200, page["body"]
    form = form_of(page["body"])
    target = origin_of(url) + form.action
    assert target == url  # the form posts the link back as it was signed
    posted = call(
        world,
        "POST",
        target,
        headers={"Origin": origin_of(url), "Content-Type": "application/x-www-form-urlencoded"},
        body=form.body(**changes),
    )
    if posted["statusCode"] != 303:
        return posted
    assert origin_of(url) + posted["headers"]["Location"] == url  # back to the link's own page
    return call(world, "GET", url)


def first_alarm(relay: Relay, world: World, **mail: Any) -> dict[int, str]:
    assert relay.mail(STORM, T0, **mail) is Outcome.DISTRIBUTED
    return mute_links(world.sent()[-1].message)


def muted_until(relay: Relay, fingerprint: str) -> Any:
    assert relay.ports.incidents is not None
    stored = relay.ports.incidents.load(fingerprint)
    assert stored is not None
    return stored.state.mute


def html_alarm(subject: str) -> bytes:
    """An NVR's alarm with a text and an HTML part, naming the three recipients."""
    code = f"Email_Rxers_Code:[{','.join(RECIPIENTS)}]:Email_Rxers_Code:"
    return (
        "X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\nFrom: plc-7@plant.example.com\r\n"
        f"To: inbox@relay.example.com\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain\r\n\r\nPressure high. {code}\r\n"
        f"--b\r\nContent-Type: text/html\r\n\r\n<html><body><p>Pressure high.</p><p>{code}</p></body></html>\r\n"
        "--b--\r\n"
    ).encode()


def test_a_first_mail_and_a_digest_carry_mute_links_for_1_8_and_24_hours(relay: Relay, world: World) -> None:
    world.put_mail("incoming/nvr.eml", html_alarm(STORM))
    assert relay.mail(STORM, T0, key="incoming/nvr.eml") is Outcome.DISTRIBUTED
    first = world.sent()[0].message
    found = mute_links(first)
    assert sorted(found) == list(links.MUTE_SECONDS)
    assert mute_links(first, "html") == found  # the same links, in the HTML too
    assert "Mute this alarm for all its recipients:" in text_of(world.sent()[0])
    for seconds, url in found.items():
        query = parse_qs(urlsplit(url).query)
        assert url.startswith(world.blueprint.download_url or "?")
        assert query["for"] == [str(seconds)]
        assert query["to"] == [links.ANY_RECIPIENT]  # one message for the three: it names none
        assert query["kid"] == ["k0"]
        assert int(query["exp"][0]) == int((T0 + timedelta(days=1)).timestamp())  # the mail's links'
    relay.mail(STORM, T0 + MINUTE)
    relay.tick(T0 + 10 * MINUTE)
    digest = world.sent()[-1]
    assert digest.message["Subject"].startswith("Digest, 1 repeat")
    assert sorted(mute_links(digest.message)) == list(links.MUTE_SECONDS)
    assert mute_links(digest.message, "html") == mute_links(digest.message)
    assert {fingerprint_of(u) for u in mute_links(digest.message).values()} == {fingerprint_of(found[3600])}


def test_an_alarm_to_one_recipient_names_the_recipient_in_its_links(relay: Relay, world: World) -> None:
    found = first_alarm(relay, world, recipients=("guard@example.com",))
    assert {parse_qs(urlsplit(u).query)["to"][0] for u in found.values()} == {"guard@example.com"}
    page = call(world, "GET", found[3600])
    assert "This link was sent to guard@example.com." in page["body"]
    assert press(world, found[3600])["statusCode"] == 200
    assert muted_until(relay, fingerprint_of(found[3600])).by == "guard@example.com"


def test_a_get_shows_the_alarm_and_changes_nothing(
    relay: Relay, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    found = first_alarm(relay, world)
    before = table(world)
    capsys.readouterr()
    relay.now = T0 + 5 * MINUTE
    for method in ("GET", "HEAD", "GET"):  # a scanner, a preview, the person
        answer = call(world, method, found[8 * HOUR])
        assert answer["statusCode"] == 200
    assert table(world) == before
    assert answer["body"].count(STORM) == 1
    for fact in (
        "Mute this alarm for 8 hours?",
        "From: plc-7@plant.example.com",
        "Recipients: 3, not named here (the mails go out as Bcc)",
        "Open since 2026-12-04 08:00 UTC",
        "for all its 3 recipients, not only you",
        "A recovery still goes out at once",
        ">Mute for 8 hours</button>",
    ):
        assert fact in answer["body"], fact
    assert not [address for address in RECIPIENTS if address in answer["body"]]  # Bcc: none named
    headers = answer["headers"]
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "form-action 'self'" in headers["Content-Security-Policy"]
    lines = log_lines(capsys.readouterr().out)
    assert [(line["outcome"], line["method"]) for line in lines] == [
        ("page", "GET"),
        ("page", "HEAD"),
        ("page", "GET"),
    ]
    assert all("_aws" not in line and "Mutes" not in line for line in lines)  # nothing was muted
    sig = parse_qs(urlsplit(found[8 * HOUR]).query)["sig"][0]
    nonce = form_of(answer["body"]).nonce
    assert sig not in str(lines)
    assert nonce not in str(lines)


def test_the_pages_button_mutes_for_all_recipients_and_is_audited(
    relay: Relay, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    found = first_alarm(relay, world)
    relay.now = T0 + 2 * MINUTE
    capsys.readouterr()
    answer = press(world, found[HOUR])
    assert answer["statusCode"] == 200
    assert "<h1>Muted until 2026-12-04 09:02 UTC</h1>" in answer["body"]
    assert "This alarm is muted until 2026-12-04 09:02 UTC, for all its 3 recipients." in answer["body"]
    mute = muted_until(relay, fingerprint_of(found[HOUR]))
    assert (mute.until, mute.by) == (T0 + 62 * MINUTE, "a recipient")
    page_line, audit, landed = log_lines(capsys.readouterr().out)
    assert (page_line["outcome"], landed["outcome"]) == ("page", "page")
    assert_valid_emf(audit)
    assert audit["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": world.environment["METRICS_NAMESPACE"],
            "Dimensions": [[]],
            "Metrics": [{"Name": "Mutes", "Unit": "Count"}],
        }
    ]
    assert {k: audit[k] for k in ("Mutes", "message", "outcome", "status", "method")} == {
        "Mutes": 1,
        "message": "alarm muted",
        "outcome": "muted",
        "status": 303,
        "method": "POST",
    }
    assert audit["fingerprint"] == fingerprint_of(found[HOUR])
    assert (audit["duration_seconds"], audit["recipient"], audit["kid"]) == (HOUR, "*", "k0")
    assert audit["until"] == (T0 + 62 * MINUTE).isoformat()
    assert (audit["source_ip"], audit["user_agent"]) == (CLIENT["source_ip"], CLIENT["user_agent"])
    assert parse_qs(urlsplit(found[HOUR]).query)["sig"][0] not in str(audit)


def test_reloading_the_page_after_a_mute_shows_it_and_changes_nothing(relay: Relay, world: World) -> None:
    """Post/Redirect/Get: the browser lands on the link's page (a GET), so a reload mutes nothing."""
    found = first_alarm(relay, world)
    relay.now = T0 + MINUTE
    landed = press(world, found[HOUR])
    after = table(world)
    relay.now = T0 + 2 * MINUTE
    reloaded = call(world, "GET", found[HOUR])
    assert table(world) == after
    for page in (landed, reloaded):
        assert "<h1>Muted until 2026-12-04 09:01 UTC</h1>" in page["body"]
        assert "Muted until 2026-12-04 09:01 UTC (by a recipient, at 2026-12-04 08:01 UTC)." in page["body"]
        assert ">Mute for 1 hour</button>" in page["body"]  # to extend it later


def test_a_pages_post_mutes_once_even_replayed_after_an_unmute(
    relay: Relay, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """The alarm's mute log keeps a digest of the page's nonce: the same POST again, within the nonce's
    quarter of an hour, changes nothing, not even after the operator ended the mute."""
    found = first_alarm(relay, world)
    url = found[HOUR]
    relay.now = T0 + MINUTE
    form = form_of(call(world, "GET", url)["body"])
    post = {"headers": {"Origin": origin_of(url)}, "body": form.body()}
    assert call(world, "POST", url, **post)["statusCode"] == 303
    fingerprint = fingerprint_of(url)
    assert relay.ports.incidents is not None
    (entry,) = relay.ports.incidents.load(fingerprint).state.mute_log  # type: ignore[union-attr]
    assert (entry.action, entry.by, entry.until, entry.source) == (
        "mute",
        "a recipient",
        T0 + 61 * MINUTE,
        f"mute link from {CLIENT['source_ip']}",
    )
    assert entry.nonce
    assert form.nonce not in str(table(world))  # a digest of it, never the nonce
    capsys.readouterr()
    relay.now = T0 + 2 * MINUTE
    again = call(world, "POST", url, **post)  # a resend: the same page, the same nonce
    assert (again["statusCode"], again["headers"]["Location"]) == (
        303,
        urlsplit(url).path + "?" + urlsplit(url).query,
    )
    (line,) = log_lines(capsys.readouterr().out)
    assert (line["outcome"], line["status"], "Mutes" in line) == ("repeated", 303, False)
    assert muted_until(relay, fingerprint).last_at == T0 + MINUTE  # not extended, not touched
    muting.unmute(
        relay.ports.incidents, fingerprint, "operator", relay.settings.folding.policy, lambda: relay.now
    )
    before = table(world)
    relay.now = T0 + 3 * MINUTE
    assert call(world, "POST", url, **post)["statusCode"] == 303
    assert table(world) == before  # still unmuted: a captured POST cannot mute again
    assert muted_until(relay, fingerprint) is None
    fresh = press(world, url)  # a new page of the same link mutes as before
    assert "<h1>Muted until 2026-12-04 09:03 UTC</h1>" in fresh["body"]


@pytest.mark.parametrize(
    "how",
    [
        "no-body",
        "no-nonce",
        "tampered-nonce",
        "nonce-of-another-link",
        "page-too-old",
        "page-from-the-future",
        "other-origin",
        "no-origin-nor-referer",
        "extra-field",
    ],
)
def test_a_post_without_the_pages_nonce_mutes_nothing(relay: Relay, world: World, how: str) -> None:
    found = first_alarm(relay, world)
    url = found[HOUR]
    page = call(world, "GET", url)
    form = form_of(page["body"])
    other = form_of(call(world, "GET", found[8 * HOUR])["body"])
    headers = {"Origin": origin_of(url), "Content-Type": "application/x-www-form-urlencoded"}
    body: str | None = form.body()
    issued = int(form.issued)
    match how:
        case "no-body":
            body = None
        case "no-nonce":
            body = f"issued={form.issued}"
        case "tampered-nonce":
            body = form.body(nonce=("A" if form.nonce[0] != "A" else "B") + form.nonce[1:])
        case "nonce-of-another-link":
            body = other.body()
        case "page-too-old":
            relay.now = T0 + timedelta(seconds=links.PAGE_SECONDS + 1)
        case "page-from-the-future":
            keyring = keyring_of(
                world.account.client("secretsmanager"), world.environment["LINK_KEY_SECRET_ARN"]
            )
            token = links.parse_mute(urlsplit(url).path, urlsplit(url).query)
            assert token is not None
            body = form.body(issued=str(issued + 60), nonce=links.page_nonce(keyring, token, issued + 60))
        case "other-origin":
            headers["Origin"] = "https://attacker.example"
        case "no-origin-nor-referer":
            del headers["Origin"]
        case "extra-field":
            body = form.body(seconds="86400")
    before = table(world)
    answer = call(world, "POST", url, headers=headers, body=body)
    assert answer["statusCode"] == 403
    assert "Nothing was muted" in answer["body"]
    assert table(world) == before
    assert muted_until(relay, fingerprint_of(url)) is None


def test_a_referer_of_the_page_stands_in_for_a_missing_origin(relay: Relay, world: World) -> None:
    found = first_alarm(relay, world)
    form = form_of(call(world, "GET", found[HOUR])["body"])
    answer = call(world, "POST", found[HOUR], headers={"Referer": found[HOUR]}, body=form.body())
    assert answer["statusCode"] == 303
    assert muted_until(relay, fingerprint_of(found[HOUR])) is not None


def test_tampered_and_expired_links_get_pages_a_person_understands(relay: Relay, world: World) -> None:
    found = first_alarm(relay, world)
    before = table(world)
    for tampered in (
        retarget(found[HOUR], **{"for": 86400}),
        retarget(found[HOUR], to="boss@example.com"),
        retarget(found[HOUR], exp=int((T0 + timedelta(days=30)).timestamp())),
        found[HOUR].replace(fingerprint_of(found[HOUR]), "0" * 32),
        found[HOUR][:-2],
    ):
        for method in ("GET", "POST"):
            answer = call(world, method, tampered, headers={"Origin": origin_of(tampered)})
            assert answer["statusCode"] == 403, tampered
            assert "This mute link is not valid" in answer["body"]
    relay.now = T0 + timedelta(days=1)  # the link's expiry, the mail's download links' too
    expired = call(world, "GET", found[HOUR])
    assert expired["statusCode"] == 410
    assert "This mute link expired on 2026-12-05 08:00 UTC" in expired["body"]
    assert "newer mails and digests carry links that still work" in expired["body"]
    assert table(world) == before


def test_a_download_link_never_mutes(relay: Relay, world: World) -> None:
    """Same key, same expiry, same key id: the download link's signature still does not verify here."""
    found = first_alarm(relay, world, attachment=b"t,1\n")
    text = text_of(world.sent()[-1])
    (download_link,) = [w for w in text.split() if w.startswith("https://") and "/mute/" not in w]
    borrowed = retarget(found[HOUR], sig=parse_qs(urlsplit(download_link).query)["sig"][0])
    assert call(world, "GET", borrowed)["statusCode"] == 403


def test_muting_again_extends_never_shortens_and_the_page_shows_the_active_mute(
    relay: Relay, world: World
) -> None:
    found = first_alarm(relay, world)
    fingerprint = fingerprint_of(found[HOUR])
    relay.now = T0 + MINUTE
    assert press(world, found[HOUR])["statusCode"] == 200
    relay.now = T0 + 2 * MINUTE
    page = call(world, "GET", found[24 * HOUR])["body"]
    assert "Muted until 2026-12-04 09:01 UTC (by a recipient, at 2026-12-04 08:01 UTC)." in page
    assert "Muting again extends the mute; it never shortens it." in page
    assert press(world, found[24 * HOUR])["statusCode"] == 200
    assert muted_until(relay, fingerprint).until == T0 + 2 * MINUTE + timedelta(hours=24)
    relay.now = T0 + 3 * MINUTE
    answer = press(world, found[HOUR])
    assert "Muted until 2026-12-05 08:02 UTC" in answer["body"]  # the longer one stands
    assert muted_until(relay, fingerprint).until == T0 + 2 * MINUTE + timedelta(hours=24)


def test_a_mute_during_a_storm_folds_every_repeat_and_its_end_counts_them_exactly(
    relay: Relay, world: World
) -> None:
    found = first_alarm(relay, world)
    received = 1
    for n in (1, 2):  # two repeats before the mute
        assert relay.mail(STORM, T0 + n * MINUTE) is Outcome.FOLDED
        received += 1
    relay.now = T0 + 3 * MINUTE
    assert press(world, found[HOUR])["statusCode"] == 200
    for n in range(3, 63):  # a repeat every minute while muted, a tick after each as the clock runs
        at = T0 + n * MINUTE + timedelta(seconds=30)
        assert relay.mail(f"PROBLEM: Pump 3 pressure 9.{n} bar", at) is Outcome.FOLDED
        received += 1
        relay.tick(at + timedelta(seconds=15))
    assert len(world.sent()) == 1  # the digests the storm would have had are held by the mute
    relay.tick(T0 + 63 * MINUTE)  # the mute ends at 09:03
    _, digest = world.sent()
    assert digest.message["Subject"] == "Mute ended, 60 mails folded: PROBLEM: Pump 3 pressure 9.1 bar"
    text = text_of(digest)
    assert "Muted by a recipient at 2026-12-04 08:03:00 UTC: 60 mails folded." in text
    assert "Also listed: 2 repeats folded before the mute and not yet in a digest." in text
    rows = re.findall(r"^\d+\. 2026-12-04", text, flags=re.MULTILINE)
    assert len(rows) == 62
    assert 1 + len(rows) == received  # relayed + listed == received: nothing lost, nothing twice
    assert per_recipient(world.sent()) == dict.fromkeys(RECIPIENTS, 2)
    assert sorted(mute_links(digest.message)) == list(links.MUTE_SECONDS)  # mute it again from there


def test_a_recovery_during_a_mute_is_relayed_at_once(relay: Relay, world: World) -> None:
    found = first_alarm(relay, world)
    relay.mail(STORM, T0 + MINUTE)
    relay.now = T0 + 2 * MINUTE
    assert press(world, found[8 * HOUR])["statusCode"] == 200
    relay.mail(STORM, T0 + 3 * MINUTE)
    assert relay.mail("RECOVERY: Pump 3 pressure OK", T0 + 4 * MINUTE) is Outcome.DISTRIBUTED
    _, recovery = world.sent()
    assert recovery.message["Subject"] == "RECOVERY: Pump 3 pressure OK"
    assert "2 repeats were folded, 2 of them listed when the mute ends" in text_of(recovery)
    assert mute_links(recovery.message, "plain") == {}  # a recovery is not a first mail


def test_a_mute_link_of_the_previous_key_works_after_a_rotation(relay: Relay, world: World) -> None:
    found = first_alarm(relay, world)
    secretsmanager = world.account.client("secretsmanager")
    arn = world.environment["LINK_KEY_SECRET_ARN"]
    rotated = links.rotated(keyring_of(secretsmanager, arn))
    secretsmanager.put_secret_value(SecretId=arn, SecretString=rotated.to_json())
    download.reset()  # a fresh container reads the rotated keyring
    answer = press(world, found[HOUR])
    assert answer["statusCode"] == 200
    assert muted_until(relay, fingerprint_of(found[HOUR])) is not None
    twice = links.rotated(rotated)
    secretsmanager.put_secret_value(SecretId=arn, SecretString=twice.to_json())
    download.reset()
    assert call(world, "GET", found[HOUR])["statusCode"] == 403  # two rotations old: gone


def test_a_link_to_an_alarm_the_table_no_longer_holds_finds_nothing_to_mute(
    relay: Relay, world: World
) -> None:
    keyring = keyring_of(world.account.client("secretsmanager"), world.environment["LINK_KEY_SECRET_ARN"])
    base = world.blueprint.download_url or ""
    url = links.sign_mute(keyring, base, "0123456789abcdef0123456789abcdef", HOUR, "*", 2**31)
    answer = call(world, "GET", url)
    assert answer["statusCode"] == 404
    assert "The relay no longer knows this alarm" in answer["body"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", ""])
def test_other_methods_are_refused_without_touching_the_alarm(
    relay: Relay, world: World, method: str
) -> None:
    found = first_alarm(relay, world)
    before = table(world)
    answer = call(world, method, found[HOUR])
    assert answer["statusCode"] == 405
    assert answer["headers"]["Allow"] == "GET, HEAD, POST"
    assert table(world) == before


@pytest.mark.parametrize(
    "parameters", [{"MuteLinks": "off"}, {"RepeatFolding": "off"}], ids=["mute-links-off", "folding-off"]
)
def test_switched_off_no_links_are_written_and_the_page_refuses(
    relay: Relay, world: World, parameters: dict[str, str]
) -> None:
    assert relay.mail(STORM, T0) is Outcome.DISTRIBUTED
    assert mute_links(world.sent()[-1].message) == {}
    assert "Mute this alarm" not in text_of(world.sent()[-1])
    keyring = keyring_of(world.account.client("secretsmanager"), world.environment["LINK_KEY_SECRET_ARN"])
    url = links.sign_mute(keyring, world.blueprint.download_url or "", "f" * 32, HOUR, "*", 2**31)
    for method in ("GET", "POST"):
        answer = call(world, method, url, headers={"Origin": origin_of(url)})
        assert answer["statusCode"] == 403
        assert "Muting is turned off" in answer["body"]
