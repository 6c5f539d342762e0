"""relayctl's entry point: argparse subcommands, one-line errors, exit status 0/1/2.

Exit status: 0 done, 1 failed (the message says why; nothing is half-reported as success), 2 usage
error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from relayctl import (
    activate,
    alarms,
    links,
    recipients,
    redrive,
    resources,
    revoke,
    rotate,
    status,
    teardown,
)
from relayctl.aws import Aws, CommandError, describe
from relayctl.command import Command

COMMANDS: tuple[Command, ...] = (
    revoke.REVOKE,
    revoke.UNREVOKE,
    links.COMMAND,
    redrive.COMMAND,
    status.COMMAND,
    activate.COMMAND,
    rotate.COMMAND,
    recipients.COMMAND,
    alarms.COMMAND,
    teardown.COMMAND,
)

DESCRIPTION = """Operate a deployed IoT Mail Relay: revoke attachment links, list them, rotate their
key, manage recipient groups and routes, list, show, mute and unmute folded alarms, redrive the
dead-letter queue, show the pipeline's state, activate the receipt rule set and tear the relay down.
Uses the usual AWS credential chain; set AWS_ENDPOINT_URL to work against the local sandbox."""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts instead of text")
    common.add_argument("--profile", help="AWS profile (default: the usual credential chain)")
    common.add_argument(
        "--region", help="AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's)"
    )

    parser = argparse.ArgumentParser(prog="relayctl", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(command.name, parents=[common], help=command.help, description=command.help)
        resources.add_options(sub, *command.resources)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
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


if __name__ == "__main__":
    sys.exit(main())
