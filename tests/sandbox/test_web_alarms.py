"""The web view's Alarms page without a browser, against the template's account in moto: alarm folding
driven through the handler's code with a simulated clock (tests/support/folding.py), what SES sent
collected by the sandbox's outbox, and the view's sources over both. Open, flapping, closed and muted
alarms as the page and its JSON show them; each incident's timeline with the digests tied to it; folded
mails marked with their incident in the list, the search and the mail page; and the unmute POST, which
needs the page's token and the view's own Origin, and ends the mute with its digest."""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from app import folding
from app.alarms.timeline import Closing, Decision
from app.outcomes import Outcome
from sandbox.outbox import Outbox
from sandbox.web import alarms, api, data, routes, search, server, view
from sandbox.web.alarmtable import AlarmTable
from sandbox.web.exchange import Request
from tests.support.folding import MINUTE, RECIPIENTS, T0, Relay
from tests.support.sandbox import view_over
from tests.support.world import World, local_world

pytestmark = pytest.mark.integration

HOSTILE = "ALARM <script>alert(1)</script> Door 7 open"
PUMP = "PROBLEM: Pump 3 pressure 9.{} bar"
SECOND = timedelta(seconds=1)


@dataclass
class Setting:
    """The relay with its clock, the outbox of what SES sent, and the view's sources over both."""

    world: World
    relay: Relay
    outbox: Outbox
    sources: data.Sources

    def collect(self) -> None:
        self.outbox.collect()


def _setting(world: World, tmp_path: Path) -> Setting:
    relay = Relay(world)
    # the relay's own alarm table, with its clock
    outbox, sources = view_over(world, tmp_path, alarm_table=AlarmTable(relay.settings, relay.ports))
    return Setting(world, relay, outbox, sources)


@pytest.fixture
def setting(world: World, tmp_path: Path) -> Setting:
    return _setting(world, tmp_path)


def _storms(s: Setting) -> dict[str, str]:
    """Four alarms: a pump storm with a digest (open), a tank alarm that recovered (closed), a fan that
    flaps, and a door muted by a guard. Returns name -> fingerprint."""
    relay = s.relay
    assert relay.mail(PUMP.format(0), T0) is Outcome.DISTRIBUTED
    for n in range(1, 6):
        assert relay.mail(PUMP.format(n), T0 + n * MINUTE, f"t,{n}\n".encode()) is Outcome.FOLDED
    assert relay.mail("ALARM: Tank 4 level 81%", T0 + 30 * SECOND) is Outcome.DISTRIBUTED
    assert relay.mail("ALARM: Tank 4 level 82%", T0 + MINUTE + 30 * SECOND) is Outcome.FOLDED
    assert relay.mail("RESOLVED: Tank 4 level 60%", T0 + 2 * MINUTE + 30 * SECOND) is Outcome.DISTRIBUTED
    assert relay.mail(HOSTILE, T0 + 15 * SECOND) is Outcome.DISTRIBUTED
    for n in range(9):  # the fifth opening within the hour makes it flap
        subject = "UP: Fan 2" if n % 2 else "DOWN: Fan 2"
        outcome = relay.mail(subject, T0 + n * MINUTE + 45 * SECOND)
        assert outcome is (Outcome.FOLDED if n == 8 else Outcome.DISTRIBUTED), n
    assert relay.ports.incidents is not None
    fingerprints = {
        name: stored.state.fingerprint
        for stored in relay.ports.incidents.alarms()
        for name in ("pump", "tank", "fan", "door")
        if name in stored.state.subject.lower()
    }
    relay.now = T0 + 6 * MINUTE
    folding.mute(fingerprints["door"], T0 + 66 * MINUTE, "guard@example.com", relay.settings, relay.ports)
    for n in (7, 8):
        assert relay.mail(HOSTILE, T0 + n * MINUTE) is Outcome.FOLDED
    relay.tick(T0 + 10 * MINUTE)  # the pump's first digest
    s.collect()
    return fingerprints


def _by_subject(book: alarms.Book) -> dict[str, alarms.Incident]:
    return {i.subject: i for i in book.open}


def test_the_page_shows_open_flapping_closed_and_muted_alarms_with_their_digests(setting: Setting) -> None:
    fingerprints = _storms(setting)
    book = alarms.book(setting.sources)
    assert book.folding
    assert book.error == ""
    opened = _by_subject(book)
    assert set(opened) == {PUMP.format(0), HOSTILE, "DOWN: Fan 2"}
    pump = opened[PUMP.format(0)]
    assert (pump.state, pump.folded, pump.sender, pump.recipients) == (
        "open",
        5,
        "plc-7@plant.example.com",
        tuple(sorted(RECIPIENTS)),  # the final recipient set, sorted
    )
    assert (pump.opened_at, pump.last_mail_at) == (T0, T0 + 5 * MINUTE)
    assert [d.subject for d in pump.digests] == ["Digest, 5 repeats: " + PUMP.format(0)]
    assert sorted(pump.digests[0].recipients) == sorted(RECIPIENTS)
    assert pump.next_digest_at is None  # nothing folded since the digest
    assert pump.closes_at == T0 + 5 * MINUTE + setting.relay.settings.folding.policy.quiet  # type: ignore[union-attr]
    fan = opened["DOWN: Fan 2"]
    assert (fan.state, fan.folded) == ("flapping", 1)
    assert [d.subject for d in fan.digests] == ["Flapping: DOWN: Fan 2"]
    door = opened[HOSTILE]
    assert (door.state, door.folded, door.digests) == ("open", 2, ())
    assert door.mute is not None
    assert list(book.open) == [fan, pump, door]  # the noisiest first: flapping, then by repeats folded
    # Closed: the tank by its recovery (its one repeat in the last digest, sent just before it), and the
    # fan's four cycles before it flapped.
    tank = next(i for i in book.closed if i.subject == "ALARM: Tank 4 level 81%")
    assert tank.closed is not None
    assert (tank.closed.how, tank.folded, tank.closed.closed_at) == (
        Closing.RECOVERY,
        1,
        T0 + 2 * MINUTE + 30 * SECOND,
    )
    assert tank.last_mail_at == T0 + 2 * MINUTE + 30 * SECOND
    assert [d.subject for d in tank.digests] == [
        "Recovered, 1 repeat in a last digest: ALARM: Tank 4 level 81%"
    ]
    cycles = [i for i in book.closed if i.fingerprint == fingerprints["fan"]]
    assert [(i.closed.how, i.folded) for i in cycles if i.closed] == [(Closing.RECOVERY, 0)] * 4
    assert book.others == ()  # every mail the relay sent about an alarm is tied to its incident
    (muting,) = book.mutes
    assert (muting.fingerprint, muting.mute.by, muting.mute.at, muting.mute.until, muting.folded) == (
        fingerprints["door"],
        "guard@example.com",
        T0 + 6 * MINUTE,
        T0 + 66 * MINUTE,
        2,
    )
    assert muting.incident == door.id
    assert not muting.over

    document = api.alarms(book)
    assert [i["subject"] for i in document["open"]] == ["DOWN: Fan 2", PUMP.format(0), HOSTILE]
    assert document["open"][1]["folded"] == 5
    assert document["open"][1]["digests"][0]["urls"]["raw"].startswith("/raw?sent=")
    assert document["mutes"][0]["by"] == "guard@example.com"
    assert document["mutes"][0]["until"] == (T0 + 66 * MINUTE).isoformat()
    assert api.alarms(alarms.book(setting.sources))["version"] == document["version"]  # nothing changed

    route, _ = routes.find("GET", "/alarms")
    assert route is not None
    the_view = view.View(setting.sources, lambda: 0, routes.NAV)
    page = route.action(the_view, Request("GET", "/alarms", {}, {}, "127.0.0.1:8025")).body.decode()
    assert "<script>alert" not in page  # the sender's subject, escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f'<tr class="incident" data-incident="{pump.id}" data-state="open">' in page
    assert re.search(r'<td class="num folded">5</td>\s*<td class="num digests">1</td>', page)
    assert f'id="unmute-{fingerprints["door"]}"' in page
    assert '<a href="/alarms" aria-current="page">Alarms</a>' in page


def test_an_incidents_timeline_lists_its_first_mail_folded_mails_digests_and_recovery(
    setting: Setting,
) -> None:
    _storms(setting)
    book = alarms.book(setting.sources)
    pump = _by_subject(book)[PUMP.format(0)]
    found = alarms.timeline(setting.sources, pump.id)
    assert found is not None
    kinds = [(e.kind, e.subject) for e in found.events]
    assert kinds == [
        ("first", PUMP.format(0)),
        *[("folded", PUMP.format(n)) for n in range(1, 6)],
        ("digest", "Digest, 5 repeats: " + PUMP.format(0)),
    ]
    assert [e.key for e in found.events[:2]] == ["incoming/alarm-1.eml", "incoming/alarm-2.eml"]
    assert [e.attachments for e in found.events[1:6]] == [1] * 5
    digest = found.events[-1].digest
    assert digest is not None
    assert "5 repeats of this alarm folded" in digest.letter.text
    assert (
        alarms.digest_file(setting.sources, digest.file)
        == (setting.sources.data_dir / "outbox" / digest.file).read_bytes()
    )
    relayed = data.deliveries(setting.sources, ["incoming/alarm-1.eml"])["incoming/alarm-1.eml"][0]["file"]
    assert alarms.digest_file(setting.sources, relayed) is None  # a relayed mail is not a digest
    assert alarms.digest_file(setting.sources, "../sandbox.json") is None

    tank = next(i for i in book.closed if i.subject == "ALARM: Tank 4 level 81%")
    closed = alarms.timeline(setting.sources, tank.id)
    assert closed is not None
    assert [e.kind for e in closed.events] == ["first", "folded", "digest", "recovery"]
    assert closed.events[-1].subject == "RESOLVED: Tank 4 level 60%"
    fan = _by_subject(book)["DOWN: Fan 2"]
    flapping = alarms.timeline(setting.sources, fan.id)
    assert flapping is not None
    assert [e.kind for e in flapping.events] == ["opened", "flapping", "digest"]  # its first mail was folded
    document = api.timeline(found)
    assert document["events"][1]["urls"]["page"] == "/mail?key=incoming%2Falarm-2.eml"
    assert alarms.timeline(setting.sources, "no-such-incident") is None
    page = view.incident_page(setting.sources, Request("GET", "/incident", {"id": [pump.id]}, {}, "h"))
    assert page["timeline"] == found
    with pytest.raises(view.NotFound):
        view.incident_page(setting.sources, Request("GET", "/incident", {"id": ["nothing"]}, {}, "h"))


def test_folded_mails_show_their_incident_in_the_list_the_search_and_the_mail_page(setting: Setting) -> None:
    _storms(setting)
    pump = _by_subject(alarms.book(setting.sources))[PUMP.format(0)]
    rows = {row.key: row for row in data.mails(setting.sources)}
    first, repeat = rows["incoming/alarm-1.eml"], rows["incoming/alarm-2.eml"]
    assert first.state.kind == "distributed"
    assert first.folding is not None
    assert (first.folding.decision, first.incident) == (Decision.RELAY_FIRST, pump.id)
    assert repeat.state == data.MailState(
        "folded", f"folded into {pump.id}", "a repeat of an open alarm: listed in its next digest"
    )
    assert repeat.state.final  # deletable, and never "being processed"
    recovery = next(r for r in rows.values() if r.subject == "RESOLVED: Tank 4 level 60%")
    assert recovery.folding is not None
    assert recovery.folding.decision is Decision.RELAY_RECOVERY
    flapped = next(r for r in rows.values() if r.state.kind == "folded" and "Fan" in r.subject)
    assert flapped.state.detail.startswith("the alarm is flapping")
    folded = {key for key, row in rows.items() if search.matcher("state:folded")(row)}
    assert folded == {key for key, row in rows.items() if row.state.kind == "folded"}
    assert len(folded) == 5 + 1 + 1 + 2  # pump, tank, fan, door
    assert {key for key, row in rows.items() if search.matcher(pump.id)(row)} == {
        f"incoming/alarm-{n}.eml" for n in range(1, 7)
    }  # an incident's id finds its mails
    listed = api.mails(list(rows.values()), "")["mails"]
    shown = next(m for m in listed if m["key"] == repeat.key)
    assert shown["folding"] == {"decision": "fold", "incident": pump.id, "urls": api.incident_urls(pump.id)}
    fragment = view.environment().get_template("rows.html").render(rows=[repeat, first], q="")
    link = f'<a class="incident" href="/incident?id={quote(pump.id, safe="")}">'
    assert (
        f'<span class="state folded" title="{repeat.state.detail}">folded into {link}<code>{pump.id}</code></a></span>'
        in fragment
    )
    assert (
        f'data-fold="first" href="/incident?id={quote(pump.id, safe="")}">first mail of <code>{pump.id}</code></a>'
        in fragment
    )

    one = data.one_mail(setting.sources, repeat.key)
    assert one is not None
    assert one.relayed == []  # the relay sent nothing for it
    assert api.mail(one)["state"]["kind"] == "folded"
    page = (
        view.View(setting.sources, lambda: 0, routes.NAV)
        .mail(Request("GET", "/mail", {"key": [repeat.key]}, {}, "127.0.0.1:8025"))
        .body.decode()
    )
    assert f'<dd id="folding" data-fold="fold">folded into {link}<code>{pump.id}</code></a>' in page


def test_a_mails_decision_is_asked_until_found_then_kept(setting: Setting) -> None:
    """The list polls every two seconds: the table is asked only about mails still on their way."""
    calls: list[str] = []
    table = setting.sources.alarm_table
    incidents = table.incidents
    assert incidents is not None
    load_seen = incidents.load_seen

    def counted(key: str) -> Any:
        calls.append(key)
        return load_seen(key)

    incidents.load_seen = counted  # type: ignore[method-assign]
    assert table.decisions(["incoming/waiting"], settled=set()) == {}
    assert table.decisions(["incoming/waiting"], settled=set()) == {}
    assert calls == ["incoming/waiting"] * 2  # on its way: asked again
    setting.relay.mail(PUMP.format(0), T0)
    found = table.decisions(["incoming/alarm-1.eml", "incoming/alarm-1.eml"], settled=set())
    assert found["incoming/alarm-1.eml"].decision is Decision.RELAY_FIRST
    assert table.decisions(["incoming/notice"], settled={"incoming/notice"}) == {}
    calls.clear()
    table.decisions(["incoming/alarm-1.eml", "incoming/notice"], settled={"incoming/notice"})
    assert calls == []  # found once, or settled without one: kept


@pytest.fixture
def served(setting: Setting) -> Iterator[tuple[Setting, str]]:
    web = server.WebView(socket.create_server(("127.0.0.1", 0)), "127.0.0.1", setting.sources, lambda: 0)
    web.start()
    try:
        yield setting, web.url.rstrip("/")
    finally:
        web.stop()


def _open(request: urllib.request.Request | str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the view on loopback
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), refused.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def _post(url: str, form: str, origin: str | None) -> tuple[int, dict[str, str]]:
    headers = {"Origin": origin} if origin else {}
    request = urllib.request.Request(url, data=form.encode(), headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.build_opener(_NoRedirect()).open(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as answer:
        return answer.code, dict(answer.headers)


def test_the_unmute_button_needs_the_pages_token_and_origin_and_ends_the_mute_with_its_digest(
    served: tuple[Setting, str],
) -> None:
    setting, url = served
    fingerprints = _storms(setting)
    door = fingerprints["door"]
    status, _, page = _open(url + "/alarms")
    assert status == 200
    (token,) = set(re.findall(r'name="token" value="([^"]+)"', page))
    assert f'<input type="hidden" name="fingerprint" value="{door}">' in page
    form = f"fingerprint={door}"
    refused = [
        _post(url + "/unmute", form, url),  # no token
        _post(url + "/unmute", f"{form}&token={token}", "http://evil.example"),  # another origin
        _post(url + "/unmute", f"{form}&token={token}", None),  # no origin at all
        _post(url + "/unmute", f"{form}&token=guessed", url),
    ]
    assert [status for status, _ in refused] == [403] * 4
    assert _open(url + "/unmute")[0] == 405
    incidents = setting.relay.ports.incidents
    assert incidents is not None
    stored = incidents.load(door)
    assert stored is not None
    assert stored.state.mute is not None  # still muted
    sent = len(setting.world.sent())

    setting.relay.now = T0 + 12 * MINUTE
    status, headers = _post(url + "/unmute", f"{form}&token={token}", url)
    assert (status, headers["Location"]) == (303, f"/alarms?unmuted={door}&digests=1")
    stored = incidents.load(door)
    assert stored is not None
    assert stored.state.mute is None
    (digest,) = setting.world.sent()[sent:]
    assert " ".join(str(digest.message["Subject"]).split()) == f"Mute ended, 2 mails folded: {HOSTILE}"
    assert "Unmuted by sandbox web view" in digest.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    setting.collect()
    status, _, page = _open(url + headers["Location"])
    assert 'id="unmuted"' in page
    assert 'id="no-mutes"' in page
    shown = _by_subject(alarms.book(setting.sources))[HOSTILE]
    assert [d.subject for d in shown.digests] == [f"Mute ended, 2 mails folded: {HOSTILE}"]
    assert _post(url + "/unmute", f"fingerprint=unknown&token={token}", url)[0] == 404
    # An alarm muted with no incident open: its mute-end digest belongs to no incident, and is listed apart.
    tank = fingerprints["tank"]
    folding.mute(tank, T0 + 72 * MINUTE, "guard@example.com", setting.relay.settings, setting.relay.ports)
    assert _post(url + "/unmute", f"fingerprint={tank}&token={token}", url)[0] == 303
    setting.collect()
    others = alarms.book(setting.sources).others
    assert [d.subject for d in others] == ["Mute ended, 0 mails folded: RESOLVED: Tank 4 level 60%"]
    assert 'class="others"' in _open(url + "/alarms")[2]


def test_with_folding_off_the_page_says_so_and_mails_carry_no_decision(tmp_path: Path) -> None:
    with local_world({"RepeatFolding": "off"}) as off:
        s = _setting(off, tmp_path)
        assert s.relay.settings.folding is None
        assert s.relay.mail(PUMP.format(0), T0) is Outcome.DISTRIBUTED
        assert s.relay.mail(PUMP.format(1), T0 + MINUTE) is Outcome.DISTRIBUTED
        s.collect()
        assert alarms.book(s.sources) == alarms.Book(folding=False)
        assert [(row.state.kind, row.folding) for row in data.mails(s.sources)] == [("distributed", None)] * 2
        route, _ = routes.find("GET", "/alarms")
        assert route is not None
        page = route.action(
            view.View(s.sources, lambda: 0, routes.NAV), Request("GET", "/alarms", {}, {}, "h")
        )
        assert 'id="folding-off"' in page.body.decode()
