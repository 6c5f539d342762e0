"""recipients: show, check, set and resolve the groups and routes document the function reads.

The document lives at the stack's `RecipientsConfigUri` (`s3://<incoming bucket>/config/recipients.json`);
the function re-reads it within a minute of a change. `check` and `set` validate with the function's own
code (`app.routing.document`), so what the tool accepts the function uses; they also hold the document
against the stack: every route must be one of its receiving addresses, and members outside its
`AllowedRecipients` are reported (the function would refuse them). `set` writes with `If-Match` on the
ETag it read (`If-None-Match: *` when there was none), so two operators cannot overwrite each other's
edit unnoticed: the second one is told to look again.

The validation needs flanker, the function's address parser, at the version the function pins: the
`recipients` extra brings it (`pip install '.[recipients]'`, any operating system: no platform hashes)
and `make venv` has it; a plain `pip install .` does not, and these verbs then say how to add it.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from botocore.exceptions import ClientError

from app.aws import error_codes
from relayctl.aws import Aws, CommandError, describe
from relayctl.command import Command
from relayctl.report import Report
from relayctl.resources import Resources

VERBS = ("show", "check", "set", "resolve")
_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>\S+)$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verb", choices=VERBS, help="show | check FILE | set FILE | resolve ADDRESS-OR-CODE")
    parser.add_argument("target", nargs="?", help="the document file (check, set) or what to resolve")
    parser.add_argument(
        "--receiving-addresses",
        metavar="A,B",
        help="the relay's receiving addresses (default: the stack's RecipientEmail and"
        " AdditionalRecipientEmails)",
    )
    parser.add_argument(
        "--allowed-recipients",
        metavar="LIST",
        help="the recipient fence to hold members against (default: the stack's AllowedRecipients)",
    )


def run(args: argparse.Namespace, aws: Aws) -> Report:
    resources = Resources.from_args(args, aws)
    bucket, key = _location(resources.require("recipients_config"))
    context = _Context(args, resources)
    if args.verb == "show":
        return _show(aws, bucket, key)
    if not args.target:
        raise CommandError(
            f"recipients {args.verb} needs {'a FILE' if args.verb != 'resolve' else 'an ADDRESS or CODE'}"
        )
    if args.verb == "resolve":
        return _resolve(aws, bucket, key, args.target, context)
    data = _read_file(Path(args.target))
    report = _check(data, context)
    if args.verb == "check" or not report.ok:
        return report
    return _set(aws, bucket, key, data, report)


class _Context:
    """The stack's receiving addresses and recipient fence, from options or the stack's parameters."""

    def __init__(self, args: argparse.Namespace, resources: Resources) -> None:
        self._args = args
        self._resources = resources

    def _parameter(self, name: str) -> str | None:
        if not self._resources.stack:
            return None
        parameters = self._resources.describe_stack().get("Parameters", [])
        return next((p.get("ParameterValue", "") for p in parameters if p["ParameterKey"] == name), None)

    def receiving(self) -> tuple[str, ...] | None:
        text = self._args.receiving_addresses
        if text is None:
            main = self._parameter("RecipientEmail")
            if main is None:
                return None
            text = ",".join([main, self._parameter("AdditionalRecipientEmails") or ""])
        return tuple(a.strip().lower() for a in text.split(",") if a.strip())

    def fence(self) -> tuple[str, ...]:
        text = self._args.allowed_recipients
        if text is None:
            text = self._parameter("AllowedRecipients") or ""
        try:
            return tuple(_function("app.mail.fence").parse(text))
        except ValueError as e:
            raise CommandError(f"--allowed-recipients: {e}") from e


def _check(data: bytes, context: _Context) -> Report:
    document = _function("app.routing.document")
    fence = _function("app.mail.fence")
    directory, problems = document.check(data)
    receiving = context.receiving()
    if receiving is not None:
        problems += [
            f"route {address!r}: not a receiving address of the relay ({', '.join(receiving)})"
            for address in directory.routes
            if address not in receiving
        ]
    allowed = context.fence()
    warnings = [
        f"group {name!r}: {member} is outside AllowedRecipients and would be refused"
        for name, members in directory.groups.items()
        for member in members
        if allowed and not fence.admits(allowed, member)
    ]
    lines = [f"problem: {p}" for p in problems] + [f"warning: {w}" for w in warnings]
    summary = f"{len(directory.groups)} groups, {len(directory.routes)} routes"
    lines.append(f"invalid ({len(problems)} problems): nothing written" if problems else f"valid: {summary}")
    data_out = {"valid": not problems, "problems": problems, "warnings": warnings, **_summary(directory)}
    return Report(data_out, lines, ok=not problems)


def _show(aws: Aws, bucket: str, key: str) -> Report:
    current = _get(aws, bucket, key)
    if current is None:
        return Report(
            {"uri": f"s3://{bucket}/{key}", "exists": False, "groups": {}, "routes": {}},
            [f"no document at s3://{bucket}/{key}: no groups and no routes"],
        )
    data, etag = current
    directory, problems = _function("app.routing.document").check(data)
    lines = [f"s3://{bucket}/{key} (ETag {etag})"]
    lines += [
        f"group {name} ({len(members)}): {', '.join(members)}" for name, members in directory.groups.items()
    ]
    lines += [f"route {address} -> {', '.join(targets)}" for address, targets in directory.routes.items()]
    lines += [f"problem: {p} (the function keeps its last good copy)" for p in problems]
    out = {
        "uri": f"s3://{bucket}/{key}",
        "exists": True,
        "etag": etag,
        "problems": problems,
        **_summary(directory),
    }
    return Report(out, lines, ok=not problems)


def _set(aws: Aws, bucket: str, key: str, data: bytes, checked: Report) -> Report:
    current = _get(aws, bucket, key)
    condition = {"IfMatch": current[1]} if current else {"IfNoneMatch": "*"}
    try:
        response = aws.client("s3").put_object(
            Bucket=bucket, Key=key, Body=data, ContentType="application/json", **condition
        )
    except ClientError as e:
        if error_codes.code(e) in {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}:
            raise CommandError(
                f"s3://{bucket}/{key} changed since it was read (another edit?): nothing written;"
                " run `relayctl recipients show`, merge, and set again"
            ) from e
        raise CommandError(f"writing s3://{bucket}/{key}: {describe(e)}") from e
    document = _function("app.routing.document")
    before = document.check(current[0])[0] if current else document.EMPTY
    after = document.check(data)[0]
    changes = _changes(before, after)
    lines = [
        *checked.lines[:-1],
        *changes,
        f"written to s3://{bucket}/{key}; the function uses it within a minute",
    ]
    return Report({**checked.data, "written": True, "etag": response.get("ETag"), "changes": changes}, lines)


def _resolve(aws: Aws, bucket: str, key: str, target: str, context: _Context) -> Report:
    recipients = _function("app.mail.recipients")
    expand = _function("app.routing.expand")
    fence = _function("app.mail.fence")
    current = _get(aws, bucket, key)
    directory = _function("app.routing.document").check(current[0])[0] if current else None
    directory = directory or _function("app.routing.document").EMPTY
    receiving = context.receiving() or ()
    if "Email_Rxers_Code" in target:
        found = recipients.extract([_function("app.mail.parse").TextBody("plain", target)], receiving)
        source = "code"
    else:
        route = directory.routes.get(target.strip().lower())
        if route is None:
            return Report(
                {"source": "none", "recipients": []},
                [f"{target}: no route (a mail to it without a code becomes a no_recipients notice)"],
            )
        found, source = recipients.classify(route, receiving), "route"
    expansion = expand.expand(found.entries, directory, receiving)
    allowed = context.fence()
    inside = [r for r in expansion.recipients if not allowed or fence.admits(allowed, r)]
    refused = [r for r in expansion.recipients if r not in inside]
    invalid = [*found.invalid, *(f"{g} (unknown group)" for g in expansion.unknown_groups)]
    lines = [f"from the {source}: {len(inside)} recipients ({expansion.from_groups} from groups)"]
    lines += [f"  {r}" for r in inside]
    lines += [f"refused (outside AllowedRecipients): {r}" for r in refused]
    lines += [f"invalid: {i}" for i in invalid]
    data = {"source": source, "recipients": inside, "refused": refused, "invalid": invalid}
    return Report(data, lines)


def _summary(directory: Any) -> dict[str, Any]:
    return {
        "groups": {name: len(members) for name, members in directory.groups.items()},
        "routes": {address: list(targets) for address, targets in directory.routes.items()},
    }


def _changes(before: Any, after: Any) -> list[str]:
    lines = []
    for kind, old, new in (("group", before.groups, after.groups), ("route", before.routes, after.routes)):
        lines += [f"added {kind} {name}" for name in new if name not in old]
        lines += [f"removed {kind} {name}" for name in old if name not in new]
        lines += [f"changed {kind} {name}" for name in new if name in old and old[name] != new[name]]
    return lines or ["no change"]


def _get(aws: Aws, bucket: str, key: str) -> tuple[bytes, str] | None:
    try:
        response = aws.client("s3").get_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if error_codes.code(e) in error_codes.MISSING:
            return None
        raise CommandError(f"reading s3://{bucket}/{key}: {describe(e)}") from e
    return bytes(response["Body"].read()), str(response.get("ETag", ""))


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CommandError(f"reading {path}: {e.strerror or e}") from e


def _location(uri: str) -> tuple[str, str]:
    match = _URI.match(uri)
    if not match:
        raise CommandError(f"{uri!r} is not an s3://bucket/key URI")
    return match["bucket"], match["key"]


def _function(module: str) -> ModuleType:
    """The function's own code, imported on use: it needs flanker, which `pip install .` leaves out."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise CommandError(
            f"relayctl recipients validates with the function's own code, which needs {e.name or 'flanker'}:"
            " install relayctl with its recipients extra, `pip install '.[recipients]'` in the clone"
        ) from e


COMMAND = Command(
    "recipients",
    "Recipient groups and per-device routes: show, check FILE, set FILE (guarded against lost"
    " updates), resolve ADDRESS-OR-CODE.",
    run,
    ("recipients_config",),
    add_arguments,
)
