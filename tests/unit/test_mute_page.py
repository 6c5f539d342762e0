"""The mute page through the link URL's handler on any request: a page or a mute for a genuine link and
its page's POST, a 4xx page for anything else (never a 5xx), exactly one clean JSON log line each, and
the alarm written only by a POST that carries its page's nonce.

The keyring and the alarm table are fakes here; tests/integration/test_mute.py runs the same handler
against moto with links the relay signed.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app import download, links, mute_page
from app.alarms.fingerprint import identify
from app.alarms.timeline import State, Step, new_state
from app.aws.incidents import Stored
from app.config import load_download_settings
from app.function_url import Request
from tests.support.cloudformation import load_template
from tests.support.emf import assert_valid_emf

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
ENVIRONMENT = {
    "ATTACHMENTS_BUCKET": "relay-attachments-123456789012-eu-west-1",
    "LINK_KEY_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:relay-link-keys-AbCdEf",
    "METRICS_NAMESPACE": "IoTMailRelay/relay-stack",
    "REPEAT_FOLDING": "on",
    "INCIDENTS_TABLE": "relay-IncidentsTable",
}
KEYRING = links.Keyring("k1", b"c" * 64, "k0", b"p" * 64)
BASE = "https://abcdefghij.lambda-url.eu-west-1.on.aws/"
HOST = "abcdefghij.lambda-url.eu-west-1.on.aws"
NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
IDENTITY = identify("plc-7@plant.example.com", ("ops@example.com",), "ALARM: Pump 3 pressure 9.1 bar")
FINGERPRINT = IDENTITY.fingerprint
CLIENT_ERRORS = range(400, 500)


class _Keys:
    def for_kid(self, kid: str) -> links.Keyring:
        return KEYRING


class _Table:
    """One alarm, kept in memory; every commit is recorded."""

    def __init__(self) -> None:
        self.state: State = new_state(IDENTITY)
        self.version = 1
        self.commits: list[Step] = []

    def load(self, fingerprint: str) -> Stored | None:
        return Stored(self.state, self.version) if fingerprint == FINGERPRINT else None

    def commit(self, step: Step, version: int | None, now: datetime) -> int:
        self.commits.append(step)
        self.state, self.version = step.state, self.version + 1
        return self.version


@pytest.fixture
def alarms(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Table]:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MUTE_LINKS", raising=False)
    load_download_settings.cache_clear()
    table = _Table()
    monkeypatch.setattr(download, "_keys", lambda arn: _Keys())
    monkeypatch.setattr(download, "_clock", lambda: NOW)
    monkeypatch.setattr(mute_page, "_incidents", lambda name: table)
    yield table
    load_download_settings.cache_clear()


def _event(
    method: str, path: str, query: str, body: str | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": HOST, **(headers or {})},
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "198.51.100.7", "userAgent": "probe/1"}
        },
    }
    if body is not None:
        event["body"] = body
    return event


def _call(event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The handler's answer and its one log line (it must write exactly one)."""
    with mock.patch.object(download.sys, "stdout") as stdout:
        answer = download.lambda_handler(event, None)
    written = "".join(str(call.args[0]) for call in stdout.write.call_args_list)
    lines = written.splitlines()
    assert len(lines) == 1, lines
    record: dict[str, Any] = json.loads(lines[0])
    return answer, record


def _link(
    seconds: int = 3600, expires: datetime = NOW + timedelta(days=1), to: str = "ops@example.com"
) -> str:
    return links.sign_mute(KEYRING, BASE, FINGERPRINT, seconds, to, int(expires.timestamp()))


def _form(url: str, issued: datetime = NOW) -> str:
    parts = urlsplit(url)
    token = links.parse_mute(parts.path, parts.query)
    assert token is not None
    stamp = int(issued.timestamp())
    return urlencode({"issued": stamp, "nonce": links.page_nonce(KEYRING, token, stamp)})


def _assert_clean(record: dict[str, Any], *secrets: str) -> None:
    assert record["outcome"] in set(mute_page.Answer)
    assert record["level"] == "INFO"
    for secret in secrets:
        if len(secret) >= 8:
            assert secret not in json.dumps(record, ensure_ascii=False), (
                "a signature or nonce reached the log"
            )


_segment = st.one_of(
    st.text(max_size=40),
    st.sampled_from([FINGERPRINT, FINGERPRINT.upper(), FINGERPRINT[:-1], "..", "%2F", "mute", ""]),
)
_paths = st.one_of(
    st.text(max_size=120).map(lambda text: "/mute/" + text),
    st.lists(_segment, max_size=4).map(lambda segments: "/mute/" + "/".join(segments)),
    st.just("/mute"),
)
_values = st.one_of(
    st.text(max_size=60),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(["3600", "86400", "7200", "*", "ops@example.com", "k0", "k1", "A" * 43, "1e309", "١٢٣"]),
)
_fields = st.tuples(st.sampled_from(["for", "to", "exp", "kid", "sig", "x", ""]), _values).map(
    lambda pair: f"{quote(pair[0])}={quote(pair[1], safe='')}"
)
_queries = st.one_of(st.text(max_size=200), st.lists(_fields, max_size=7).map("&".join))
_methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "post", ""])
_bodies = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.lists(st.tuples(st.sampled_from(["issued", "nonce", "x"]), _values), max_size=4).map(urlencode),
)
_GENUINE = (urlsplit(_link()).path, urlsplit(_link()).query)
# Half the requests carry a genuine link: only with one does a POST reach the Origin and nonce checks.
_targets = st.one_of(st.tuples(_paths, _queries), st.just(_GENUINE))
_sources = st.one_of(
    st.text(max_size=40),
    st.text(max_size=30).map(lambda text: "http://" + text),  # "[" without "]": urlsplit raises
    st.sampled_from([f"https://{HOST}", "null", "https://evil.example", "http://[", f"https://[{HOST}"]),
)
_headers = st.dictionaries(st.sampled_from(["origin", "referer", "content-type"]), _sources, max_size=3)


@FUZZ
@given(method=_methods, target=_targets, body=_bodies, headers=_headers, encoded=st.booleans())
@example(method="GET", target=(f"/mute/{FINGERPRINT}", f"for=3600&to=%2A&exp=9999999999&kid=k0&sig={'A' * 43}"),
         body=None, headers={}, encoded=False)  # fmt: skip
@example(method="POST", target=_GENUINE, body="issued=1&nonce=x", headers={"origin": f"https://{HOST}"},
         encoded=False)  # fmt: skip
@example(method="POST", target=_GENUINE, body="%%%", headers={"origin": f"https://{HOST}"},
         encoded=True)  # fmt: skip
@example(method="POST", target=_GENUINE, body="issued=1&nonce=x", headers={"origin": "http://["},
         encoded=False)  # fmt: skip
@example(method="POST", target=_GENUINE, body="issued=1&nonce=x", headers={"referer": "http://[x"},
         encoded=False)  # fmt: skip
@example(method="GET", target=_GENUINE, body="nonce=ops%40exam", headers={}, encoded=False)  # fmt: skip
def test_any_request_under_mute_gets_a_4xx_page_and_one_clean_log_line_and_mutes_nothing(
    alarms: _Table,
    method: str,
    target: tuple[str, str],
    body: str | None,
    headers: dict[str, str],
    encoded: bool,
) -> None:
    path, query = target
    genuine = method.upper() in {"GET", "HEAD"} and target == _GENUINE
    event = _event(method, path, query, body, headers)
    if encoded and body is not None:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body.encode()).decode(), True
    answer, record = _call(event)
    if not genuine:
        assert answer["statusCode"] in CLIENT_ERRORS, (answer["statusCode"], record)
    assert record["status"] == answer["statusCode"]
    assert "Mutes" not in record
    assert alarms.commits == []
    secrets = [*parse_qs(query).get("sig", []), *parse_qs(body or "").get("nonce", [])]
    # A random value may be part of what the line rightly carries (nonce=ops%40exam, the link's `to`).
    carried = [str(record[k]) for k in ("recipient", "fingerprint", "kid", "source_ip", "user_agent")]
    _assert_clean(record, *(s for s in secrets if not any(s in value for value in carried)))


def test_a_genuine_link_shows_the_page_and_its_post_mutes_once_logged(alarms: _Table) -> None:
    url = _link()
    parts = urlsplit(url)
    answer, record = _call(_event("GET", parts.path, parts.query))
    assert (answer["statusCode"], record["outcome"], alarms.commits) == (200, "page", [])
    assert f'name="issued" value="{int(NOW.timestamp())}"' in answer["body"]
    head, _ = _call(_event("HEAD", parts.path, parts.query))
    assert (head["statusCode"], head["body"]) == (200, "")
    origin = {"origin": f"https://{HOST}"}
    answer, record = _call(_event("POST", parts.path, parts.query, _form(url), origin))
    assert (answer["statusCode"], record["outcome"], record["Mutes"]) == (303, "muted", 1)
    assert answer["headers"]["Location"] == f"{parts.path}?{parts.query}"  # Post/Redirect/Get
    _assert_clean(record, parse_qs(parts.query)["sig"][0], parse_qs(_form(url))["nonce"][0])
    assert len(alarms.commits) == 1
    mute = alarms.state.mute
    assert mute is not None
    assert (mute.until, mute.by) == (NOW + timedelta(hours=1), "ops@example.com")
    page, record = _call(_event("GET", parts.path, parts.query))  # where the browser lands
    assert (page["statusCode"], record["outcome"], len(alarms.commits)) == (200, "page", 1)
    assert "<h1>Muted until 2026-12-04 09:00 UTC</h1>" in page["body"]
    encoded = base64.b64encode(_form(url, NOW + timedelta(seconds=1)).encode()).decode()
    event = _event("POST", parts.path, parts.query, encoded, origin) | {"isBase64Encoded": True}
    answer, _ = _call(event)
    assert answer["statusCode"] == 303  # a body the URL handed over in base64 is read the same
    assert len(alarms.commits) == 2


def test_the_same_post_twice_mutes_once(alarms: _Table) -> None:
    """A resent form (the same page's nonce) finds its digest in the alarm's mute log: nothing changes,
    no second `Mutes`, and the browser is sent to the page again."""
    url = _link()
    parts = urlsplit(url)
    post = _event("POST", parts.path, parts.query, _form(url), {"origin": f"https://{HOST}"})
    first, muted = _call(post)
    again, repeated = _call(post)
    assert (muted["outcome"], muted["Mutes"]) == ("muted", 1)
    assert (repeated["outcome"], repeated["status"], "Mutes" in repeated) == ("repeated", 303, False)
    assert again["headers"]["Location"] == first["headers"]["Location"]
    assert len(alarms.commits) == 1
    (entry,) = alarms.state.mute_log
    assert (entry.action, entry.by, entry.source) == (
        "mute",
        "ops@example.com",
        "mute link from 198.51.100.7",
    )
    nonce = parse_qs(_form(url))["nonce"][0]
    assert entry.nonce
    assert nonce not in json.dumps(alarms.state.to_dict())  # its digest only
    _assert_clean(repeated, nonce)


@pytest.mark.parametrize("host", [HOST, "evil.example", "evil.example:8443", "a@evil.example", "[::1]:8025"])
def test_the_redirect_after_a_mute_is_the_verified_link_and_never_leaves_the_url(
    alarms: _Table, host: str
) -> None:
    """Origin and Host agree (so the POST passes), but the Location is rebuilt from the signed token:
    a relative path under /mute/, whatever Host, Origin or query order the request sent."""
    url = _link(seconds=8 * 3600)
    parts = urlsplit(url)
    reordered = "&".join(reversed(parts.query.split("&")))
    event = _event("POST", parts.path, reordered, _form(url), {"host": host, "origin": f"https://{host}"})
    answer, record = _call(event)
    assert (answer["statusCode"], record["outcome"]) == (303, "muted")
    location = answer["headers"]["Location"]
    assert location == f"{parts.path}?{parts.query}"
    assert location.startswith(f"/mute/{FINGERPRINT}?")
    assert not location.startswith("//")
    assert urlsplit(location)[:2] == ("", "")  # no scheme, no host: the browser stays on this URL


@FUZZ
@given(expires=st.integers(min_value=1, max_value=10**11), seconds=st.sampled_from(links.MUTE_SECONDS))
@example(expires=int(NOW.timestamp()), seconds=3600)
def test_a_genuine_signature_with_any_expiry_is_a_page_or_a_410(
    alarms: _Table, expires: int, seconds: int
) -> None:
    if expires >= 10**10:  # past what a link can carry: refused as malformed
        query = f"for={seconds}&to=%2A&exp={expires}&kid=k1&sig={'A' * 43}"
        answer, record = _call(_event("GET", f"/mute/{FINGERPRINT}", query))
        assert (answer["statusCode"], record["outcome"]) == (403, "forbidden")
        return
    url = links.sign_mute(KEYRING, BASE, FINGERPRINT, seconds, "*", expires)
    answer, record = _call(_event("GET", urlsplit(url).path, urlsplit(url).query))
    if expires <= NOW.timestamp():
        assert (answer["statusCode"], record["outcome"]) == (410, "expired")
    else:
        assert (answer["statusCode"], record["outcome"]) == (200, "page")
    assert alarms.commits == []


def test_the_page_escapes_what_the_sender_wrote(alarms: _Table) -> None:
    alarms.state = replace(alarms.state, subject='<script>alert("x")</script>', sender="a<b>@x")
    parts = urlsplit(_link())
    answer, _ = _call(_event("GET", parts.path, parts.query))
    assert "<script>" not in answer["body"]
    assert "&lt;script&gt;" in answer["body"]


@pytest.mark.parametrize("to", ["*", "b@example.org"])
def test_the_page_counts_the_recipients_and_names_only_the_links_own(alarms: _Table, to: str) -> None:
    """The mails go out as Bcc: whoever holds a link (a forward, a scanner) learns no other address."""
    everyone = ("a@example.com", "b@example.org", "c@example.net", *(f"r{n}@example.com" for n in range(30)))
    alarms.state = replace(alarms.state, recipients=everyone)
    url = _link(to=to)
    parts = urlsplit(url)
    page, _ = _call(_event("GET", parts.path, parts.query))
    origin = {"origin": f"https://{HOST}"}
    muted, _ = _call(_event("POST", parts.path, parts.query, _form(url), origin))
    landed, _ = _call(_event("GET", parts.path, parts.query))
    assert muted["statusCode"] == 303
    for answer in (page, muted, landed):
        shown = {address for address in everyone if address in answer["body"]}
        assert shown <= {to} - {"*"}
    assert "Recipients: 33, not named here (the mails go out as Bcc)" in page["body"]
    assert "for all its 33 recipients, not only you" in page["body"]
    assert "This alarm is muted until 2026-12-04 09:00 UTC, for all its 33 recipients." in landed["body"]
    named = "This link was sent to b@example.org." if to != "*" else "This link went to all the alarm&#x27;s"
    assert named in page["body"]


def test_an_unreadable_table_is_a_503_page_not_a_crash(
    alarms: _Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.aws.incidents import Unavailable

    def fail(fingerprint: str) -> Stored | None:
        raise Unavailable("reading the alarm table: ThrottlingException")

    monkeypatch.setattr(alarms, "load", fail)
    parts = urlsplit(_link())
    with mock.patch.object(download.sys, "stdout") as stdout:
        answer = download.lambda_handler(_event("GET", parts.path, parts.query), None)
    lines = [json.loads(line) for c in stdout.write.call_args_list for line in str(c.args[0]).splitlines()]
    assert answer["statusCode"] == 503
    assert answer["headers"]["Retry-After"] == "30"
    assert [(line["level"], line.get("outcome")) for line in lines] == [
        ("ERROR", None),
        ("WARNING", "unavailable"),
    ]
    # Counted as a download's "Try again" is, in the metric DownloadUnavailableAlarm watches.
    counted = lines[1]
    assert_valid_emf(counted)
    alarm = load_template()["Resources"]["DownloadUnavailableAlarm"]["Properties"]
    (dimension,) = alarm["Dimensions"]
    assert (counted[alarm["MetricName"]], counted[dimension["Name"]]) == (1, dimension["Value"])
    (metric,) = counted["_aws"]["CloudWatchMetrics"]
    assert metric["Namespace"] == ENVIRONMENT["METRICS_NAMESPACE"]  # the alarm's: IoTMailRelay/<stack>
    assert metric["Dimensions"] == [[dimension["Name"]]]
    assert metric["Metrics"] == [{"Name": alarm["MetricName"], "Unit": "Count"}]
    download_503 = download.log_record(
        Request("GET", "/x", "", "", ""),
        download.Response(download.Answer.UNAVAILABLE, 503),
        NOW.timestamp(),
        ENVIRONMENT["METRICS_NAMESPACE"],
    )
    assert download_503["_aws"] == counted["_aws"]  # the same members, to the millisecond
