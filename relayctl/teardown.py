"""teardown: remove a deployed relay, including what stops CloudFormation from doing it alone.

CloudFormation cannot delete an active receipt rule set, nor a bucket that still holds objects, and
SES writes into the incoming bucket as soon as its rule exists; so `sam delete` alone fails on a relay
that ever received mail, and a failed first deploy leaves buckets whose fixed names block the next.
teardown, in this order:

1. stops mail reaching the stack's buckets: deactivates the stack's own rule set when it is the
   active one, or, when the stack added its rule to a set that existed before (output
   `ReceiptRuleSetOwned` = "false"), disables that rule in place. The stack deletes the rule itself;
   disabling rather than deleting leaves CloudFormation a resource to delete, as it expects.
2. empties both buckets (see `relayctl.buckets`), after showing what it found and asking for
   confirmation (`--yes` for scripts; without a terminal and without `--yes` it refuses);
3. deletes the stack and waits for it (`--no-wait`, `--timeout`). Buckets that no stack holds any more
   (the leftovers of a failed first deploy, named with `--bucket-prefix` or explicitly) are deleted by
   teardown itself.
4. once the stack is gone, empties SAM's image repositories and deletes the companion stack that holds
   them (see `relayctl.images`); also when only that stack is left. The functions run from those
   images until the stack is gone, and its deletion may still fail, so with `--no-wait` (the stack
   still deleting), after a failed deletion or a wait that timed out, they are left for the next run.

`--dry-run` shows all of it and changes nothing.

A stack in ROLLBACK_COMPLETE, ROLLBACK_FAILED or DELETE_FAILED is torn down like any other: its
resources are read from the stack, not from outputs a failed deploy never wrote. A stack that is in
the middle of an operation (`*_IN_PROGRESS`) is left alone. Nothing is changed before the confirmation.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from app.aws import error_codes
from relayctl import buckets, images
from relayctl.aws import Aws, CommandError, describe
from relayctl.command import Command, positive
from relayctl.report import Report
from relayctl.resources import (
    RESOURCES,
    RULE_NAME_OUTPUT,
    RULE_SET_OWNED_OUTPUT,
    describe_stack,
    live_resources,
)
from relayctl.status import active_rule_set

POLL_SECONDS = 5.0
BUCKET_KINDS = ("incoming", "attachments")  # template.yaml: <prefix>-<kind>-<account>-<region>
EXISTING_RULE_SET_PARAMETER = "ExistingRuleSetName"
_GONE = "DELETE_COMPLETE"


@dataclass
class ReceiptRule:
    rule_set: str
    rule: str | None
    owned: bool
    action: str = "none"  # "deactivate" the set, "disable" the rule, or "none"
    reason: str = ""


def run(args: argparse.Namespace, aws: Aws) -> Report:
    stack = describe_stack(aws, args.stack) if args.stack else None
    name = (
        str(stack["StackName"]) if stack else args.stack if not str(args.stack).startswith("arn:") else None
    )
    companion = images.find(aws, name) if name else None
    if args.stack and stack is None and companion is None and not _bucket_options(args):
        raise CommandError(
            f"stack {args.stack!r} does not exist in this account and region; to remove the buckets a"
            " failed deploy left behind, pass --bucket-prefix PREFIX (the template's BucketNamePrefix,"
            " default iot-mail-relay) or --incoming-bucket/--attachments-bucket"
        )
    for busy in (stack, companion.stack if companion else None):
        if busy is not None and str(busy["StackStatus"]).endswith("_IN_PROGRESS"):
            raise CommandError(
                f"stack {busy['StackName']!r} is {busy['StackStatus']}; wait for that to finish, then run"
                " teardown"
            )
    if stack is None and companion is None and not _bucket_options(args):
        raise CommandError("nothing to tear down: pass --stack NAME, --bucket-prefix or the bucket names")
    account = aws.account()
    stack_resources = live_resources(aws, stack) if stack else []
    stack_buckets = [
        r["PhysicalResourceId"] for r in stack_resources if r["ResourceType"] == "AWS::S3::Bucket"
    ]
    names = _unique(stack_buckets + _named_buckets(args, account, aws.region))
    s3 = aws.client("s3")
    found = [buckets.inspect(s3, bucket, account) for bucket in names]
    found = [c for c in found if c.exists]
    unowned = [c.bucket for c in found if c.bucket not in stack_buckets]
    for bucket in unowned:
        _refuse_another_stacks_bucket(aws, s3, bucket, stack)
    ses = aws.client("ses")
    rule = find_receipt_rule(args, stack, stack_resources)
    if rule is not None:
        _plan_rule(ses, rule, args.stack, args.force)

    plan = Plan(stack, companion, rule, found, unowned)
    lines = plan.lines()
    if plan.empty:
        return Report(plan.data(), ["nothing to tear down: " + lines[-1]])
    if args.dry_run:
        would = [f"would {line}" for line in lines[:-1]]
        summary = f"would delete for good: {lines[-1]} (nothing was changed)"
        return Report({**plan.data(), "dry_run": True}, [*would, summary])
    _confirm(lines, args.yes)

    if rule is not None:
        _stop_rule(ses, rule)
    removed = {c.bucket: buckets.empty(s3, c, account) for c in found}
    done = [_rule_done(rule)] if rule is not None and rule.action != "none" else []
    done += [f"emptied {bucket}: {count} removed" for bucket, count in removed.items()]
    for bucket in unowned:
        try:
            s3.delete_bucket(Bucket=bucket, ExpectedBucketOwner=account)
        except ClientError as e:
            raise CommandError(f"deleting bucket {bucket}: {describe(e)}") from e
        done.append(f"deleted bucket {bucket}")
    report = Report(plan.data(removed), done)
    status = _delete_stack(aws, stack, args, report, "stack_status") if stack is not None else _GONE
    if companion is not None:
        _remove_companion(aws, companion, args, report, after=status)
    return report


def _remove_companion(
    aws: Aws, companion: images.Companion, args: argparse.Namespace, report: Report, after: str
) -> None:
    """SAM's image repositories go once the stack that runs their images is gone; while its deletion
    is under way (--no-wait) or after it failed, they stay for the next run."""
    if after != _GONE:
        report.data["companion_stack_status"] = str(companion.stack["StackStatus"])
        if args.no_wait and after == "DELETE_IN_PROGRESS":
            report.lines.append(
                f"left stack {companion.name} (the image repositories): the relay's stack is still being"
                " deleted; once it is gone, run teardown again to remove the image repositories"
            )
        else:
            report.lines.append(f"left stack {companion.name} (the image repositories) for the next run")
        return
    removed = images.empty(aws, companion)
    report.data["companion_stack"]["repositories"] = [
        {"repository": name, "images": count, "removed": removed.get(name, 0)}
        for name, count in companion.repositories.items()
    ]
    report.lines += [f"emptied image repository {name}: {count} removed" for name, count in removed.items()]
    _delete_stack(aws, companion.stack, args, report, "companion_stack_status")


def _bucket_options(args: argparse.Namespace) -> bool:
    return bool(args.bucket_prefix or args.incoming_bucket or args.attachments_bucket)


def _named_buckets(args: argparse.Namespace, account: str, region: str) -> list[str]:
    named = [b for b in (args.incoming_bucket, args.attachments_bucket) if b]
    if args.bucket_prefix:
        named += [f"{args.bucket_prefix}-{kind}-{account}-{region}" for kind in BUCKET_KINDS]
    return named


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def find_receipt_rule(
    args: argparse.Namespace, stack: dict[str, Any] | None, resources: list[dict[str, Any]]
) -> ReceiptRule | None:
    """Which rule set and rule the stack made: its outputs, else (a deploy that failed before writing
    them) its resources and its ExistingRuleSetName parameter; an explicit --rule-set counts as the
    stack's own set."""
    if args.rule_set:
        return ReceiptRule(args.rule_set, None, owned=True)
    if stack is None:
        return None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    rule_name = outputs.get(RULE_NAME_OUTPUT) or next(
        (r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::SES::ReceiptRule"), None
    )
    rule_set = outputs.get(RESOURCES["rule_set"].output)
    if rule_set:
        owned = outputs.get(RULE_SET_OWNED_OUTPUT, "true").strip().lower() != "false"
        return ReceiptRule(rule_set, rule_name, owned)
    own_set = next(
        (r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::SES::ReceiptRuleSet"), None
    )
    if own_set:
        return ReceiptRule(own_set, rule_name, owned=True)
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    existing = parameters.get(EXISTING_RULE_SET_PARAMETER)
    if existing and rule_name:
        return ReceiptRule(existing, rule_name, owned=False)
    return None


def _plan_rule(ses: Any, rule: ReceiptRule, stack: str | None, force: bool) -> None:
    try:
        if rule.owned:
            rules = ses.describe_receipt_rule_set(RuleSetName=rule.rule_set).get("Rules", [])
            others = [r["Name"] for r in rules if r["Name"] != rule.rule]
            if others and stack and rule.rule and not force:
                raise CommandError(
                    f"rule set {rule.rule_set} also holds rules the stack did not make"
                    f" ({', '.join(others)}): deleting the stack deletes them with the set (and"
                    " deactivating it stops them). Move them to another set first, or re-run with --force"
                )
            if active_rule_set(ses) != rule.rule_set:
                rule.reason = f"rule set {rule.rule_set} is not active"
                return
            rule.action = "deactivate"
            return
        if not rule.rule:
            rule.reason = "the stack names no receipt rule"
            return
        enabled = ses.describe_receipt_rule(RuleSetName=rule.rule_set, RuleName=rule.rule)["Rule"].get(
            "Enabled", False
        )
        rule.action = "disable" if enabled else "none"
        rule.reason = "" if enabled else f"rule {rule.rule} is already disabled"
    except ClientError as e:
        if error_codes.code(e) in {"RuleSetDoesNotExist", "RuleDoesNotExist"}:
            rule.reason = f"{describe(e)}: nothing to stop"
            return
        raise CommandError(f"reading receipt rule set {rule.rule_set}: {describe(e)}") from e


def _stop_rule(ses: Any, rule: ReceiptRule) -> None:
    try:
        if rule.action == "deactivate":
            ses.set_active_receipt_rule_set()  # no name: no set is active in the region
        elif rule.action == "disable":
            current = ses.describe_receipt_rule(RuleSetName=rule.rule_set, RuleName=rule.rule)["Rule"]
            ses.update_receipt_rule(RuleSetName=rule.rule_set, Rule={**current, "Enabled": False})
    except ClientError as e:
        raise CommandError(
            f"stopping receipt rule set {rule.rule_set}: {describe(e)} (nothing deleted)"
        ) from e


def _rule_done(rule: ReceiptRule) -> str:
    if rule.action == "deactivate":
        return f"deactivated receipt rule set {rule.rule_set} (no set is active in this region now)"
    return f"disabled receipt rule {rule.rule} in {rule.rule_set} (the stack deletes it)"


def _refuse_another_stacks_bucket(aws: Aws, s3: Any, bucket: str, stack: dict[str, Any] | None) -> None:
    """A bucket named by prefix or option that a live stack other than this one still holds."""
    try:
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    except ClientError as e:
        if error_codes.code(e) == "NoSuchTagSet":
            return
        raise CommandError(f"reading the tags of bucket {bucket}: {describe(e)}") from e
    owner = tags.get("aws:cloudformation:stack-id")
    if not owner or (stack is not None and owner == stack["StackId"]):
        return
    other = describe_stack(aws, owner)
    if other is not None and other.get("StackStatus") != _GONE:
        raise CommandError(
            f"bucket {bucket} belongs to stack {other['StackName']!r} ({other['StackStatus']}):"
            " tear that stack down instead"
        )


@dataclass
class Plan:
    """What teardown found and will do, for the confirmation, the dry run and --json."""

    stack: dict[str, Any] | None
    companion: images.Companion | None
    rule: ReceiptRule | None
    found: list[buckets.Contents]
    unowned: list[str]

    @property
    def empty(self) -> bool:
        idle = self.rule is None or self.rule.action == "none"
        return self.stack is None and self.companion is None and not self.found and idle

    def lines(self) -> list[str]:
        """One line per step, then a summary of what is deleted for good."""
        lines = []
        rule = self.rule
        if rule is not None and rule.action == "deactivate":
            lines.append(f"deactivate receipt rule set {rule.rule_set} (it is the active one)")
        elif rule is not None and rule.action == "disable":
            lines.append(
                f"disable receipt rule {rule.rule} in {rule.rule_set} (a set the stack does not own)"
            )
        for contents in self.found:
            what = "object version(s) and delete marker(s)" if contents.versioned else "object(s)"
            line = f"empty bucket {contents.bucket}: {contents.objects} {what}"
            if contents.uploads:
                line += f", {contents.uploads} unfinished upload(s)"
            if contents.bucket in self.unowned:
                line += ", then delete the bucket"
            lines.append(line)
        if self.stack is not None:
            lines.append(f"delete stack {self.stack['StackName']} ({self.stack['StackStatus']})")
        if self.companion is not None:
            for repository, count in self.companion.repositories.items():
                lines.append(f"empty image repository {repository}: {count} image(s)")
            lines.append(f"delete stack {self.companion.name} (SAM's image repositories)")
        total = sum(c.total for c in self.found)
        summary = (
            f"{total} object(s) in {len(self.found)} bucket(s)"
            if self.found
            else "no bucket of the relay exists"
        )
        if self.stack is not None:
            summary += f" and stack {self.stack['StackName']}"
        if self.companion is not None:
            summary += f", {self.companion.images} image(s) and stack {self.companion.name}"
        lines.append(summary)
        return lines

    def data(self, removed: dict[str, int] | None = None) -> dict[str, Any]:
        removed = removed or {}
        rule = self.rule
        companion = self.companion
        return {
            "stack": self.stack["StackName"] if self.stack else None,
            "receipt_rule": None
            if rule is None
            else {"rule_set": rule.rule_set, "rule": rule.rule, "owned": rule.owned, "action": rule.action},
            "buckets": [
                {
                    "bucket": c.bucket,
                    "versioned": c.versioned,
                    "objects": c.objects,
                    "uploads": c.uploads,
                    "removed": removed.get(c.bucket, 0),
                    "bucket_deleted": c.bucket in self.unowned and c.bucket in removed,
                }
                for c in self.found
            ],
            "companion_stack": None
            if companion is None
            else {
                "stack": companion.name,
                "repositories": [
                    {"repository": name, "images": count, "removed": 0}
                    for name, count in companion.repositories.items()
                ],
            },
        }


def _confirm(plan: list[str], assume_yes: bool) -> None:
    if assume_yes:
        return
    text = "; ".join(plan)
    if not sys.stdin.isatty():
        raise CommandError(
            f"refusing without confirmation (stdin is not a terminal; pass --yes): would {text}"
        )
    print("relayctl teardown will:", file=sys.stderr)
    for line in plan[:-1]:
        print(f"  {line}", file=sys.stderr)
    print(f"This deletes {plan[-1]} for good. Go ahead? [y/N] ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() not in {"y", "yes"}:
        raise CommandError("cancelled: nothing was changed")


def _delete_stack(aws: Aws, stack: dict[str, Any], args: argparse.Namespace, report: Report, key: str) -> str:
    """Delete the stack and (unless --no-wait) wait for it; its final status goes to report.data[key]."""
    cloudformation = aws.client("cloudformation")
    stack_id, name = stack["StackId"], stack["StackName"]
    try:
        cloudformation.delete_stack(StackName=stack_id)
    except ClientError as e:
        raise CommandError(f"deleting stack {name!r}: {describe(e)} (the buckets are already empty)") from e
    if args.no_wait:
        report.data[key] = "DELETE_IN_PROGRESS"
        report.lines.append(
            f"deleting stack {name} (not waiting; aws cloudformation describe-stacks shows it)"
        )
        return "DELETE_IN_PROGRESS"
    deadline = time.monotonic() + args.timeout
    status = "DELETE_IN_PROGRESS"
    while True:
        current = describe_stack(aws, stack_id)
        status = _GONE if current is None else str(current["StackStatus"])
        if status in {_GONE, "DELETE_FAILED"} or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    report.data[key] = status
    if status == _GONE:
        report.lines.append(f"deleted stack {name}")
        return status
    report.ok = False
    if status == "DELETE_FAILED":
        report.lines.append(f"deleting stack {name} failed; fix what is listed, then run teardown again:")
        failed = [r for r in live_resources(aws, stack) if r.get("ResourceStatus") == "DELETE_FAILED"]
        report.data.setdefault("failed_resources", []).extend(
            {"stack": name, "logical_id": r["LogicalResourceId"], "reason": r.get("ResourceStatusReason")}
            for r in failed
        )
        for resource in failed:
            report.lines.append(
                f"  {resource['LogicalResourceId']} ({resource['ResourceType']}):"
                f" {resource.get('ResourceStatusReason', 'no reason given')}"
            )
        return status
    report.lines.append(f"stack {name} is still {status} after {args.timeout} s")
    return status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bucket-prefix",
        metavar="PREFIX",
        help="also empty and delete <PREFIX>-incoming-<account>-<region> and <PREFIX>-attachments-..."
        " (the template's BucketNamePrefix): the leftovers of a failed first deploy",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation (for scripts)")
    parser.add_argument(
        "--dry-run", action="store_true", help="only show what would be stopped, emptied and deleted"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="go ahead although the stack's rule set also holds rules the stack did not make",
    )
    parser.add_argument("--no-wait", action="store_true", help="start the stack's deletion and return")
    parser.add_argument(
        "--timeout",
        type=positive,
        default=1800,
        metavar="SECONDS",
        help="wait at most this for the stack's deletion (default 1800)",
    )


COMMAND = Command(
    "teardown",
    "Remove the relay: stop its receipt rule, empty its buckets (after a confirmation), delete the"
    " stack and SAM's image repositories, or the buckets a failed first deploy left behind.",
    run,
    ("incoming_bucket", "attachments_bucket", "rule_set"),
    add_arguments,
)
