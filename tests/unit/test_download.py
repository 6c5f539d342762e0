"""The download function's handler on any request: a valid link gets its redirect, anything else a 4xx
page, and every request exactly one clean JSON log line in the stack's namespace; it never raises.

The keyring and S3 are fakes here (the handler's two adapters); tests/integration/test_download.py
runs the same handler against moto with links the relay signed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from app import download, links
from app.aws import objects
from app.config import load_download_settings
from localaws.events import function_url_request

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
NAMESPACE = "IoTMailRelay/relay-stack"
ENVIRONMENT = {
    "ATTACHMENTS_BUCKET": "relay-attachments-123456789012-eu-west-1",
    "LINK_KEY_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:relay-link-keys-AbCdEf",
    "METRICS_NAMESPACE": NAMESPACE,
}
KEYRING = links.Keyring("k1", b"c" * 64, "k0", b"p" * 64)
BASE = "https://abcdefghij.lambda-url.eu-west-1.on.aws/"
DIGEST = "0123456789abcdef0123456789abcdef"
KEY = f"attachments/{DIGEST}/2/report 1.csv"
LOCATION = "https://relay-attachments.s3.eu-west-1.amazonaws.com/presigned"
CLIENT_ERRORS = range(400, 500)


class _Keys:
    """The download function's keyring source, already read."""

    def for_kid(self, kid: str) -> links.Keyring:
        return KEYRING


@pytest.fixture(autouse=True)
def _function(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The handler's environment, keyring and S3 (every attachment present)."""
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    load_download_settings.cache_clear()
    monkeypatch.setattr(download, "_keys", lambda arn: _Keys())
    monkeypatch.setattr(objects, "state", lambda bucket, key: objects.ObjectState.PRESENT)
    monkeypatch.setattr(objects, "presigned", lambda method, bucket, key, seconds: LOCATION)
    yield
    load_download_settings.cache_clear()


def _call(method: str, path: str, query: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The handler's answer and its one log line (it must write exactly one)."""
    with mock.patch.object(download.sys, "stdout") as stdout:
        answer = download.lambda_handler(
            function_url_request(method, path, query, user_agent="probe/1"), None
        )
    written = "".join(str(call.args[0]) for call in stdout.write.call_args_list)
    lines = written.splitlines()
    assert len(lines) == 1, lines
    record: dict[str, Any] = json.loads(lines[0])
    return answer, record


def _signed(expires: int, key: str = KEY) -> tuple[str, str]:
    """The path and query of a link the relay would sign (any expiry: the relay is not asked)."""
    signature = links.signature(KEYRING.current, key, expires, KEYRING.current_kid)
    path = "/" + "/".join(quote(s, safe="") for s in key.removeprefix("attachments/").split("/"))
    return path, f"exp={expires}&kid={KEYRING.current_kid}&sig={signature}"


def _assert_clean(answer: dict[str, Any], record: dict[str, Any], query: str) -> None:
    assert record["Outcome"] in set(download.Answer)
    assert record["status"] == answer["statusCode"]
    assert record["level"] == "INFO"
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE
    for field in query.split("&"):
        name, _, value = field.partition("=")
        if name == "sig" and len(value) >= 8:
            assert value not in json.dumps(record), "a signature reached the log"


_segment = st.one_of(
    st.text(max_size=40),
    st.sampled_from([DIGEST, DIGEST.upper(), "..", ".", "%2e%2e", "%2F", "manifest.json", "2", "0", "02"]),
)
_paths = st.one_of(
    st.text(max_size=200),
    st.lists(_segment, max_size=6).map(lambda segments: "/" + "/".join(segments)),
)
_values = st.one_of(
    st.text(max_size=60),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(["k0", "k1", "A" * 43, "1e309", "nan", "999999999999", "0x10", "١٢٣"]),
)
_fields = st.tuples(st.sampled_from(["exp", "kid", "sig", "EXP", "x", ""]), _values).map(
    lambda pair: f"{quote(pair[0])}={quote(pair[1], safe='')}"
)
_queries = st.one_of(st.text(max_size=200), st.lists(_fields, max_size=6).map("&".join))
_methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "get", ""])


@FUZZ
@given(method=_methods, path=_paths, query=_queries)
@example(method="GET", path=_signed(999999999999)[0], query=_signed(999999999999)[1].replace("k1", "k9"))
@example(method="GET", path=f"/{DIGEST}/2/a.csv", query=f"exp=999999999999&kid=k0&sig={'A' * 43}")
def test_any_path_and_query_gets_a_4xx_page_and_one_clean_log_line(
    method: str, path: str, query: str
) -> None:
    assume(not links.is_mute_path(path))  # the mute page's, tested in tests/unit/test_mute_page.py
    answer, record = _call(method, path, query)
    assert answer["statusCode"] in CLIENT_ERRORS, (answer["statusCode"], record)
    _assert_clean(answer, record, query)


@FUZZ
@given(expires=st.integers(min_value=1, max_value=10**30))
@example(expires=999999999999)  # the absurd expiry that once made the log line raise
@example(expires=9999999999)  # the largest the link format takes
def test_a_genuine_signature_with_any_expiry_is_served_or_refused_cleanly(expires: int) -> None:
    path, query = _signed(expires)
    answer, record = _call("GET", path, query)
    if expires >= 10**10:
        assert (answer["statusCode"], record["Outcome"]) == (403, "forbidden")
    elif expires <= time.time():
        assert (answer["statusCode"], record["Outcome"]) == (410, "expired")
    else:
        assert (answer["statusCode"], record["Outcome"]) == (302, "served")
        assert answer["headers"]["Location"] == LOCATION
    _assert_clean(answer, record, query)


def test_a_valid_link_is_logged_with_what_it_names_in_the_stacks_namespace() -> None:
    expires = int(time.time()) + 3600
    path, query = _signed(expires)
    answer, record = _call("HEAD", path, query)
    assert answer["statusCode"] == 302
    assert answer["body"] == ""
    assert record["_aws"]["CloudWatchMetrics"][0] == {
        "Namespace": NAMESPACE,
        "Dimensions": [["Outcome"]],
        "Metrics": [{"Name": "Downloads", "Unit": "Count"}],
    }
    assert (record["Outcome"], record["Downloads"], record["digest"], record["part"], record["kid"]) == (
        "served",
        1,
        DIGEST,
        2,
        "k1",
    )
    assert record["link_expires_at"].startswith(time.strftime("%Y-%m-%d", time.gmtime(expires)))


def test_without_metrics_namespace_the_download_metric_keeps_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("METRICS_NAMESPACE")
    load_download_settings.cache_clear()
    _, record = _call("GET", "/", "")
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "IoTMailRelay"


def test_an_unreadable_keyring_is_a_503_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.aws.link_keys import KeyringUnavailable

    class Failing:
        def for_kid(self, kid: str) -> links.Keyring:
            raise KeyringUnavailable("LINK_KEY_SECRET_ARN: reading the secret failed: ThrottlingException")

    monkeypatch.setattr(download, "_keys", lambda arn: Failing())
    path, query = _signed(int(time.time()) + 60)
    with mock.patch.object(download.sys, "stdout") as stdout:
        answer = download.lambda_handler(function_url_request("GET", path, query, user_agent="probe/1"), None)
    lines = [json.loads(line) for c in stdout.write.call_args_list for line in str(c.args[0]).splitlines()]
    assert answer["statusCode"] == 503
    assert answer["headers"]["Retry-After"] == "30"
    assert [(line["level"], line.get("Outcome")) for line in lines] == [
        ("ERROR", None),
        ("WARNING", "unavailable"),
    ]
