"""Both receipt rule set modes on SAM's translation: the stack's own set, or a rule in an existing one.

In either mode SES may only write to the incoming bucket as the stack's own rule (`aws:SourceArn`
names the set and the rule), and the Outputs tell relayctl which set the rule is in and whether the
stack owns it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.cloudformation import Evaluator, ref_name, resources_of

pytestmark = pytest.mark.unit

ARN = "arn:aws:ses:eu-west-1:123456789012:receipt-rule-set/{}:receipt-rule/{}"
# SES: names of rule sets and rules have at most 64 characters, ASCII letters, digits, underscores,
# periods and hyphens, and start and end with a letter or digit.
SES_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?")


def _rule(cfn: dict[str, Any]) -> dict[str, Any]:
    (rule,) = resources_of(cfn, "AWS::SES::ReceiptRule").values()
    return rule


def _ses_statement(cfn: dict[str, Any], evaluate: Evaluator) -> dict[str, Any]:
    bucket = ref_name(_rule(cfn)["Properties"]["Rule"]["Actions"][0]["S3Action"]["BucketName"])
    (policy,) = (
        p
        for p in resources_of(cfn, "AWS::S3::BucketPolicy").values()
        if ref_name(p["Properties"]["Bucket"]) == bucket
    )
    document = evaluate(policy["Properties"]["PolicyDocument"])
    (statement,) = (
        s for s in document["Statement"] if s.get("Principal") == {"Service": "ses.amazonaws.com"}
    )
    return statement


def _outputs(cfn: dict[str, Any], evaluate: Evaluator) -> dict[str, str]:
    return {name: evaluate(output["Value"]) for name, output in cfn["Outputs"].items()}


def test_own_set_is_created_and_names_the_rule_and_the_bucket_policy(cfn: dict[str, Any]) -> None:
    evaluate = Evaluator(cfn)
    ((set_id, rule_set),) = resources_of(cfn, "AWS::SES::ReceiptRuleSet").items()
    assert evaluate.condition(rule_set["Condition"])
    rule = evaluate(_rule(cfn)["Properties"])
    assert rule["RuleSetName"] == evaluate.physical(set_id) == "iot-mail-relay-rules"
    assert "After" not in rule
    name = rule["Rule"]["Name"]
    condition = _ses_statement(cfn, evaluate)["Condition"]
    assert condition["ArnLike"]["aws:SourceArn"] == ARN.format("iot-mail-relay-rules", name)
    outputs = _outputs(cfn, evaluate)
    assert outputs["ReceiptRuleSetName"] == "iot-mail-relay-rules"
    assert outputs["ReceiptRuleSetOwned"] == "true"
    assert outputs["ReceiptRuleName"] == name
    assert outputs["ActivateRuleSetCommand"] == (
        "aws ses set-active-receipt-rule-set --region eu-west-1 --rule-set-name iot-mail-relay-rules"
    )


@pytest.mark.parametrize("after", ["", "spam-filter"])
def test_existing_set_gets_the_rule_and_no_set_is_created(cfn: dict[str, Any], after: str) -> None:
    evaluate = Evaluator(cfn, ExistingRuleSetName="company-inbound", ExistingRuleAfter=after)
    (rule_set,) = resources_of(cfn, "AWS::SES::ReceiptRuleSet").values()
    assert not evaluate.condition(rule_set["Condition"])  # the stack creates no set
    rule = evaluate(_rule(cfn)["Properties"])
    assert rule["RuleSetName"] == "company-inbound"
    if after:
        assert rule["After"] == after
    else:
        assert "After" not in rule  # SES puts it first
    name = rule["Rule"]["Name"]
    statement = _ses_statement(cfn, evaluate)
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == ARN.format("company-inbound", name)
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    outputs = _outputs(cfn, evaluate)
    assert outputs["ReceiptRuleSetName"] == "company-inbound"
    assert outputs["ReceiptRuleName"] == name
    assert outputs["ReceiptRuleSetOwned"] == "false"
    assert outputs["ActivateRuleSetCommand"].startswith("nothing to activate")
    assert "set-active-receipt-rule-set" not in outputs["ActivateRuleSetCommand"]


def test_no_output_refers_to_the_set_when_it_is_not_created(cfn: dict[str, Any]) -> None:
    """A Ref to a resource whose condition is false fails the deploy: only the If branch may name it."""
    (set_id,) = resources_of(cfn, "AWS::SES::ReceiptRuleSet")
    evaluate = Evaluator(cfn, ExistingRuleSetName="company-inbound")
    rendered = str(_outputs(cfn, evaluate)) + str(evaluate(_rule(cfn)["Properties"]))
    assert f"<{set_id}>" not in rendered
    assert evaluate.physical(set_id) not in rendered


@pytest.mark.parametrize("prefix", ["a", "iot-mail-relay", "plant-7-relay-abcdef"])
def test_ses_names_fit_for_any_stack_name(source: dict[str, Any], prefix: str) -> None:
    stack = "A" + "-relay-stack" * 10 + "x" * 7  # the longest stack name CloudFormation accepts: 128
    assert len(stack) == 128
    evaluate = Evaluator(source, BucketNamePrefix=prefix, **{"AWS::StackName": stack})
    (set_id,) = resources_of(source, "AWS::SES::ReceiptRuleSet")
    names = [evaluate.physical(set_id), evaluate(_rule(source)["Properties"]["Rule"]["Name"])]
    for name in names:
        assert len(name) <= 64, name
        assert SES_NAME.fullmatch(name), name


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("company-inbound", True),
        ("default-rule-set.v2_1", True),
        ("-x", False),
        ("a" * 65, False),
    ],
)
def test_existing_names_follow_ses_naming(source: dict[str, Any], value: str, accepted: bool) -> None:
    for parameter in ("ExistingRuleSetName", "ExistingRuleAfter"):
        pattern = source["Parameters"][parameter]["AllowedPattern"]
        assert bool(re.fullmatch(pattern, value)) is accepted, (parameter, value)
