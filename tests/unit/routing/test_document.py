"""app/routing/document.py: the recipients document validated and normalised, every problem named, and its
`alarms` overrides per route or group, validated like the rest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.routing import document
from app.routing.document import MAX_PATTERN_CHARS, DocumentError, Override
from tests.support.routing import CAMERA, directory


def test_a_valid_document_is_normalised() -> None:
    parsed = directory()
    assert parsed.groups == {
        "boiler-oncall": ("alice@example.com", "bob@example.org"),
        "lobby-security": ("guard-desk@example.com", "alice@example.com"),
    }
    assert parsed.routes == {CAMERA: ("lobby-security", "yard-lead@example.com")}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "must be a JSON object"),
        (json.dumps({"groups": {}, "extra": 1}).encode(), "unknown key 'extra'"),
        (json.dumps({"groups": {"Bad Name": ["a@example.com"]}}).encode(), "group 'Bad Name'"),
        (json.dumps({"groups": {"g": "a@example.com"}}).encode(), "must be a list of strings"),
        (json.dumps({"groups": {"g": ["not an address"]}}).encode(), "'not an address' is not an address"),
        (json.dumps({"groups": {"g": ["other-group"]}}).encode(), "is not an address"),  # no nested groups
        (json.dumps({"groups": {"g": [], "G": []}}).encode(), "defined twice"),
        (json.dumps({"routes": {CAMERA: ["no-such-group"]}}).encode(), "unknown group 'no-such-group'"),
        (json.dumps({"routes": {"not-an-address": []}}).encode(), "not a receiving address"),
        (json.dumps({"routes": []}).encode(), "'routes' must be an object"),
    ],
)
def test_problems_are_named(data: bytes, problem: str) -> None:
    with pytest.raises(DocumentError, match=problem):
        document.parse(data)


def test_check_reports_every_problem() -> None:
    data = json.dumps({"groups": {"a": ["x"], "b": ["y"]}, "routes": {CAMERA: ["c"]}}).encode()
    _, problems = document.check(data)
    assert len(problems) == 3


BASE = {
    "groups": {"Lobby-Security": ["guard-desk@example.com"]},
    "routes": {CAMERA: ["lobby-security"]},
}


def with_alarms(alarms: object) -> bytes:
    return json.dumps({**BASE, "alarms": alarms}).encode()


def test_a_document_without_alarms_stays_valid_and_has_none() -> None:
    parsed = document.parse(json.dumps(BASE).encode())
    assert parsed.alarms == {}
    assert document.EMPTY.alarms == {}


def test_rules_for_a_route_and_a_group_are_compiled_case_insensitive() -> None:
    parsed = document.parse(
        with_alarms(
            {
                CAMERA.upper(): {"key": r"^(?P<key>[^:]+):", "recovery": r"\bcleared\b"},
                "LOBBY-security": {"recovery": "back to normal"},
            }
        )
    )
    route = parsed.alarms[CAMERA]
    assert route == Override(
        key=re.compile(r"^(?P<key>[^:]+):", re.IGNORECASE), recovery=re.compile(r"\bcleared\b", re.IGNORECASE)
    )
    assert route.recovery is not None
    assert route.recovery.search("Motion CLEARED")
    assert parsed.alarms["lobby-security"].key is None


@pytest.mark.parametrize(
    ("alarms", "problem"),
    [
        ([], "'alarms' must be an object"),
        (
            {"nobody@relay.example.com": {"key": "(?P<key>x)"}},
            "alarms 'nobody@relay.example.com': not a route",
        ),
        ({"ghosts": {"key": "(?P<key>x)"}}, "alarms 'ghosts': not a route or group"),
        ({CAMERA: "(?P<key>x)"}, "must be an object with 'key' and/or 'recovery'"),
        ({CAMERA: {}}, "must be an object with 'key' and/or 'recovery'"),
        ({CAMERA: {"kee": "(?P<key>x)"}}, "unknown key 'kee'"),
        ({CAMERA: {"key": "(unclosed"}}, "'key': not a regular expression: missing )"),
        ({CAMERA: {"key": "^(\\S+)"}}, "has no named group 'key'"),
        ({CAMERA: {"key": 12}}, "'key': must be a non-empty string"),
        ({CAMERA: {"key": ""}}, "'key': must be a non-empty string"),
        (
            {CAMERA: {"key": "(?P<key>" + "a" * MAX_PATTERN_CHARS + ")"}},
            f"at most {MAX_PATTERN_CHARS} characters",
        ),
        ({CAMERA: {"recovery": "x{99999999999}"}}, "'recovery': not a regular expression"),
        ({CAMERA: {"recovery": "ok|"}}, "matches an empty subject"),
        ({CAMERA: {"recovery": "a*"}}, "matches an empty subject"),
        ({"lobby-security": {"recovery": "ok"}, "Lobby-Security": {"recovery": "up"}}, "defined twice"),
    ],
)
def test_bad_rules_are_named(alarms: object, problem: str) -> None:
    with pytest.raises(DocumentError, match=re.escape(problem)):
        document.parse(with_alarms(alarms))


def test_check_keeps_the_good_rules_and_reports_each_bad_one() -> None:
    directory, problems = document.check(
        with_alarms({CAMERA: {"key": "(?P<key>x)", "recovery": "["}, "lobby-security": {"recovery": "ok"}})
    )
    assert problems == [
        f"alarms '{CAMERA}' 'recovery': not a regular expression: unterminated character set at position 0"
    ]
    assert list(directory.alarms) == ["lobby-security"]  # a rule with a problem is not used at all
    assert directory.routes == {CAMERA: ("lobby-security",)}


def test_a_rule_for_a_route_whose_entry_is_invalid_is_reported() -> None:
    data = json.dumps(
        {"routes": {"not-an-address": []}, "alarms": {"not-an-address": {"recovery": "ok"}}}
    ).encode()
    _, problems = document.check(data)
    assert "alarms 'not-an-address': not a route or group of this document" in problems


def test_the_readmes_example_is_a_valid_document() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")
    (example,) = [
        block for block in re.findall(r"```json\n(.*?)```", readme, re.DOTALL) if '"alarms"' in block
    ]
    parsed = document.parse(example.encode())
    (rule,) = parsed.alarms.values()
    assert rule.key is not None
    assert rule.recovery is not None
    found = rule.key.search("Kamera 3 Bewegung 12:04:33")
    assert found is not None
    assert found.group("key") == "Kamera 3"
    assert rule.recovery.search("Störung geht")
