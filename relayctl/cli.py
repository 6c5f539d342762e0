"""relayctl's entry point: argparse subcommands, one-line errors, exit status 0/1/2.

Exit status: 0 done, 1 failed (the message says why; nothing is half-reported as success), 2 usage
error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from relayctl import (
    activate,
    links,
    mails,
    recipients,
    redrive,
    resources,
    revoke,
    rotate,
    status,
    teardown,
)
from relayctl.aws import Aws, CommandError, describe
from relayctl.report import Report

Command = Callable[[argparse.Namespace, Aws], Report]

DESCRIPTION = """Operate a deployed IoT Mail Relay: revoke attachment links, list them, rotate their
key, manage recipient groups and routes, redrive the dead-letter queue, show the pipeline's state,
activate the receipt rule set and tear the relay down. Uses the usual AWS credential chain; set
AWS_ENDPOINT_URL to work against the local sandbox."""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts instead of text")
    common.add_argument("--profile", help="AWS profile (default: the usual credential chain)")
    common.add_argument(
        "--region", help="AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's)"
    )

    parser = argparse.ArgumentParser(prog="relayctl", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Command, help_text: str, *needs: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        resources.add_options(sub, *needs)
        sub.set_defaults(run=run)
        return sub

    sub = command(
        "revoke",
        revoke.run,
        "Kill attachment links: tag the objects revoked=true (the bucket policy then denies every link).",
        "attachments_bucket",
    )
    mails.add_selectors(sub)
    sub.add_argument("--delete", action="store_true", help="delete the attachment objects instead (final)")

    sub = command(
        "unrevoke", revoke.run, "Lift the revoked=true tag so the links work again.", "attachments_bucket"
    )
    mails.add_selectors(sub)

    sub = command(
        "links", links.run, "List a mail's attachments with size, expiry and state.", "attachments_bucket"
    )
    mails.add_selectors(sub)

    sub = command(
        "redrive",
        redrive.run,
        "Move the dead-letter queue's messages back to the inbound queue.",
        "queue_url",
        "dlq_url",
    )
    sub.add_argument("--dry-run", action="store_true", help="only count the messages that would move")
    sub.add_argument(
        "--max", type=_positive, metavar="N", help="move at most N messages (receive/send/delete)"
    )
    sub.add_argument(
        "--no-move-task", action="store_true", help="receive/send/delete even where SQS's move task exists"
    )
    sub.add_argument(
        "--visibility-timeout",
        type=_positive,
        default=60,
        metavar="SECONDS",
        help="how long a message being moved stays hidden in the DLQ (default 60)",
    )
    sub.add_argument("--no-wait", action="store_true", help="start the move task and return")
    sub.add_argument(
        "--timeout",
        type=_positive,
        default=300,
        metavar="SECONDS",
        help="wait at most this for the move task",
    )

    sub = command(
        "status",
        status.run,
        "Queue depths, oldest message age, DLQ depth, alarm states and the active receipt rule set.",
        "queue_url",
        "dlq_url",
        "rule_set",
        "alarms_topic",
    )
    sub.add_argument(
        "--sample",
        action="store_true",
        help="without CloudWatch figures, sample message ages (counts as a receive)",
    )

    sub = command(
        "activate",
        activate.run,
        "Make the stack's receipt rule set the active one (refuses to replace another without --force).",
        "rule_set",
    )
    sub.add_argument("--force", action="store_true", help="replace a different active rule set")

    sub = command(
        "rotate-link-key",
        rotate.run,
        "Make a new current link key; the old one stays valid as previous, the one before is retired.",
        "link_key_secret",
    )
    sub.add_argument("--dry-run", action="store_true", help="show the key ids without changing the secret")

    sub = command(
        "recipients",
        recipients.run,
        "Recipient groups and per-device routes: show, check FILE, set FILE (guarded against lost"
        " updates), resolve ADDRESS-OR-CODE.",
        "recipients_config",
    )
    recipients.add_arguments(sub)

    sub = command(
        "teardown",
        teardown.run,
        "Remove the relay: stop its receipt rule, empty its buckets (after a confirmation) and delete"
        " the stack, or the buckets a failed first deploy left behind.",
        "incoming_bucket",
        "attachments_bucket",
        "rule_set",
    )
    sub.add_argument(
        "--bucket-prefix",
        metavar="PREFIX",
        help="also empty and delete <PREFIX>-incoming-<account>-<region> and <PREFIX>-attachments-..."
        " (the template's BucketNamePrefix): the leftovers of a failed first deploy",
    )
    sub.add_argument("--yes", action="store_true", help="do not ask for confirmation (for scripts)")
    sub.add_argument(
        "--force",
        action="store_true",
        help="go ahead although the stack's rule set also holds rules the stack did not make",
    )
    sub.add_argument("--no-wait", action="store_true", help="start the stack's deletion and return")
    sub.add_argument(
        "--timeout",
        type=_positive,
        default=1800,
        metavar="SECONDS",
        help="wait at most this for the stack's deletion (default 1800)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        aws = Aws(profile=args.profile, region=args.region)
        report = args.run(args, aws)
    except CommandError as e:
        return _fail(str(e))
    except ClientError as e:
        return _fail(describe(e))
    except NoCredentialsError:
        return _fail("no AWS credentials found (set AWS_PROFILE, use --profile, or export keys)")
    except NoRegionError:
        return _fail("no AWS region: pass --region or set AWS_DEFAULT_REGION (or AWS_REGION)")
    except BotoCoreError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        print(
            "relayctl: interrupted (nothing is lost: unfinished messages stay in their queue)",
            file=sys.stderr,
        )
        return 130
    output = report.render(args.json)
    if output:
        print(output)
    return 0 if report.ok else 1


def _fail(message: str) -> int:
    print(f"relayctl: error: {message}", file=sys.stderr)
    return 1


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


if __name__ == "__main__":
    sys.exit(main())
