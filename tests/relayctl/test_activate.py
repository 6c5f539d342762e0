"""activate: the stack's rule set becomes active, but never silently replaces another active set; a rule
the stack put into an existing set leaves nothing to activate."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.support.relayctl import STACK, Relay, blueprint


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


def _stack_with_rule_in(relay: Relay, rule_set: str, owned: str | None) -> None:
    """The stack deployed with its rule in `rule_set` (ExistingRuleSetName unless it is the stack's own),
    its outputs the template's; `owned` None: a stack from before the ReceiptRuleSetOwned output."""
    parameters = {} if rule_set == relay.rule_set else {"ExistingRuleSetName": rule_set}
    outputs = dict(blueprint(parameters).outputs)
    assert outputs["ReceiptRuleSetName"] == rule_set
    if owned is None:
        del outputs["ReceiptRuleSetOwned"]
    else:
        assert outputs["ReceiptRuleSetOwned"] == owned
    body = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation = boto3.client("cloudformation", region_name=relay.region)
    cloudformation.delete_stack(StackName=STACK)  # the template's, as deployed by default: replaced
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(body))


def test_a_rule_in_an_existing_active_set_needs_nothing(relay: Relay, ses: Any) -> None:
    ses.create_receipt_rule_set(RuleSetName="corporate-mail")
    ses.set_active_receipt_rule_set(RuleSetName="corporate-mail")
    _stack_with_rule_in(relay, "corporate-mail", "false")

    code, out, _ = relay.run("activate", "--stack", STACK)

    assert code == 0
    assert "nothing to activate: the stack's rule is in corporate-mail, which is active" in out
    assert _active(ses) == "corporate-mail"


def test_a_rule_in_an_existing_inactive_set_is_reported_not_activated(relay: Relay, ses: Any) -> None:
    ses.create_receipt_rule_set(RuleSetName="corporate-mail")
    _stack_with_rule_in(relay, "corporate-mail", "false")

    code, out, _ = relay.run("activate", "--stack", STACK, "--force")

    assert code == 1
    assert "nothing to activate" in out
    assert "no mail reaches the rule until you activate corporate-mail" in out
    assert _active(ses) is None
    report = json.loads(relay.run("activate", "--stack", STACK, "--json")[1])
    assert (report["owned"], report["is_active"], report["changed"]) == (False, False, False)


@pytest.mark.parametrize("owned", ["true", None], ids=["owned", "older-stack-without-the-output"])
def test_the_stacks_own_set_is_activated(relay: Relay, ses: Any, owned: str | None) -> None:
    _stack_with_rule_in(relay, relay.rule_set, owned)
    assert relay.run_json("activate", "--stack", STACK)["changed"] is True
    assert _active(ses) == relay.rule_set
