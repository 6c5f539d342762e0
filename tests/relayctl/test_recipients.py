"""relayctl recipients against moto: show, check, set (with the lost-update guard) and resolve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.relayctl import Relay

RELAY = "inbox-7f3k9q@relay.example.com"
CAMERA = "cam-lobby-8f2k@relay.example.com"
DOCUMENT = {
    "groups": {
        "boiler-oncall": ["alice@example.com", "bob@example.org"],
        "lobby-security": ["guard@example.com"],
    },
    "routes": {CAMERA: ["lobby-security", "yard-lead@example.com"]},
}


def options(relay: Relay) -> list[str]:
    bucket = relay.blueprint.function.environment["INCOMING_BUCKET"]
    return [
        "--recipients-config",
        f"s3://{bucket}/config/recipients.json",
        "--receiving-addresses",
        f"{RELAY},{CAMERA}",
        "--allowed-recipients",
        "@example.com,@example.org",
    ]


def write(tmp_path: Path, document: Any, name: str = "recipients.json") -> str:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


def test_show_without_a_document(relay: Relay) -> None:
    code, out, _ = relay.run("recipients", "show", *options(relay))
    assert code == 0
    assert "no groups and no routes" in out


def test_check_reports_problems_and_writes_nothing(relay: Relay, tmp_path: Path) -> None:
    bad = {
        "groups": {"lobby-security": ["not an address"], "outside": ["x@elsewhere.example"]},
        "routes": {"stranger@relay.example.com": ["lobby-security"], CAMERA: ["ghosts"]},
    }
    code, out, _ = relay.run("recipients", "check", write(tmp_path, bad), *options(relay))
    assert code == 1
    assert "'not an address' is not an address" in out
    assert "route 'stranger@relay.example.com': not a receiving address of the relay" in out
    assert f"route '{CAMERA}': unknown group 'ghosts'" in out
    assert "warning: group 'outside': x@elsewhere.example is outside AllowedRecipients" in out
    code, _, _ = relay.run("recipients", "set", write(tmp_path, bad), *options(relay))
    assert code == 1
    assert "no document" in relay.run("recipients", "show", *options(relay))[1]


def test_set_then_show_then_a_change(relay: Relay, tmp_path: Path) -> None:
    code, out, _ = relay.run("recipients", "set", write(tmp_path, DOCUMENT), *options(relay))
    assert code == 0, out
    assert "added group boiler-oncall" in out
    assert f"added route {CAMERA}" in out
    shown = relay.run_json("recipients", "show", *options(relay))
    assert shown["groups"] == {"boiler-oncall": 2, "lobby-security": 1}
    changed = {**DOCUMENT, "groups": {**DOCUMENT["groups"], "lobby-security": ["night@example.com"]}}
    code, out, _ = relay.run("recipients", "set", write(tmp_path, changed), *options(relay))
    assert code == 0
    assert "changed group lobby-security" in out
    assert "boiler-oncall" not in out.split("changed group")[0].split("valid")[-1]


def test_set_refuses_to_overwrite_an_edit_made_since_it_read(
    relay: Relay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay.run("recipients", "set", write(tmp_path, DOCUMENT), *options(relay))
    from relayctl import recipients

    bucket = relay.blueprint.function.environment["INCOMING_BUCKET"]
    real_get = recipients._get

    def get_then_someone_else_writes(aws: Any, b: str, key: str) -> Any:
        found = real_get(aws, b, key)
        relay.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({"groups": {"theirs": []}}).encode())
        return found

    monkeypatch.setattr(recipients, "_get", get_then_someone_else_writes)
    code, _, err = relay.run("recipients", "set", write(tmp_path, {"groups": {"mine": []}}), *options(relay))
    assert code == 1
    assert "changed since it was read" in err
    stored = json.loads(relay.s3.get_object(Bucket=bucket, Key="config/recipients.json")["Body"].read())
    assert stored == {"groups": {"theirs": []}}


@pytest.mark.parametrize(
    ("target", "source", "recipients"),
    [
        (CAMERA, "route", ["guard@example.com", "yard-lead@example.com"]),
        (
            "Email_Rxers_Code:[boiler-oncall, qa@example.com]:Email_Rxers_Code:",
            "code",
            ["alice@example.com", "bob@example.org", "qa@example.com"],
        ),
    ],
)
def test_resolve(relay: Relay, tmp_path: Path, target: str, source: str, recipients: list[str]) -> None:
    relay.run("recipients", "set", write(tmp_path, DOCUMENT), *options(relay))
    resolved = relay.run_json("recipients", "resolve", target, *options(relay))
    assert resolved["source"] == source
    assert resolved["recipients"] == recipients


def test_resolve_applies_the_fence_and_names_unknown_groups(relay: Relay, tmp_path: Path) -> None:
    relay.run("recipients", "set", write(tmp_path, DOCUMENT), *options(relay))
    code = f"Email_Rxers_Code:[ghosts, x@elsewhere.example, {CAMERA}]:Email_Rxers_Code:"
    resolved = relay.run_json("recipients", "resolve", code, *options(relay))
    assert resolved["recipients"] == []
    assert resolved["refused"] == ["x@elsewhere.example"]
    assert resolved["invalid"] == ["ghosts (unknown group)"]
    assert relay.run_json("recipients", "resolve", RELAY, *options(relay))["source"] == "none"


def test_the_recipients_extra_pins_the_functions_parser(tmp_path: Path) -> None:
    """`pip install '.[recipients]'` brings exactly the flanker and tld the function runs (the extra
    carries no hashes: those are for the Lambda platform, and the extra is for any platform)."""
    import tomllib

    from packaging.requirements import Requirement

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["project"]
    extra = {
        Requirement(r).name.lower(): str(Requirement(r).specifier)
        for r in project["optional-dependencies"]["recipients"]
    }
    function = {}
    for line in (root / "app" / "requirements.txt").read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            function[requirement.name.lower()] = str(requirement.specifier)
    assert extra == {name: function[name] for name in ("flanker", "tld")}
    assert all(spec.startswith("==") for spec in extra.values())


def test_without_the_functions_packages_the_verbs_say_how_to_install_them(
    relay: Relay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    real = importlib.import_module

    def without_flanker(name: str, package: str | None = None) -> Any:
        if name.startswith("app.routing") or name.startswith("app.mail"):
            raise ModuleNotFoundError("No module named 'flanker'", name="flanker")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", without_flanker)
    code, out, err = relay.run("recipients", "check", write(tmp_path, DOCUMENT), *options(relay))
    assert (code, out) == (1, "")
    assert "needs flanker" in err
    assert "pip install '.[recipients]'" in err
