"""The function URL's request as both functions read it: what a client sends is cut short before any
log line or page sees it, and a body that is too long or not decodable is not read at all."""

from __future__ import annotations

import base64
from typing import Any

from app import function_url
from app.function_url import MAX_BODY, MAX_HEADER, Request
from localaws.events import function_url_request


def _event(**parts: Any) -> dict[str, Any]:
    """A POST to /mute/x?a=1 as Lambda hands it over (the method as a client may spell it)."""
    return function_url_request("post", "/mute/x", "a=1", source_ip="203.0.113.9", user_agent="UA", **parts)


def test_the_request_keeps_method_path_query_and_the_headers_it_needs() -> None:
    event = _event(headers={"Host": "u.example", "Origin": "https://u.example", "Referer": "https://r"})
    request = Request.from_event(event)
    assert (request.method, request.raw_path, request.raw_query) == ("POST", "/mute/x", "a=1")
    assert (request.source_ip, request.user_agent) == ("203.0.113.9", "UA")
    assert (request.host, request.origin, request.referer) == ("u.example", "https://u.example", "https://r")
    assert request.body == b""


def test_every_header_a_client_controls_is_cut_to_max_header() -> None:
    long = "x" * (MAX_HEADER * 4)
    event = _event(headers={"host": long, "origin": long, "referer": long})
    event["requestContext"]["http"] |= {"sourceIp": long, "userAgent": long}
    request = Request.from_event(event)
    for value in (request.host, request.origin, request.referer, request.source_ip, request.user_agent):
        assert value == "x" * MAX_HEADER


def test_an_event_without_request_context_or_headers_reads_as_empty() -> None:
    request = Request.from_event({})
    assert (request.method, request.raw_path, request.host, request.origin) == ("", "", "", None)


def test_a_base64_body_is_decoded_and_a_bad_or_long_one_is_not_read() -> None:
    encoded = base64.b64encode(b"issued=1&nonce=n").decode()
    assert Request.from_event(_event(body=encoded, base64_encoded=True)).body == b"issued=1&nonce=n"
    assert Request.from_event(_event(body="not base64!", base64_encoded=True)).body is None
    assert Request.from_event(_event(body="a" * (4 * MAX_BODY + 1))).body is None
    assert Request.from_event(_event(body="issued=1")).body == b"issued=1"


def test_a_head_answer_has_the_headers_and_no_body() -> None:
    headers = {"Content-Type": "text/html"}
    assert function_url.answer(403, headers, "<p>no</p>", "HEAD") == {
        "statusCode": 403,
        "headers": headers,
        "body": "",
        "isBase64Encoded": False,
    }
    assert function_url.answer(403, headers, "<p>no</p>", "GET")["body"] == "<p>no</p>"
