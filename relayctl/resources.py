"""Which bucket, queue or rule set a command acts on: explicit options first, else the stack's outputs.

The output keys are the template's (`Outputs:` in template.yaml); a test keeps the two in step.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from app.aws import error_codes
from relayctl.aws import Aws, CommandError, describe

STACK_ENVIRONMENT_VARIABLE = "RELAYCTL_STACK"
# Which receipt rule the stack made and whether it also made the set that holds it ("true"), or added
# the rule to a set that already existed ("false"). Stacks from before the output count as "true".
RULE_NAME_OUTPUT = "ReceiptRuleName"
RULE_SET_OWNED_OUTPUT = "ReceiptRuleSetOwned"


@dataclass(frozen=True)
class Resource:
    attribute: str
    option: str
    output: str
    what: str


RESOURCES = {
    r.attribute: r
    for r in (
        Resource("incoming_bucket", "--incoming-bucket", "IncomingBucketName", "incoming bucket"),
        Resource("attachments_bucket", "--attachments-bucket", "AttachmentsBucketName", "attachments bucket"),
        Resource("queue_url", "--queue-url", "InboundQueueUrl", "inbound queue URL"),
        Resource("dlq_url", "--dlq-url", "DeadLetterQueueUrl", "dead-letter queue URL"),
        Resource("rule_set", "--rule-set", "ReceiptRuleSetName", "receipt rule set"),
        Resource("link_key_secret", "--link-key-secret", "LinkKeySecretArn", "link-key secret ARN"),
        Resource("alarms_topic", "--alarms-topic", "AlarmsTopicArn", "alarms topic ARN"),
        Resource("incidents_table", "--incidents-table", "IncidentsTableName", "alarm table"),
        Resource(
            "recipients_config", "--recipients-config", "RecipientsConfigUri", "recipients document s3:// URI"
        ),
    )
}


def add_options(parser: argparse.ArgumentParser, *attributes: str) -> None:
    """`--stack` plus an explicit option per resource; those the command does not use are accepted (one
    set of options or an alias serves every command) but left out of its help."""
    group = parser.add_argument_group("resources (explicit options win over the stack's outputs)")
    group.add_argument(
        "--stack",
        default=os.environ.get(STACK_ENVIRONMENT_VARIABLE) or None,
        help=f"CloudFormation stack to read the resources from (default: ${STACK_ENVIRONMENT_VARIABLE})",
    )
    for attribute, resource in RESOURCES.items():
        used = attribute in attributes
        group.add_argument(
            resource.option,
            dest=attribute,
            metavar="VALUE",
            help=f"the {resource.what} ({resource.output})" if used else argparse.SUPPRESS,
        )


@dataclass
class Resources:
    aws: Aws
    stack: str | None
    explicit: dict[str, str | None]
    _stack: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace, aws: Aws) -> Resources:
        explicit = {name: getattr(args, name, None) for name in RESOURCES}
        return cls(aws=aws, stack=getattr(args, "stack", None), explicit=explicit)

    def get(self, attribute: str) -> str | None:
        value = self.explicit.get(attribute)
        if value:
            return value
        if self.stack:
            return self.outputs().get(RESOURCES[attribute].output) or None
        return None

    def require(self, attribute: str) -> str:
        value = self.get(attribute)
        if value:
            return value
        resource = RESOURCES[attribute]
        if self.stack:
            raise CommandError(
                f"stack {self.stack!r} has no output {resource.output}; pass {resource.option}"
            )
        raise CommandError(f"no {resource.what}: pass {resource.option} or --stack NAME")

    def rule_set_owned(self) -> bool:
        """Whether the rule set is the stack's own (activate/teardown may change it) or a set that
        existed before (the operator's). Without a stack, an explicit --rule-set counts as owned."""
        if not self.stack or self.explicit.get("rule_set"):
            return True
        return self.outputs().get(RULE_SET_OWNED_OUTPUT, "true").strip().lower() != "false"

    def outputs(self) -> dict[str, str]:
        return {o["OutputKey"]: o["OutputValue"] for o in self.describe_stack().get("Outputs", [])}

    def describe_stack(self) -> dict[str, Any]:
        """The stack as DescribeStacks returns it (status, id, parameters, outputs), read once."""
        if self._stack is None:
            self._stack = describe_stack(self.aws, str(self.stack))
            if self._stack is None:
                raise CommandError(f"stack {self.stack!r} does not exist in this account and region")
        return self._stack


def describe_stack(aws: Aws, stack: str) -> dict[str, Any] | None:
    """The stack, or None when there is none by that name (or id) in this account and region."""
    try:
        stacks: list[dict[str, Any]] = aws.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except ClientError as e:
        if error_codes.code(e) == "ValidationError" and "does not exist" in str(e):
            return None
        raise CommandError(f"reading stack {stack!r}: {describe(e)}") from e
    return stacks[0]


def live_resources(aws: Aws, stack: dict[str, Any]) -> list[dict[str, Any]]:
    """The stack's resources that still exist (a rolled-back stack keeps those it failed to delete)."""
    found = []
    try:
        pages = aws.client("cloudformation").get_paginator("list_stack_resources")
        for page in pages.paginate(StackName=stack["StackId"]):
            for resource in page.get("StackResourceSummaries", []):
                if resource.get("PhysicalResourceId") and resource.get("ResourceStatus") != "DELETE_COMPLETE":
                    found.append(resource)
    except ClientError as e:
        raise CommandError(f"reading the resources of stack {stack['StackName']!r}: {describe(e)}") from e
    return found
