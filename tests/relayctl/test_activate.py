"""activate: the stack's rule set becomes active, but never silently replaces another active set."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.relayctl.conftest import Relay


@pytest.fixture
def ses(relay: Relay) -> Any:
    return boto3.client("ses", region_name=relay.region)


def _active(ses: Any) -> str | None:
    name = ses.describe_active_receipt_rule_set().get("Metadata", {}).get("Name")
    return str(name) if name else None


def test_activates_when_no_set_is_active(relay: Relay, ses: Any) -> None:
    report = relay.run_json("activate", "--rule-set", relay.rule_set)
    assert report == {"rule_set": relay.rule_set, "previously_active": None, "changed": True}
    assert _active(ses) == relay.rule_set


def test_refuses_to_replace_another_active_set_without_force(relay: Relay, ses: Any) -> None:
    ses.create_receipt_rule_set(RuleSetName="corporate-mail")
    ses.set_active_receipt_rule_set(RuleSetName="corporate-mail")

    code, out, err = relay.run("activate", "--rule-set", relay.rule_set)

    assert code == 1
    assert out == ""
    assert "'corporate-mail' is active" in err
    assert "--force" in err
    assert err.count("\n") == 1
    assert _active(ses) == "corporate-mail"

    code, out, _ = relay.run("activate", "--rule-set", relay.rule_set, "--force")
    assert code == 0
    assert "replaced corporate-mail" in out
    assert _active(ses) == relay.rule_set


def test_an_already_active_set_is_left_alone(relay: Relay, ses: Any) -> None:
    ses.set_active_receipt_rule_set(RuleSetName=relay.rule_set)
    code, out, _ = relay.run("activate", "--rule-set", relay.rule_set)
    assert code == 0
    assert "already active" in out


def test_a_missing_rule_set_is_an_error(relay: Relay, ses: Any) -> None:
    code, _, err = relay.run("activate", "--rule-set", "no-such-rules")
    assert code == 1
    assert "'no-such-rules' does not exist" in err
    assert _active(ses) is None
