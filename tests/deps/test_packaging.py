"""`pip install .` gives a working relayctl on its own (README, Operations): the distribution declares
its runtime dependencies. Each way the README shows is run into a clean virtual environment made
here (no pip of its own, no site-packages: this interpreter's pip drives it with `--python`), then
the installed `relayctl` answers `--help` and runs `status` against a moto server.

No network: pip reads only the wheelhouse of the locked files that `make wheels` downloads for the
image test (`--no-index --find-links`). It holds boto3, botocore and what they need, and setuptools
for building the project itself (pyproject.toml's build-system).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from localaws.account import Account
from tools import lock

pytestmark = pytest.mark.integration

ROOT = lock.ROOT
WHEELHOUSE = Path(os.environ.get("IMAGE_WHEELHOUSE", ROOT / ".venv-wheels"))
REGION = "eu-west-1"

# The README's two ways (Operations): the declared ranges, or first exactly the locked files.
WAYS = {
    "pip-install-dot": [["install", "."]],
    "locked-then-dot": [
        ["install", "--require-hashes", "-r", "relayctl/requirements.lock"],
        ["install", "."],
    ],
}


def _source(destination: Path) -> Path:
    """What `pip install .` reads from a clone: pyproject.toml, README.md and the packages."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, destination / name)
    for package in ("app", "relayctl", "sandbox"):
        shutil.copytree(ROOT / package, destination / package, ignore=shutil.ignore_patterns("__pycache__"))
    return destination


def _pip(python: Path, cwd: Path, *arguments: str) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    environment |= {
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), *arguments, "--no-cache-dir", "--quiet"],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, f"pip {' '.join(arguments)}\n{done.stdout}\n{done.stderr}"


@pytest.mark.skipif(not WHEELHOUSE.is_dir(), reason=f"no wheelhouse at {WHEELHOUSE}: run `make wheels`")
@pytest.mark.parametrize("way", WAYS)
def test_pip_install_gives_a_relayctl_that_runs_on_its_own(
    tmp_path: Path, served_relay: Account, way: str
) -> None:
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=False)
    python = environment / "bin" / "python"
    (tmp_path / "src").mkdir()
    source = _source(tmp_path / "src")
    for arguments in WAYS[way]:
        _pip(python, source, *arguments)

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RELAYCTL_", "PYTHON"))}
    relayctl = str(environment / "bin" / "relayctl")
    shown = subprocess.run(
        [relayctl, "--help"], cwd=tmp_path, env=clean, capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0, shown.stderr
    assert "redrive" in shown.stdout
    assert "status" in shown.stdout

    blueprint = served_relay.blueprint
    assert blueprint.dead_letter_queue is not None
    assert served_relay.endpoint is not None
    inbound = served_relay.queue_url(blueprint.inbound_queue.logical_id)
    dlq = served_relay.queue_url(blueprint.dead_letter_queue.logical_id)
    served_relay.client("sqs").send_message(QueueUrl=dlq, MessageBody="dead")
    credentials = {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_ENDPOINT_URL": served_relay.endpoint,
    }
    region = blueprint.region
    status = subprocess.run(
        [relayctl, "status", "--queue-url", inbound, "--dlq-url", dlq, "--region", region, "--json"],
        cwd=tmp_path,
        env=clean | credentials,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    queues = json.loads(status.stdout)["queues"]
    assert (queues["inbound"]["visible"], queues["dead_letter"]["visible"]) == (0, 1)

    installed = subprocess.run(
        [str(python), "-c", "import boto3, botocore, relayctl; print(boto3.__file__, relayctl.__file__)"],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(ROOT) not in installed  # the venv's own copies, not the checkout's
    assert installed.count(str(environment)) == 2


@pytest.mark.skipif(not WHEELHOUSE.is_dir(), reason=f"no wheelhouse at {WHEELHOUSE}: run `make wheels`")
def test_the_recipients_extra_makes_the_recipients_verbs_work(tmp_path: Path) -> None:
    """README, Operations: `pip install .` alone leaves the recipients verbs without the function's
    address parser, and they say how to add it; `pip install '.[recipients]'` (pins, no hashes) adds it."""
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=False)
    python = environment / "bin" / "python"
    (tmp_path / "src").mkdir()
    source = _source(tmp_path / "src")
    document = tmp_path / "recipients.json"
    document.write_text(
        json.dumps(
            {
                "groups": {"lobby-security": ["guard@example.com"]},
                "routes": {"cam-lobby-8f2k@relay.example.com": ["lobby-security"]},
            }
        )
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RELAYCTL_", "PYTHON"))}
    check = [
        str(environment / "bin" / "relayctl"),
        "recipients",
        "check",
        str(document),
        "--recipients-config",
        "s3://relay-incoming-123456789012-eu-west-1/config/recipients.json",
        "--receiving-addresses",
        "inbox-7f3k9q@relay.example.com,cam-lobby-8f2k@relay.example.com",
        "--allowed-recipients",
        "@example.com",
        "--region",
        REGION,
    ]

    _pip(python, source, "install", ".")
    without = subprocess.run(check, cwd=tmp_path, env=clean, capture_output=True, text=True, check=False)
    assert without.returncode == 1
    assert "pip install '.[recipients]'" in without.stderr

    _pip(python, source, "install", ".[recipients]")
    checked = subprocess.run(check, cwd=tmp_path, env=clean, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip().endswith("valid: 1 groups, 1 routes")
