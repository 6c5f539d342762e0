"""events/ fixtures stay usable with `sam local invoke` and consistent with the template."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from app.config import ENVIRONMENT_VARIABLES, Settings
from tests.support import EVENTS, ROOT
from tests.support.cloudformation import Evaluator, load_template, relay_function

pytestmark = pytest.mark.unit

SQS_EVENTS = sorted(EVENTS.glob("sqs-*.json"))
MISSING_ON_PURPOSE = "incoming/does-not-exist.eml"


def _env() -> dict[str, str]:
    (variables,) = json.loads((EVENTS / "env.json").read_text()).values()
    return dict(variables)


def _bodies(path: Path) -> list[tuple[str, dict[str, Any]]]:
    records = json.loads(path.read_text())["Records"]
    return [(r["messageId"], json.loads(r["body"])) for r in records]


def test_env_json_names_the_function_and_satisfies_its_config() -> None:
    source = load_template()
    function, _ = relay_function(source)
    assert list(json.loads((EVENTS / "env.json").read_text())) == [function]
    env = _env()
    assert sorted(env) == sorted(ENVIRONMENT_VARIABLES)
    Settings.from_environ(env)  # raises ConfigError naming the bad variable


def test_env_json_buckets_are_what_the_template_names_for_the_example_stack() -> None:
    source = load_template()
    evaluate = Evaluator(source)
    _, function = relay_function(source)
    variables = evaluate(function["Properties"]["Environment"]["Variables"])
    env = _env()
    for name in ("INCOMING_BUCKET", "ATTACHMENTS_BUCKET", "SENDER_EMAIL", "RECIPIENT_EMAIL"):
        assert env[name] == variables[name], name


@pytest.mark.parametrize("path", SQS_EVENTS, ids=lambda p: p.name)
def test_sqs_events_are_well_formed_s3_notifications_for_the_incoming_bucket(path: Path) -> None:
    records = json.loads(path.read_text())["Records"]
    assert records
    assert len({r["messageId"] for r in records}) == len(records)
    incoming = _env()["INCOMING_BUCKET"]
    for record in records:
        assert record["eventSource"] == "aws:sqs"
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()  # noqa: S324
        body = json.loads(record["body"])
        if body.get("Event") == "s3:TestEvent":
            assert body["Bucket"] == incoming
            continue
        (s3,) = (r["s3"] for r in body["Records"])
        assert s3["bucket"]["name"] == incoming
        key = s3["object"]["key"]
        assert key.startswith("incoming/")
        if key != MISSING_ON_PURPOSE:
            assert (EVENTS / "mails" / key.removeprefix("incoming/")).is_file(), key


def test_the_mixed_batch_covers_every_kind_of_record() -> None:
    kinds = set()
    for _, body in _bodies(EVENTS / "sqs-mixed-batch.json"):
        kinds.add(body.get("Event") or body["Records"][0]["s3"]["object"]["key"])
    assert {"s3:TestEvent", MISSING_ON_PURPOSE, "incoming/openssl-demo.eml"} <= kinds
    assert len(kinds) >= 5


def test_samconfig_deploys_an_image() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["version"] == 0.1
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["resolve_image_repos"] is True
    assert deploy["resolve_s3"] is True
    assert "CAPABILITY_IAM" in deploy["capabilities"]
    assert config["default"]["validate"]["parameters"]["lint"] is True
    assert (ROOT / config["default"]["local_invoke"]["parameters"]["env_vars"]).is_file()
