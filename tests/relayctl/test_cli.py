"""The entry point: resources from a stack's outputs, one-line errors and exit statuses, help."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import pytest
from cfnlint.decode import decode  # type: ignore[import-untyped]

from relayctl.aws import Aws
from relayctl.cli import main
from relayctl.resources import RESOURCES, RULE_NAME_OUTPUT, RULE_SET_OWNED_OUTPUT
from relayctl.teardown import EXISTING_RULE_SET_PARAMETER
from tests.support import TEMPLATE
from tests.support.relayctl import STACK, Relay

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = (
    "revoke",
    "unrevoke",
    "links",
    "redrive",
    "status",
    "activate",
    "rotate-link-key",
    "recipients",
    "alarms",
    "teardown",
)


def test_every_output_the_tool_reads_exists_in_the_template() -> None:
    template, matches = decode(str(TEMPLATE))
    assert template is not None, matches
    assert {r.output for r in RESOURCES.values()} <= set(template["Outputs"])


def test_the_rule_outputs_teardown_and_activate_read_exist_in_the_template() -> None:
    template, matches = decode(str(TEMPLATE))
    assert template is not None, matches
    assert {RULE_NAME_OUTPUT, RULE_SET_OWNED_OUTPUT, "ReceiptRuleSetName"} <= set(template["Outputs"])
    assert EXISTING_RULE_SET_PARAMETER == "ExistingRuleSetName"


def test_the_console_script_points_at_main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert project["project"]["scripts"]["relayctl"] == "relayctl.cli:main"
    assert "relayctl*" in project["tool"]["setuptools"]["packages"]["find"]["include"]


def test_commands_find_their_resources_through_the_stack(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local account holds the stack with the template's outputs, as CloudFormation would."""
    mail = relay.store_mail("incoming/a1", "<a1@sensor>", ["ops@example.com"])
    relay.sqs.send_message(QueueUrl=relay.dlq_url, MessageBody="failed once")

    assert relay.run_json("revoke", "--stack", STACK, "--incoming-key", "incoming/a1")["counts"] == {
        "revoked": 1
    }
    assert relay.tags(mail.keys[0]) == {"revoked": "true"}
    status = relay.run_json("status", "--stack", STACK)
    assert status["queues"]["dead_letter"]["visible"] == 1
    assert status["receipt_rule_set"]["stack"] == relay.rule_set
    monkeypatch.setenv("RELAYCTL_STACK", STACK)
    assert relay.run_json("redrive")["moved"] == 1
    assert relay.run_json("activate")["changed"] is True


def test_an_explicit_option_wins_over_the_stack(relay: Relay) -> None:
    code, _, err = relay.run(
        "links", "--stack", STACK, "--attachments-bucket", "no-such-bucket", "--message-id", "x"
    )
    assert code == 1
    assert "no-such-bucket" in err
    assert "NoSuchBucket" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["revoke", "--incoming-key", "incoming/a"],
            "no attachments bucket: pass --attachments-bucket or --stack NAME",
        ),
        (["status", "--stack", "missing"], "stack 'missing' does not exist in this account and region"),
        (["redrive", "--queue-url", "q"], "no dead-letter queue URL: pass --dlq-url or --stack NAME"),
        (["links", "--attachments-bucket", "b", "--recipient", "a@example.com"], "--recipient needs --since"),
        (["revoke", "--attachments-bucket", "b", "--url", "ftp://x/y"], "--url must be an http(s) link"),
    ],
)
def test_errors_are_one_line_with_exit_status_1(
    relay: Relay, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    capsys.readouterr()
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("relayctl: error: ")
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_an_aws_error_is_one_line_naming_the_operation(relay: Relay) -> None:
    code, _, err = relay.run(
        "redrive", "--queue-url", relay.queue_url, "--dlq-url", relay.queue_url + "-gone"
    )
    assert code == 1
    assert "GetQueueAttributes failed" in err
    assert err.count("\n") == 1


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["links", "--attachments-bucket", "b", "--recipient", "a@b.c", "--since", "yesterday"],
        ["revoke", "--message-id", "a", "--incoming-key", "b"],
        ["redrive", "--max", "0"],
        [],
    ):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2, argv
    assert "not an ISO 8601 time: 'yesterday'" in capsys.readouterr().err


def test_the_parser_is_the_table_of_commands_each_module_declares() -> None:
    import importlib
    import pkgutil

    import relayctl
    from relayctl import cli
    from relayctl.command import Command

    assert tuple(c.name for c in cli.COMMANDS) == COMMANDS
    declared = set()
    for info in pkgutil.iter_modules(relayctl.__path__):
        if info.name == "__main__":  # runs the tool
            continue
        module = importlib.import_module(f"relayctl.{info.name}")
        declared |= {id(v) for v in vars(module).values() if isinstance(v, Command)}
    assert declared == {id(c) for c in cli.COMMANDS}  # none declared and left out
    parser = cli.build_parser()
    (subcommands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert tuple(subcommands.choices) == COMMANDS
    for command in cli.COMMANDS:  # the options a command owns are on its parser only
        own = {o for a in subcommands.choices[command.name]._actions for o in a.option_strings}
        assert {"--stack", "--json", "--region", "--profile"} <= own


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    assert "--stack" in help_text
    assert "--json" in help_text


@pytest.mark.parametrize(
    ("environment", "option", "expected"),
    [
        ({"AWS_DEFAULT_REGION": "eu-west-1"}, None, "eu-west-1"),  # what the AWS CLI and SAM read too
        ({"AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "eu-west-1"}, None, "eu-central-1"),
        ({"AWS_REGION": "eu-central-1"}, "us-west-2", "us-west-2"),
    ],
)
def test_the_region_comes_from_the_option_then_aws_region_then_aws_default_region(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], option: str | None, expected: str
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert Aws(region=option).region == expected
