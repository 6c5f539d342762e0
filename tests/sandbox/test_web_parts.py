"""The web view's parts without a browser: escaping and the frame's policy, the POST checks, the route
table, the search, what became of a mail (matched by its key, not its Message-ID), link states from the
download function's own code, the images `/part` serves a framed mail (the received one's, a relayed one's
previews) over the view's own server, SES's header block, the X-Ray listener and the waterfall's expected
faults, the trace search, the log journal, the outbox's links and its delete, and the claim of the web port."""

from __future__ import annotations

import datetime
import html
import json
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jinja2
import pytest

from app.alarms.timeline import Decision, Seen
from app.config import DownloadSettings
from app.handler import lambda_handler
from sandbox.claim import Unavailable, claim
from sandbox.journal import Journal
from sandbox.outbox import Outbox, relay_links
from sandbox.runner import recipients_text, senders_text
from sandbox.smtp import ses_headers
from sandbox.web import api, data, routes, safety, search, server, traces, view
from sandbox.web.exchange import Request
from sandbox.web.linkstate import LinkJudge
from sandbox.xray import Daemon, Trace, new_trace_id
from tests.support import images
from tests.support.sandbox import NoNotices, view_over
from tests.support.world import World

pytestmark = pytest.mark.unit

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">"quoted" & \'single\''
T0 = 1_790_000_000.0
BASE_URL = "https://abcdefghij.lambda-url.us-east-1.on.aws/"
WHEN = datetime.datetime(2026, 11, 29, tzinfo=datetime.UTC)


def _summary(**changes: Any) -> data.Summary:
    base = data.Summary(HOSTILE, "in@x", HOSTILE, "<m@x>", "body text", 0)
    return data.Summary(**{**base.__dict__, **changes})


def _row(subject: str = HOSTILE, **changes: Any) -> data.MailRow:
    base = data.MailRow(
        key="incoming/abc",
        size=1234,
        time=WHEN,
        summary=_summary(subject=subject),
        state=data.MailState("notice", "notice: virus", HOSTILE),
        recipients=[],
        links=0,
    )
    return data.MailRow(**{**base.__dict__, **changes})


def _request(path: str = "/", **query: str) -> Request:
    return Request("GET", path, {k: [v] for k, v in query.items()}, {}, "127.0.0.1:8025")


def test_mail_content_is_escaped_in_every_page_and_the_html_is_only_framed() -> None:
    env = view.environment()
    rows = env.get_template("rows.html").render(rows=[_row()], q="")
    assert "<script>" not in rows
    assert "<img" not in rows
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rows
    relayed = data.Relayed(
        1,
        "f.eml",
        [HOSTILE],
        HOSTILE,
        HOSTILE,
        HOSTILE,
        [data.Header("X", HOSTILE, False)],
        data.Raw(HOSTILE, 9),
        [],
    )
    notice = data.NoticeRecord("n.json", "incoming/abc", HOSTILE, HOSTILE, HOSTILE, HOSTILE)
    mail = data.OneMail(
        row=_row(),
        headers=[data.Header("Subject", HOSTILE, False)],
        parts=[data.Part(0, "text/html", HOSTILE, "attachment", HOSTILE, 3)],
        text=HOSTILE,
        html=HOSTILE,
        raw=data.Raw(HOSTILE, len(HOSTILE)),
        relayed=[relayed],
        notices=[notice],
        log=[data.log_line(HOSTILE)],
    )
    page = env.get_template("mail.html").render(
        mail=mail,
        version="v",
        waterfalls=[],
        safe_link=lambda url: False,
        scale=1000,
        token="t",
        nav=routes.NAV,
        path="/mail",
        q=HOSTILE,
        kept="",
    )
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "srcdoc" not in page  # the mail's HTML is never part of the page
    frames = [line for line in page.splitlines() if "<iframe" in line]
    assert len(frames) == 2  # the relayed mail's and the received one's
    for frame in frames:
        assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame
        assert 'src="/frame?key=incoming%2Fabc' in frame


def test_the_framed_mail_has_its_own_policy_and_cid_images_come_from_the_view_only() -> None:
    policy = dict(d.strip().split(" ", 1) for d in safety.frame_policy("http://127.0.0.1:8025").split(";"))
    assert policy["default-src"] == "'none'"  # no script-src: scripts fall back to none
    assert "script-src" not in policy
    assert policy["img-src"] == "data: http://127.0.0.1:8025/part"
    assert policy["frame-ancestors"] == "http://127.0.0.1:8025"
    assert policy["sandbox"] == safety.FRAME_SANDBOX
    assert "allow-scripts" not in safety.FRAME_SANDBOX
    assert "allow-same-origin" not in safety.FRAME_SANDBOX
    page = dict(d.strip().split(" ", 1) for d in safety.PAGE_POLICY.split(";"))
    assert page["script-src"] == "'self'"
    assert page["style-src"] == "'self'"
    assert page["frame-ancestors"] == "'none'"
    html = '<img src="cid:snap%401@cam"><div style="background: url(\'cid:bg\')">cid:not-a-url</div>'
    document = safety.frame_document(html, lambda cid: f"VIEW/part?cid={cid}")
    assert document.startswith('<!DOCTYPE html><meta charset="utf-8"><base target="_blank">')
    assert '<img src="VIEW/part?cid=snap%401@cam">' in document
    assert "url('VIEW/part?cid=bg')" in document
    assert ">cid:not-a-url<" in document


def test_a_cid_url_finds_its_part_by_content_id() -> None:
    message = EmailMessage()
    message.set_content("text")
    message.add_alternative('<img src="cid:a%25b@cam">', subtype="html")
    html_part = message.get_payload()[1]
    html_part.add_related(b"\x89PNG...", maintype="image", subtype="png", cid="<a%b@cam>")
    parsed = data.parse(message.as_bytes())
    found = data.content_id_part(parsed, "a%25b@cam")
    assert found is not None
    assert found.get_content_type() == "image/png"
    assert data.content_id_part(parsed, "other@cam") is None


def test_a_post_must_come_from_the_views_origin_with_its_token() -> None:
    host = "127.0.0.1:8025"
    assert safety.same_origin("http://127.0.0.1:8025", None, host)
    assert safety.same_origin(None, "http://127.0.0.1:8025/status", host)
    assert not safety.same_origin("http://evil.example", "http://127.0.0.1:8025/status", host)
    assert not safety.same_origin("null", None, host)
    assert not safety.same_origin(None, None, host)
    assert not safety.same_origin("http://[", None, host)  # urlsplit raises on it: refused, not a crash
    assert not safety.same_origin(None, "http://[x", host)
    token = safety.new_token()
    assert safety.token_ok(token, token)
    assert not safety.token_ok(token, None)
    assert not safety.token_ok(token, token[:-1])


def test_on_loopback_only_its_own_names_are_answered() -> None:
    assert safety.allowed_hosts("127.0.0.1", 8025) == {
        "127.0.0.1:8025",
        "localhost:8025",
        "[::1]:8025",
    }
    assert safety.allowed_hosts("0.0.0.0", 8025) is None  # noqa: S104 - the value under test
    assert safety.safe_link("http://127.0.0.1:4566/bucket/key?sig", "http://127.0.0.1:4566")
    assert not safety.safe_link("http://127.0.0.1:45660/x", "http://127.0.0.1:4566")
    assert not safety.safe_link("javascript:alert(1)", "http://127.0.0.1:4566")


def test_the_route_table_dispatches_and_names_the_methods_a_path_takes() -> None:
    assert routes.find("GET", "/")[0] is routes.ROUTES[0]
    route, _ = routes.find("HEAD", "/api/mails")
    assert route is not None
    assert route.action is view.View.api_mails
    assert routes.find("GET", "/static/style.css")[0].action is view.View.static  # type: ignore[union-attr]
    assert routes.find("GET", "/redrive") == (None, ["POST"])
    assert routes.find("POST", "/mail") == (None, ["GET"])
    assert routes.find("GET", "/nothing") == (None, [])
    assert routes.find("GET", "/static")[0] is None  # a prefix route needs its slash
    assert routes.NAV == [("/", "Mails"), ("/alarms", "Alarms"), ("/traces", "Traces"), ("/status", "Status")]
    assert routes.find("GET", "/unmute") == (None, ["POST"])
    assert {r.method for r in routes.ROUTES} == {"GET", "POST"}
    paths = [(r.method, r.path) for r in routes.ROUTES]
    assert len(paths) == len(set(paths))


def test_a_new_page_is_one_route_with_its_template_and_what_it_gathers() -> None:
    """As the Alarms page was added: a line in the table, a template, a gather function (which may say
    that what the page is about does not exist)."""
    nav = [*routes.NAV, ("/example", "Example")]
    the_view = view.View(None, lambda: 0, nav)  # type: ignore[arg-type]  # this page reads no source
    example = '{% extends "base.html" %}{% block main %}<h1>{{ open }} open</h1>{% endblock %}'
    the_view.templates.loader = jinja2.ChoiceLoader(
        [jinja2.DictLoader({"example.html": example}), the_view.templates.loader]  # type: ignore[list-item]
    )

    def gather(sources: data.Sources, request: Request) -> dict[str, Any]:
        if request.arg("id") == "gone":
            raise view.NotFound("no such thing")
        return {"open": 2}

    route = routes.Route("GET", "/example", view.page("example.html", gather), "Example")
    page = route.action(the_view, _request("/example")).body.decode()
    assert "<h1>2 open</h1>" in page
    assert '<a href="/example" aria-current="page">Example</a>' in page
    assert '<a href="/status">Status</a>' in page
    missing = route.action(the_view, _request("/example", id="gone"))
    assert (missing.status, missing.body) == (404, b"no such thing\n")


def test_the_search_matches_words_fields_flags_and_exclusions() -> None:
    row = _row(
        "Pump 3 pressure",
        summary=_summary(
            sender="sensor@plant.example.com", subject="Pump 3 pressure", text="reading 9.1 bar"
        ),
        state=data.MailState("distributed", "distributed to 2, 1 link", "alice@example.com, bob@example.org"),
        recipients=["alice@example.com", "bob@example.org"],
        links=1,
    )

    def hit(query: str) -> bool:
        return search.matcher(query)(row)

    for query in ("", "pump", "PLANT", "bar", "alice", "distributed", '"pressure"', "from:sensor", "to:bob"):
        assert hit(query), query
    assert hit("subject:pump has:links state:distributed")
    assert hit("-virus")
    assert hit('"pump 3"')
    for query in ("virus", "from:alice", "subject:bar", "has:attachment", "-pump", "pump virus", '"3 pump"'):
        assert not hit(query), query
    assert search.terms('unbalanced "quote') == [search.Term("unbalanced"), search.Term('"quote')]
    assert search.terms(r'C:\temp "D:\new dir"') == [  # backslashes are searched as typed
        search.Term("c:\\temp"),
        search.Term("d:\\new dir"),
    ]
    assert search.is_annotation_query('annotation.reason = "virus"')
    assert not search.is_annotation_query("virus")


def _known(**changes: Any) -> data.Known:
    return data.Known(**{**data.Known(notices={}, sent={}, dead={}, queued={}).__dict__, **changes})


def _notice(key: str, reason: str, detail: str = "") -> data.NoticeRecord:
    return data.NoticeRecord("n.json", key, reason, detail, "subject", "{}")


def test_the_state_of_a_mail_from_what_the_sandbox_keeps_by_its_key() -> None:
    key = "incoming/abc"
    link = BASE_URL + "d/1/a.bin?exp=1&kid=k0&sig=s"
    sent = {
        key: [
            {"destinations": ["a@x", "b@x"], "links": [link]},
            {"destinations": ["c@x"], "links": [link]},  # a second chunk carries the same link
        ]
    }
    assert data.state_of(key, _known(sent=sent)) == data.MailState(
        "distributed", "distributed to 3, 1 link", "a@x, b@x, c@x"
    )
    assert data.state_of("incoming/other", _known(sent=sent)).kind == "accepted"
    virus = {key: [_notice(key, "virus", "SES's virus scan failed the mail")]}
    assert data.state_of(key, _known(notices=virus)) == data.MailState(
        "notice", "notice: virus", "SES's virus scan failed the mail"
    )
    left_out = {key: [_notice(key, "invalid_recipients")]}
    both = data.state_of(key, _known(sent=sent, notices=left_out))
    assert (both.kind, both.detail) == ("distributed", "a@x, b@x, c@x; notice: invalid_recipients")
    assert data.state_of(key, _known(dead={key: 5})).kind == "dlq"
    assert data.state_of(key, _known(queued={key: 0})).kind == "waiting"
    assert data.state_of(key, _known(queued={key: 1})).label == "being processed"
    assert data.state_of(key, _known(queued={key: 2})).label == "retrying (received 2 times)"
    assert not data.state_of(key, _known()).final
    # A repeat folding folded sends nothing: its decision says so, and it is done (not "being processed").
    folded = data.state_of(
        key, _known(decisions={key: Seen(key, "fp", Decision.FOLD, "fp-1")}, queued={key: 1})
    )
    assert (folded.kind, folded.label, folded.final) == ("folded", "folded into fp-1", True)
    flapping = data.state_of(key, _known(decisions={key: Seen(key, "fp", Decision.FLAPPING, "fp-1")}))
    assert flapping.detail.startswith("the alarm is flapping")
    first = {key: Seen(key, "fp", Decision.RELAY_FIRST, "fp-1")}
    assert (
        data.state_of(key, _known(decisions=first, queued={key: 1})).label == "being processed"
    )  # not sent yet
    assert data.state_of(key, _known(decisions=first, sent=sent)).kind == "distributed"


def test_a_log_line_is_pretty_and_its_metrics_apart() -> None:
    line = data.log_line(
        json.dumps({"level": "INFO", "message": "mail distributed", "_aws": {"Timestamp": 1}})
    )
    assert (line.level, line.message) == ("INFO", "mail distributed")
    assert "_aws" not in line.document
    assert line.document.startswith("{\n  ")
    assert json.loads(line.metrics) == {"Timestamp": 1}
    assert data.log_line("not json").document == '{\n  "message": "not json"\n}'


def test_the_keys_an_s3_notification_names_are_decoded() -> None:
    body = json.dumps({"Records": [{"s3": {"object": {"key": "incoming/a+b%2Fc"}}}]})
    assert data.keys_in(body) == ["incoming/a b/c"]
    assert data.keys_in(json.dumps({"Event": "s3:TestEvent"})) == []
    assert data.keys_in("not json") == []


def test_ses_block_is_marked_and_a_senders_lookalike_headers_are_not() -> None:
    block = ses_headers(
        "s@plant.example.com", "in@x", "helo", "127.0.0.1", "id1", "PASS", domain="plant.example.com"
    )
    message = EmailMessage()
    message["From"] = "s@plant.example.com"
    message["X-SES-Virus-Verdict"] = "PASS"  # the sender's own, after SES's block
    message.set_content("hi")
    parsed = data.parse(block + message.as_bytes())
    marked = [(h.name, h.ses) for h in data.headers(parsed)]
    assert [name for name, ses in marked if ses] == [
        "Return-Path",
        "Received",
        "X-SES-Spam-Verdict",
        "X-SES-Virus-Verdict",
        "Received-SPF",
        "Authentication-Results",
        "X-SES-RECEIPT",
        "X-SES-DKIM-SIGNATURE",
    ]
    assert ("X-SES-Virus-Verdict", False) in marked
    assert [p.content_type for p in data.structure(parsed)] == ["text/plain"]


def test_the_banner_says_exactly_who_is_refused() -> None:
    assert senders_text({}) == "anyone (open: no From is refused; SENDER_AUTH applies only to a list)"
    assert senders_text({"ALLOWED_SENDERS": "@plant.example.com", "SENDER_AUTH": "required"}) == (
        "@plant.example.com (others refused; these only when SES authenticates their domain: SENDER_AUTH required)"
    )
    assert "the From alone decides" in senders_text({"ALLOWED_SENDERS": "@x", "SENDER_AUTH": "off"})
    assert recipients_text({}) == "anyone (open)"
    assert recipients_text({"ALLOWED_RECIPIENTS": "@example.com"}).endswith("named in a notice)")


# -- the outbox ------------------------------------------------------------------------------------------
def _sent(n: int, body: str) -> SimpleNamespace:
    raw = f"From: relay@example.com\r\nTo: ops@example.com\r\nSubject: reading {n}\r\n\r\n{body}\r\n"
    return SimpleNamespace(id=f"ses-{n}", raw_data=raw, source="relay@example.com", destinations=["ops@x"])


def test_the_outbox_counts_only_the_relays_links_and_forgets_what_is_deleted(tmp_path: Path) -> None:
    base = "http://127.0.0.1:8480/"
    link = base + "d/1/a.csv?exp=1&kid=k0&sig=s"
    assert relay_links(["http://evil.example.net/x", link, "http://127.0.0.1:84800/x"], base) == [link]
    sent: list[SimpleNamespace] = []
    lines: list[str] = []
    outbox = Outbox(tmp_path, NoNotices(), "notices-url", lambda: sent, lines.append, link_base=base)
    sent += [_sent(1, f"See http://evil.example.net/x\n- a.csv: {link}"), _sent(2, "no links")]
    assert outbox.collect() == 2
    assert lines[0].startswith("sent     'reading 1' to ops@x (1 link) -> outbox/")
    assert lines[1] == f"         {link}"
    index = tmp_path / "outbox" / "index.jsonl"
    entries = [json.loads(line) for line in index.read_text().splitlines()]
    assert [(e["ses_message_id"], e["links"]) for e in entries] == [("ses-1", [link]), ("ses-2", [])]
    (tmp_path / "notices" / "n.json").write_text("{}")
    outbox.forget({entries[0]["file"]}, {"n.json"})
    assert [json.loads(line)["ses_message_id"] for line in index.read_text().splitlines()] == ["ses-2"]
    assert not (tmp_path / "outbox" / entries[0]["file"]).exists()
    assert (tmp_path / "outbox" / entries[1]["file"]).exists()
    assert not (tmp_path / "notices" / "n.json").exists()
    assert [m.file for m in outbox.mails] == [entries[1]["file"]]
    with pytest.raises(ValueError, match="file names only"):
        outbox.forget({"../sandbox.json"}, set())


# -- against moto: the relay's own records tie each sent mail to its incoming key --------------------------
@pytest.fixture
def relayed(world: World, tmp_path: Path) -> tuple[World, data.Sources, Outbox]:
    """The relay in the template's account (download links signed with its secret); an outbox
    collecting what SES sent; the view's sources over both."""
    assert world.blueprint.download_url is not None
    settings = DownloadSettings.from_environ(world.environment)
    outbox, sources = view_over(world, tmp_path, links=LinkJudge(world.blueprint.download_url, settings))
    return world, sources, outbox


def _mail(subject: str, to: str, message_id: str | None, attachment: bytes | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = "sensor@plant.example.com"
    message["To"] = "inbox-7f3k9q@relay.example.com"
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    message.set_content(f"Reading.\nEmail_Rxers_Code:[{to}]:Email_Rxers_Code:\n")
    if attachment is not None:
        message.add_attachment(attachment, maintype="text", subtype="csv", filename="pump3.csv")
    return message.as_bytes()


def _stored(raw: bytes) -> bytes:
    """The mail as SES stores it: below its block of verdicts."""
    block = ses_headers(
        "sensor@plant.example.com", "inbox@x", "cam", "127.0.0.1", "id", "PASS", domain="plant.example.com"
    )
    return block + raw


def _relay(world: World, key: str, raw: bytes) -> None:
    world.put_mail(key, _stored(raw))
    assert lambda_handler(world.event(key), None) == {"batchItemFailures": []}


@pytest.mark.integration
def test_each_mail_shows_its_own_outcome_without_or_with_a_shared_message_id(
    relayed: tuple[World, data.Sources, Outbox],
) -> None:
    world, sources, outbox = relayed
    _relay(world, "incoming/c-none", _mail("no id", "a@example.com", None))
    _relay(world, "incoming/b-one", _mail("one", "b@example.com", "<same@plant>"))
    _relay(world, "incoming/a-two", _mail("two", "c@example.com", "<same@plant>"))
    world.put_mail("incoming/d-waiting", _stored(_mail("waiting", "d@example.com", None)))  # not relayed yet
    outbox.collect()
    listed = data.mails(sources)
    # Newest first, to the microsecond: a burst lands within one second of S3's times.
    assert [row.key for row in listed] == [
        "incoming/d-waiting",
        "incoming/a-two",
        "incoming/b-one",
        "incoming/c-none",
    ]
    rows = {row.key: row for row in listed}
    assert {key: (r.state.label, r.recipients) for key, r in rows.items()} == {
        "incoming/c-none": ("distributed to 1, 0 links", ["a@example.com"]),
        "incoming/b-one": ("distributed to 1, 0 links", ["b@example.com"]),
        "incoming/a-two": ("distributed to 1, 0 links", ["c@example.com"]),
        "incoming/d-waiting": ("being processed", []),
    }
    one = data.one_mail(sources, "incoming/a-two")
    assert one is not None
    assert [(r.number, r.destinations, r.subject) for r in one.relayed] == [(1, ["c@example.com"], "two")]
    assert data.relayed_file(sources, "incoming/a-two", one.relayed[0].file) is not None
    assert data.relayed_file(sources, "incoming/b-one", one.relayed[0].file) is None  # not that mail's
    document = api.mail(one)
    assert document["state"]["kind"] == "distributed"
    assert document["relayed"][0]["recipients"] == ["c@example.com"]


@pytest.mark.integration
def test_link_states_are_the_download_functions_answers_and_follow_revocation(
    relayed: tuple[World, data.Sources, Outbox],
) -> None:
    world, sources, outbox = relayed
    _relay(world, "incoming/pump", _mail("pump", "a@example.com", None, b"t,bar\n1,9.1\n"))
    outbox.collect()
    one = data.one_mail(sources, "incoming/pump")
    assert one is not None
    ((link,),) = [sent.links for sent in one.relayed]
    expires = int(parse_qs(urlsplit(link.url).query)["exp"][0])
    assert (link.name, link.state, link.status) == ("pump3.csv", "active", 302)
    assert link.expires == datetime.datetime.fromtimestamp(expires, datetime.UTC)
    assert link.label == f"active until {link.expires:%Y-%m-%d %H:%M} UTC"
    judge = sources.links
    assert judge is not None
    object_key = "attachments/" + urlsplit(link.url).path.lstrip("/")
    world.s3.put_object_tagging(
        Bucket=world.attachments, Key=object_key, Tagging={"TagSet": [{"Key": "revoked", "Value": "true"}]}
    )
    before = api.version(one)
    revoked = data.one_mail(sources, "incoming/pump")
    assert revoked is not None
    assert [(x.state, x.status) for x in revoked.relayed[0].links] == [("revoked", 410)]
    assert api.version(revoked) != before  # the open page reloads
    assert judge.judge(link.url, now=expires + 1).state == "expired"  # expiry is checked before the tag
    assert judge.judge(link.url.replace("sig=", "sig=x")).state == "not valid"
    world.s3.delete_object(Bucket=world.attachments, Key=object_key)
    assert (judge.judge(link.url).state, judge.judge(link.url).status) == ("missing", 404)
    assert judge.judge("http://evil.example.net/x").state == "not valid"


@pytest.mark.integration
def test_delete_removes_a_finished_mail_and_what_was_kept_of_it_but_not_a_mail_in_the_pipeline(
    relayed: tuple[World, data.Sources, Outbox],
) -> None:
    world, sources, outbox = relayed
    journal = Journal("test_web_parts.delete")
    sources.journal = journal
    _relay(world, "incoming/done", _mail("done", "a@example.com", None))
    _relay(world, "incoming/kept", _mail("kept", "b@example.com", None))
    world.put_mail("incoming/waiting", _stored(_mail("waiting", "c@example.com", None)))
    outbox.collect()
    journal.emit(logging.LogRecord("x", logging.INFO, "", 0, "line", None, None))  # no key: not kept
    record = logging.LogRecord("x", logging.INFO, "", 0, "mail distributed", None, None)
    record.key = "incoming/done"
    journal.emit(record)
    rows = {row.key: row for row in data.mails(sources)}
    (done_file,) = [e["file"] for e in data.deliveries(sources, ["incoming/done"])["incoming/done"]]
    deleted = data.delete(sources, [rows["incoming/done"], rows["incoming/waiting"]])
    assert [row.key for row in deleted] == ["incoming/done"]
    assert sorted(row.key for row in data.mails(sources)) == ["incoming/kept", "incoming/waiting"]
    assert not (sources.data_dir / "outbox" / done_file).exists()
    assert journal.lines("incoming/done") == []
    assert data.one_mail(sources, "incoming/kept") is not None
    assert data.one_mail(sources, "incoming/done") is None


@pytest.mark.integration
def test_the_views_json_and_its_rows_agree(relayed: tuple[World, data.Sources, Outbox]) -> None:
    world, sources, outbox = relayed
    _relay(world, "incoming/a", _mail("Pump 3", "a@example.com", None, b"t,bar\n"))
    _relay(world, "incoming/b", _mail("Tank 2", "b@example.com", "<b@plant>"))
    outbox.collect()
    the_view = view.View(sources, lambda: 0, routes.NAV)
    listed = json.loads(the_view.api_mails(_request("/api/mails", q="pump")).body)
    assert [(m["key"], m["subject"], m["state"]["kind"], m["links"]) for m in listed["mails"]] == [
        ("incoming/a", "Pump 3", "distributed", 1)
    ]
    page = the_view.rows(_request("/rows", q="pump")).body.decode()
    assert page.count('<tr class="mail"') == 1
    assert 'data-key="incoming/a" data-state="distributed"' in page
    assert json.loads(the_view.api_mails(_request("/api/mails", q="annotation.x =")).body) == {
        "error": "not understood: 'annotation.x =' (expected annotation.NAME = \"value\")"
    }


class _CountingS3:
    """The S3 client, counting the objects read whole (GetObject), by key."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.gets: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def get_object(self, **kwargs: Any) -> Any:
        self.gets.append(kwargs["Key"])
        return self._s3.get_object(**kwargs)


@pytest.mark.integration
def test_an_open_pages_poll_reads_and_parses_its_mail_once_and_its_version_follows_what_arrives_later(
    relayed: tuple[World, data.Sources, Outbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mail page polls its JSON every two seconds: the stored mail (up to 40 MB) and what was sent
    are read and parsed once, and the version still changes for a notice, a log line or trace."""
    world, sources, outbox = relayed
    key = "incoming/polled"
    _relay(world, key, _mail("polled", "a@example.com", None, b"t,bar\n1,9.1\n"))
    outbox.collect()
    s3 = _CountingS3(sources.s3)
    sources.s3 = s3
    parsed: list[int] = []
    real_parse = data.parse
    monkeypatch.setattr(
        data, "parse", lambda raw, *a, **k: parsed.append(len(raw)) or real_parse(raw, *a, **k)
    )
    the_view = view.View(sources, lambda: 0, routes.NAV)

    def poll() -> str:
        return str(json.loads(the_view.api_mail(_request("/api/mail", key=key)).body)["version"])

    first = poll()
    assert s3.gets.count(key) == 1
    reads = len(parsed)
    assert reads >= 2  # the mail received and the one sent
    for _ in range(3):
        assert poll() == first  # nothing changed: the same version...
    assert s3.gets.count(key) == 1  # ...without reading the mail again
    assert len(parsed) == reads  # or parsing it, or the mail sent
    page = the_view.mail(_request("/mail", key=key)).body.decode()
    assert f'data-version="{first}"' in page  # the page and its poll agree
    assert len(parsed) == reads

    # What arrives after the mail was sent: a log line, a notice, a piece of its trace.
    journal = Journal("test_web_parts.poll")
    sources.journal = journal
    record = logging.LogRecord("x", logging.INFO, "", 0, "mail distributed", None, None)
    record.key = key
    journal.emit(record)
    logged = poll()
    assert logged != first
    notice = {"notice": {"key": key, "reason": "late", "detail": "after the mail"}, "subject": "late"}
    (sources.data_dir / "notices").mkdir(exist_ok=True)
    (sources.data_dir / "notices" / "late.json").write_text(json.dumps(notice))
    noticed = poll()
    assert noticed != logged
    daemon = Daemon()
    try:
        sources.daemon = daemon
        trace_id = new_trace_id(T0)
        daemon.receive(_datagram(_segment(trace_id, key, "distributed")))
        traced = poll()
        assert traced != noticed
        daemon.receive(_datagram({**_segment(trace_id, key, "distributed"), "id": "seg2"}))  # a later piece
        assert poll() != traced
    finally:
        daemon.stop()
    assert s3.gets.count(key) == 1
    assert len(parsed) == reads


# -- the images a framed mail shows: /part, for the received mail and each one the relay sent --------
SNAPSHOT = images.camera_jpeg((1920, 1080))  # a camera's still, EXIF and all
LOGO = images.encode(images.halves((120, 40)), "PNG")
PDF = b"%PDF-1.4\n%%EOF\n"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def _camera_mail(to: str) -> bytes:
    """An NVR's mail: its HTML shows a logo and an SVG by cid: and links a PDF by cid:; a JPEG is attached."""
    message = EmailMessage()
    message["From"] = "nvr-4@plant.example.com"
    message["To"] = "inbox-7f3k9q@relay.example.com"
    message["Subject"] = "Motion detected: gate"
    message.set_content(f"Motion on channel 4.\nEmail_Rxers_Code:[{to}]:Email_Rxers_Code:\n")
    message.add_alternative(
        '<p>Motion on channel 4.</p><img src="cid:logo@nvr"><img src="cid:plan@nvr"><a href="cid:notes@nvr">n</a>',
        subtype="html",
    )
    html = message.get_body(("html",))
    assert html is not None
    html.add_related(LOGO, "image", "png", cid="<logo@nvr>")
    html.add_related(SVG, "image", "svg+xml", cid="<plan@nvr>")
    html.add_related(PDF, "application", "pdf", cid="<notes@nvr>")
    message.add_attachment(SNAPSHOT, maintype="image", subtype="jpeg", filename="cam4.jpg")
    return message.as_bytes()


@pytest.fixture
def served(relayed: tuple[World, data.Sources, Outbox]) -> Iterator[tuple[World, data.Sources, Outbox, str]]:
    """The view's own HTTP server over the relayed fixture's sources, on a free loopback port."""
    world, sources, outbox = relayed
    web = server.WebView(socket.create_server(("127.0.0.1", 0)), "127.0.0.1", sources, lambda: 0)
    web.start()
    try:
        yield world, sources, outbox, web.url.rstrip("/")
    finally:
        web.stop()


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the view on loopback
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), refused.read()


def _part(view_url: str, key: str, cid: str, sent: str = "") -> tuple[int, dict[str, str], bytes]:
    where = f"key={quote(key, safe='')}" + (f"&sent={quote(sent, safe='')}" if sent else "")
    return _get(f"{view_url}/part?{where}&cid={quote(cid, safe='')}")


def _views_headers(headers: dict[str, str], content_type: str) -> None:
    """What every image the view serves carries: its own type, never sniffed, inert when opened alone."""
    assert headers["Content-Type"] == content_type
    assert headers["Content-Security-Policy"] == safety.PART_POLICY
    for name in ("X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options", "Cache-Control"):
        assert headers[name] == safety.HEADERS[name], name


@pytest.mark.integration
def test_the_relayed_mails_previews_are_served_by_mail_and_content_id_and_its_frame_points_there(
    served: tuple[World, data.Sources, Outbox, str],
) -> None:
    world, sources, outbox, view_url = served
    _relay(world, "incoming/cam", _camera_mail("a@example.com"))
    _relay(world, "incoming/other", _camera_mail("b@example.com"))
    outbox.collect()
    (file,) = [e["file"] for e in data.deliveries(sources, ["incoming/cam"])["incoming/cam"]]
    (other,) = [e["file"] for e in data.deliveries(sources, ["incoming/other"])["incoming/other"]]
    relayed = images.read_relayed((sources.data_dir / "outbox" / file).read_bytes())
    assert relayed.html is not None
    (snapshot_cid,) = re.findall(
        r'<img src="cid:([^"]+)" alt="cam4\.jpg" width="640" height="360"', relayed.html
    )
    inline = {
        str(part["Content-ID"]).strip("<>"): part.get_content()
        for part in relayed.message.walk()
        if part.get_content_maintype() == "image"
    }
    assert snapshot_cid in inline
    assert len(inline) == 2  # the snapshot's preview and the logo's

    for cid, preview in inline.items():
        status, headers, body = _part(view_url, "incoming/cam", cid, file)
        assert (status, body) == (200, preview)
        _views_headers(headers, "image/jpeg")
    shown = images.assert_clean_preview(_part(view_url, "incoming/cam", snapshot_cid, file)[2])
    assert shown.size == (640, 360)  # the snapshot's, not the logo's

    refused = [
        _part(view_url, "incoming/cam", "unknown@example.com", file),  # no such Content-ID
        _part(view_url, "incoming/cam", snapshot_cid),  # the received mail has no such part
        _part(view_url, "incoming/cam", snapshot_cid, other),  # another mail's file under this key
        _part(view_url, "incoming/cam", snapshot_cid, "../sandbox.json"),
        _part(view_url, "incoming/nothing", snapshot_cid, file),
    ]
    assert [status for status, _, _ in refused] == [404] * len(refused)
    assert all(headers["Content-Type"].startswith("text/plain") for _, headers, _ in refused)

    # The frame points every cid: at /part, for this mail's file, which its own policy lets it load.
    status, headers, body = _get(f"{view_url}/frame?key=incoming%2Fcam&sent={quote(file, safe='')}")
    assert status == 200
    assert f"img-src data: {view_url}/part;" in headers["Content-Security-Policy"]
    sources_shown = [html.unescape(src) for src in re.findall(r'<img src="([^"]+)"', body.decode())]
    assert "cid:" not in body.decode()
    # The sender's own <img src="cid:logo@nvr"> shows the logo's preview, as the list does.
    assert {parse_qs(urlsplit(src).query)["cid"][0] for src in sources_shown} == set(inline)
    for src in sources_shown:
        assert src.startswith(f"{view_url}/part?key=incoming%2Fcam&sent={quote(file, safe='')}&cid=")
        status, _, image = _get(src)
        assert status == 200
        assert image == inline[parse_qs(urlsplit(src).query)["cid"][0]]


@pytest.mark.integration
def test_the_received_mails_part_route_serves_its_images_and_nothing_else(
    served: tuple[World, data.Sources, Outbox, str],
) -> None:
    world, _, _, view_url = served
    _relay(world, "incoming/cam", _camera_mail("a@example.com"))
    status, headers, body = _part(view_url, "incoming/cam", "logo@nvr")
    assert (status, body) == (200, LOGO)
    _views_headers(headers, "image/png")
    for cid in ("plan@nvr", "notes@nvr", "unknown@nvr"):  # an SVG is a document, a PDF no image
        status, headers, body = _part(view_url, "incoming/cam", cid)
        assert status == 404, cid
        assert body == b"no such image in this mail\n"
        assert SVG not in body
        assert PDF not in body


# -- traces ----------------------------------------------------------------------------------------------
def _call(key: str, operation: str, status: int, object_key: str, fault: bool) -> dict[str, Any]:
    return {
        "id": f"{operation}-{status}-{object_key}-{key}",
        "name": "s3",
        "namespace": "aws",
        "start_time": T0 + 0.2,
        "end_time": T0 + 0.3,
        "aws": {"operation": operation, "key": object_key, "bucket_name": "incoming"},
        "http": {"response": {"status": status}},
        "fault": fault,
    }


def _segment(trace_id: str, key: str, outcome: str, reason: str = "", calls: Any = None) -> dict[str, Any]:
    return {
        "trace_id": trace_id,
        "id": "seg1",
        "name": "relay",
        "start_time": T0,
        "end_time": T0 + 1.0,
        "subsegments": [
            {
                "id": f"mail-{key}",
                "name": "relay_mail",
                "start_time": T0 + 0.1,
                "end_time": T0 + 0.9,
                "annotations": {"incoming_key": key, "outcome": outcome, "reason": reason, "recipients": 2},
                "subsegments": calls if calls is not None else [_call(key, "GetObject", 404, key, True)],
            }
        ],
    }


def _datagram(document: dict[str, Any]) -> bytes:
    return b'{"format": "json", "version": 1}\n' + json.dumps(document).encode()


def test_the_daemon_keeps_segments_by_trace_and_finds_a_mails_invocations_over_udp() -> None:
    daemon = Daemon()
    daemon.start()
    try:
        first, second = new_trace_id(T0), new_trace_id(T0 + 5)
        assert first.startswith(f"1-{int(T0):08x}-")
        assert len(first) == 35
        host, port = daemon.address.split(":")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(_datagram(_segment(first, "incoming/a", "retry")), (host, int(port)))
            client.sendto(_datagram(_segment(second, "incoming/a", "distributed")), (host, int(port)))
            client.sendto(b"garbage", (host, int(port)))
            deadline = time.monotonic() + 5
            while len(daemon.traces()) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        daemon.stop()
    found = daemon.traces_of("incoming/a")
    assert [t.trace_id for t in found] == [first, second]
    assert daemon.traces_of("incoming/other") == []


def test_the_waterfall_places_each_call_and_marks_the_mails_own_rows() -> None:
    trace = Trace("1-x-y", [_segment("1-x-y", "incoming/a", "retry")])
    fall = traces.waterfall(trace, "incoming/a")
    assert [(r.depth, r.name, r.operation) for r in fall.rows] == [
        (0, "relay", ""),
        (1, "relay_mail", ""),
        (2, "s3", "GetObject"),
    ]
    call = fall.rows[2]
    assert (call.x, call.width, call.error, call.status, call.mine) == (200, 100, "fault", "404", True)
    assert call.expected == ""  # the mail itself missing is a real failure
    assert round(call.start_ms) == 200
    assert round(call.duration_ms) == 100
    assert not fall.rows[0].mine
    assert round(fall.duration_ms) == 1000


def test_the_waterfall_names_the_faults_the_relay_expects() -> None:
    document = "config/recipients.json"
    calls = [
        _call("k", "GetObject", 404, document, True),
        _call("k", "GetObject", 304, document, True),
        _call("k", "PutObject", 412, "markers/d/send-1-of-1", True),
        _call("k", "GetObject", 404, "markers/d/send-1-of-1", True),
        _call("k", "GetObject", 404, "incoming/k", True),
        _call("k", "PutObject", 500, "markers/d/send-1-of-1", True),
        _call("k", "GetObject", 200, document, False),
    ]
    rows = traces.waterfall(
        Trace("t", [_segment("t", "incoming/k", "distributed", calls=calls)]), "incoming/k", document
    ).rows
    assert [bool(r.expected) for r in rows[2:]] == [True, True, True, True, False, False, False]
    assert rows[2].expected == "no recipients document: no groups or routes"
    assert (
        traces.waterfall(Trace("t", [_segment("t", "k", "x", calls=calls[:1])]), "k").rows[2].expected == ""
    )


def test_the_search_takes_xray_filter_expressions_over_annotations() -> None:
    daemon = Daemon()
    try:
        daemon.receive(_datagram(_segment("1-a-1", "incoming/virus", "fallback", "virus")))
        daemon.receive(_datagram(_segment("1-a-2", "incoming/none", "fallback", "no_recipients")))
        daemon.receive(_datagram(_segment("1-a-3", "incoming/ok", "distributed")))

        def keys(query: str) -> set[str]:
            return {hit.incoming_key for hit in traces.search(daemon, query)}

        assert keys('annotation.outcome = "fallback" AND annotation.reason = "virus"') == {"incoming/virus"}
        assert keys('annotation.outcome = "fallback" and annotation.reason != "virus"') == {"incoming/none"}
        assert keys("annotation.recipients = 2") == {"incoming/virus", "incoming/none", "incoming/ok"}
        assert keys("no_recip") == {"incoming/none"}
        assert keys("") == {"incoming/virus", "incoming/none", "incoming/ok"}
        with pytest.raises(traces.BadQuery, match=r"annotation\.outcome fallback"):
            traces.search(daemon, "annotation.outcome fallback")
    finally:
        daemon.stop()


def test_the_journal_keeps_the_functions_log_lines_by_mail() -> None:
    journal = Journal("test_web_parts.function")
    journal.attach()
    logger = logging.getLogger("test_web_parts.function")
    logger.setLevel(logging.INFO)
    try:
        logger.info(
            "mail %s", "distributed", extra={"key": "incoming/a", "outcome": "distributed", "recipients": 2}
        )
        logger.info("no key here")
    finally:
        journal.detach()
    logger.info("after", extra={"key": "incoming/a"})
    (line,) = journal.lines("incoming/a")
    document = json.loads(line)
    assert document["message"] == "mail distributed"
    assert (document["level"], document["outcome"], document["recipients"]) == ("INFO", "distributed", 2)
    assert "args" not in document
    assert "msg" not in document
    journal.forget({"incoming/a"})
    assert journal.lines("incoming/a") == []


def test_the_web_port_is_claimed_like_the_others(tmp_path: Path) -> None:
    held = claim(tmp_path / "one", "127.0.0.1", 0, 0, 0)
    try:
        assert held.web_port
        with pytest.raises(
            Unavailable, match=rf"port {held.web_port} .* \(--web-port\) is in use by process {os.getpid()} "
        ):
            claim(tmp_path / "two", "127.0.0.1", 0, 0, held.web_port)
        claim(tmp_path / "two", "127.0.0.1", 0, 0, 0).release()  # the refused claim kept nothing
        sock = held.hand_over_web()
        assert held.web is None
        assert sock.getsockname()[1] == held.web_port
        sock.close()
    finally:
        held.release()
    with pytest.raises(Unavailable, match="--aws-port and --web-port are both 8025;"):
        claim(tmp_path, "127.0.0.1", 0, 8025, 8025)
    assert claim(tmp_path, "127.0.0.1", 0, 0).web_port is None
