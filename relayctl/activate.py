"""activate: make the stack's receipt rule set the active one.

An account has one active rule set per region and activating another silently stops the rules of the
previous one, so a different active set is replaced only with `--force`.

A stack deployed with `ExistingRuleSetName` (output `ReceiptRuleSetOwned` = "false") put its rule into a
set that was there before: that set is the operator's, so there is nothing to activate. The command
says so and exits 0 when that set is active (mail reaches the rule), 1 when it is not (no mail is
received until the operator activates it; relayctl does not switch a set the stack does not own).
"""

from __future__ import annotations

import argparse
from typing import Any

from botocore.exceptions import ClientError

from app.aws import error_codes
from relayctl.aws import Aws, CommandError, describe
from relayctl.command import Command
from relayctl.report import Report
from relayctl.resources import Resources
from relayctl.status import active_rule_set


def run(args: argparse.Namespace, aws: Aws) -> Report:
    resources = Resources.from_args(args, aws)
    rule_set = resources.require("rule_set")
    ses = aws.client("ses")
    try:
        ses.describe_receipt_rule_set(RuleSetName=rule_set)
        active = active_rule_set(ses)
    except ClientError as e:
        if error_codes.code(e) == "RuleSetDoesNotExist":
            raise CommandError(f"receipt rule set {rule_set!r} does not exist in this region") from e
        raise CommandError(f"reading receipt rule sets: {describe(e)}") from e
    data = {"rule_set": rule_set, "previously_active": active}
    if not resources.rule_set_owned():
        return _existing_set(rule_set, active, data)
    if active == rule_set:
        return Report({**data, "changed": False}, [f"receipt rule set {rule_set} is already active"])
    if active and not args.force:
        raise CommandError(
            f"receipt rule set {active!r} is active; activating {rule_set!r} would stop its rules "
            "(an account has one active set per region). Move its rules over, or re-run with --force"
        )
    try:
        ses.set_active_receipt_rule_set(RuleSetName=rule_set)
    except ClientError as e:
        raise CommandError(f"activating {rule_set!r}: {describe(e)}") from e
    line = f"receipt rule set {rule_set} is now active" + (f" (replaced {active})" if active else "")
    return Report({**data, "changed": True}, [line])


def _existing_set(rule_set: str, active: str | None, data: dict[str, Any]) -> Report:
    data = {**data, "changed": False, "owned": False, "is_active": active == rule_set}
    if active == rule_set:
        line = f"nothing to activate: the stack's rule is in {rule_set}, which is active"
        return Report(data, [line])
    now = f"{active} is active" if active else "no set is active"
    return Report(
        data,
        [
            f"nothing to activate: the stack's rule is in {rule_set}, which it does not own, and {now}"
            f"; no mail reaches the rule until you activate {rule_set}"
            f" (aws ses set-active-receipt-rule-set --rule-set-name {rule_set})"
        ],
        ok=False,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="replace a different active rule set")


COMMAND = Command(
    "activate",
    "Make the stack's receipt rule set the active one (refuses to replace another without --force).",
    run,
    ("rule_set",),
    add_arguments,
)
