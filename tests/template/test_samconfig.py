"""The deploy flow the README documents is the one SAM CLI really runs.

`samconfig.toml` is shared: it must carry no parameter values (a plain `sam deploy` would push them to
the live stack). The README's prompt table is compared with what `sam deploy --guided` asks, by
running the SAM CLI of `make template-check` (`.venv-sam`, or `$SAM_CLI`) on a copy of the project
with an unreachable AWS endpoint: every prompt comes before the first AWS call.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT
from tests.support.cloudformation import load_template

SAMCONFIG = ROOT / "samconfig.toml"
README = ROOT / "README.md"
ANSWERS = {"SenderEmail": "relay@plant.example.net", "RecipientEmail": "inbox-q7@relay.plant.example.net"}
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing answers, so SAM stops at its first AWS call


def _sam() -> Path:
    for candidate in (os.environ.get("SAM_CLI", ""), str(ROOT / ".venv-sam" / "bin" / "sam")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.skip("no SAM CLI: run `make template-check` (it installs .venv-sam) or set SAM_CLI")


def _run_sam(workdir: Path, *args: str, answers: str = "") -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir / "home"),  # SAM keeps metadata there
        "SAM_CLI_TELEMETRY": "0",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": UNREACHABLE,
        "AWS_MAX_ATTEMPTS": "1",
    }
    return subprocess.run(
        [str(_sam()), *args],
        cwd=workdir,
        env=environment,
        input=answers,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("template.yaml", "samconfig.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "home").mkdir()
    return tmp_path


def _readme_prompts() -> list[str]:
    text = README.read_text(encoding="utf-8")
    table = text.split("`sam deploy --guided` asks, in order:", 1)[1].split("\n\n", 2)[1]
    prompts = []
    for row in table.splitlines()[2:]:
        cell = row.split("|")[1].strip()
        prompts.append(cell)
    return prompts


@pytest.mark.unit
def test_samconfig_carries_no_parameter_values_or_addresses() -> None:
    text = SAMCONFIG.read_text(encoding="utf-8")
    config = tomllib.loads(text)
    for environment, commands in config.items():
        if isinstance(commands, dict):
            for command, sections in commands.items():
                assert "parameter_overrides" not in sections.get("parameters", {}), (environment, command)
    assert "@" not in text
    assert not re.search(r"example\.(com|org|net)", text)


@pytest.mark.integration  # runs the SAM CLI
def test_guided_deploy_asks_exactly_what_the_readme_lists(project: Path) -> None:
    parameters = list(load_template()["Parameters"])
    answers = ["", ""]  # stack name and region: the defaults
    answers += [ANSWERS.get(name, "") for name in parameters]  # Enter keeps a parameter's default
    answers += ["y", "y", "n", "y", "samconfig.local.toml", ""]
    result = _run_sam(project, "deploy", "--guided", answers="\n".join(answers) + "\n")
    output = result.stdout + result.stderr
    assert "Looking for resources needed for deployment" in output, output  # every prompt was answered
    assert UNREACHABLE in output  # and it stopped at the first AWS call, before saving anything
    prompts = output.split("Setting default arguments for 'sam deploy'", 1)[1]
    asked = re.findall(r"\t((?:Parameter )?[A-Z][^\t#\[\]:]*?)(?: \[[^\]]*\])?: ", prompts)
    assert asked == _readme_prompts()
    assert asked[2:-6] == [f"Parameter {name}" for name in parameters]
    assert "Stack Name [iot-mail-relay]" in output  # the shared default comes from samconfig.toml
    assert "Parameter SenderEmail []" in output  # and no placeholder address does


@pytest.mark.integration  # runs the SAM CLI
def test_guided_deploy_cannot_start_from_a_config_file_that_does_not_exist(project: Path) -> None:
    result = _run_sam(project, "deploy", "--guided", "--config-file", "samconfig.local.toml")
    assert result.returncode != 0
    assert "Config file samconfig.local.toml does not exist or could not be read!" in result.stderr


def _saved(parameters: dict[str, Any]) -> str:
    """samconfig.local.toml as `sam deploy --guided` saves it (GuidedConfig.save_config's keys)."""
    overrides = " ".join(f'{name}=\\"{value}\\"' for name, value in parameters.items())
    return (
        'version = 0.1\n\n[default.global.parameters]\nregion = "eu-west-1"\n\n'
        '[default.deploy.parameters]\nstack_name = "iot-mail-relay"\nresolve_s3 = true\n'
        's3_prefix = "iot-mail-relay"\nresolve_image_repos = true\nregion = "eu-west-1"\n'
        'confirm_changeset = true\ncapabilities = "CAPABILITY_IAM"\n'
        f'parameter_overrides = "{overrides}"\n'
    )


@pytest.mark.integration  # runs the SAM CLI
def test_later_deploys_read_what_the_operator_saved(project: Path) -> None:
    (project / "samconfig.local.toml").write_text(_saved(ANSWERS), encoding="utf-8")
    result = _run_sam(project, "deploy", "--config-file", "samconfig.local.toml", "--debug")
    (loaded,) = re.findall(r"Configuration values are: (.*)", result.stderr)
    for name, value in ANSWERS.items():
        assert f'{name}="{value}"' in loaded
    assert "'stack_name': 'iot-mail-relay'" in loaded
    assert UNREACHABLE in result.stderr  # it went on to deploy with them
