"""The template's `Rules`: parameter combinations CloudFormation refuses before it creates anything.

`violated_rules` evaluates each rule's RuleCondition and Assertions the way CloudFormation does, so
these tests feed it bad and good combinations; cfn-lint (make template-check) checks the syntax.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cloudformation import violated_rules

pytestmark = pytest.mark.unit

BAD = [
    (
        "SenderIsNotTheReceivingAddress",
        {"SenderEmail": "inbox-7f3k9q@relay.example.com", "RecipientEmail": "inbox-7f3k9q@relay.example.com"},
    ),
    ("ReservedConcurrencyCoversTheQueue", {"ReservedConcurrency": "3", "MaxConcurrency": "5"}),
    ("ReservedConcurrencyCoversTheQueue", {"ReservedConcurrency": "1", "MaxConcurrency": "2"}),
    ("ReservedConcurrencyCoversTheQueue", {"ReservedConcurrency": "50", "MaxConcurrency": "5"}),
    ("RuleAfterNeedsAnExistingSet", {"ExistingRuleAfter": "spam-filter"}),
]
GOOD = [
    {},
    {"ReservedConcurrency": "5", "MaxConcurrency": "5"},
    {"ReservedConcurrency": "0", "MaxConcurrency": "100"},
    {"ExistingRuleSetName": "company-inbound"},
    {"ExistingRuleSetName": "company-inbound", "ExistingRuleAfter": "spam-filter"},
    {"SenderEmail": "alerts@plant.example.com", "SenderIdentity": "example.com"},
]


@pytest.mark.parametrize(("rule", "parameters"), BAD)
def test_bad_combinations_fail_with_a_message(
    source: dict[str, Any], rule: str, parameters: dict[str, str]
) -> None:
    failed = violated_rules(source, **parameters)
    assert list(failed) == [rule]
    (message,) = failed[rule]
    named = {p for p in source["Parameters"] if p in message}
    assert named & set(parameters), message  # the message names what to change


@pytest.mark.parametrize("parameters", GOOD)
def test_good_combinations_pass(source: dict[str, Any], parameters: dict[str, str]) -> None:
    assert violated_rules(source, **parameters) == {}


def test_every_rule_is_exercised(source: dict[str, Any]) -> None:
    assert {rule for rule, _ in BAD} == set(source["Rules"])
