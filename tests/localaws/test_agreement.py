"""The local account and template.yaml agree: what `localaws` creates in moto is what the template
declares, for the sandbox, the demo, the benchmark and the tests alike.

The expectations are read here from the SAM translator's output on its own (literal values and parameter
defaults), not from the blueprint, so a local account that drifted from the template fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from app.config import ENVIRONMENT_VARIABLES, Settings
from localaws.account import in_process
from localaws.blueprint import Blueprint
from localaws.template import EMULATED, EXAMPLE_PARAMETERS, load, translate
from tests.support import TEMPLATE

pytestmark = pytest.mark.integration


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r.get("Properties", {}) for lid, r in template["Resources"].items() if r["Type"] == kind}


def _literal(template: dict[str, Any], value: Any) -> Any:
    """A literal, or the default of the parameter it references."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return template["Parameters"][value["Ref"]]["Default"]
    return value


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return translate(TEMPLATE)


@pytest.fixture
def provisioned() -> Iterator[tuple[Blueprint, Any]]:
    blueprint = load(TEMPLATE, {}, function_url=lambda _: "http://127.0.0.1:8480/")
    with in_process(blueprint) as account:
        yield blueprint, account.client


def test_every_bucket_queue_and_topic_of_the_template_exists(
    translated: dict[str, Any], provisioned: tuple[Blueprint, Any]
) -> None:
    _, clients = provisioned
    buckets = clients("s3").list_buckets()["Buckets"]
    queues = clients("sqs").list_queues().get("QueueUrls", [])
    topics = clients("sns").list_topics()["Topics"]
    assert len(buckets) == len(_of_type(translated, "AWS::S3::Bucket"))
    assert len(queues) == len(_of_type(translated, "AWS::SQS::Queue"))
    assert len(topics) == len(_of_type(translated, "AWS::SNS::Topic"))
    secrets = clients("secretsmanager").list_secrets()["SecretList"]
    assert len(secrets) == len(_of_type(translated, "AWS::SecretsManager::Secret"))
    tables = clients("dynamodb").list_tables()["TableNames"]
    assert len(tables) == len(_of_type(translated, "AWS::DynamoDB::Table"))
    alarms = clients("cloudwatch").describe_alarms()["MetricAlarms"]
    assert len(alarms) == len(_of_type(translated, "AWS::CloudWatch::Alarm"))
    groups = clients("logs").describe_log_groups()["logGroups"]
    assert len(groups) == len(_of_type(translated, "AWS::Logs::LogGroup"))


def test_every_resource_is_created_run_or_listed_as_not_emulated(
    translated: dict[str, Any], provisioned: tuple[Blueprint, Any]
) -> None:
    """Nothing the template declares disappears silently: a new resource is created in moto, run by the
    sandbox (a function behind a trigger), or named in the sandbox's banner as not emulated."""
    blueprint, _ = provisioned
    run = set(blueprint.functions)
    listed = {entry.split(" ")[0] for entry in blueprint.not_emulated}
    for lid, resource in translated["Resources"].items():
        if "Condition" in resource:
            continue  # present or not by the parameters' defaults; the resolver's tests cover conditions
        assert resource["Type"] in EMULATED or lid in run or lid in listed, lid
    assert blueprint.functions.keys() == {"RelayFunction", "DownloadFunction", "AlarmClockFunction"}


def test_the_buckets_lifecycle_encryption_and_public_access_are_the_templates(
    translated: dict[str, Any], provisioned: tuple[Blueprint, Any]
) -> None:
    blueprint, clients = provisioned
    s3 = clients("s3")
    for lid, props in _of_type(translated, "AWS::S3::Bucket").items():
        name = blueprint.bucket(lid).name
        rules = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        declared = props["LifecycleConfiguration"]["Rules"]
        assert [r["ID"] for r in rules] == [r["Id"] for r in declared]
        for made, rule in zip(rules, declared, strict=True):
            assert made["Filter"].get("Prefix", "") == rule.get("Prefix", "")
            if "ExpirationInDays" in rule:
                assert made["Expiration"]["Days"] == int(_literal(translated, rule["ExpirationInDays"]))
        encryption = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
        assert encryption[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        assert all(block.values())


def test_the_receipt_rule_stores_mail_where_the_function_reads_it(provisioned: tuple[Blueprint, Any]) -> None:
    blueprint, clients = provisioned
    rule = blueprint.receipt_rule
    assert rule is not None
    (made,) = clients("ses").describe_receipt_rule_set(RuleSetName=rule.rule_set)["Rules"]
    assert made["Recipients"] == [EXAMPLE_PARAMETERS["RecipientEmail"]]
    assert made["ScanEnabled"] is True
    assert made["Actions"][0]["S3Action"]["BucketName"] == blueprint.function.environment["INCOMING_BUCKET"]


def test_queue_settings_are_the_templates(
    translated: dict[str, Any], provisioned: tuple[Blueprint, Any]
) -> None:
    blueprint, clients = provisioned
    sqs = clients("sqs")
    for lid, props in _of_type(translated, "AWS::SQS::Queue").items():
        (queue,) = [q for q in blueprint.queues if q.logical_id == lid]
        url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        if "VisibilityTimeout" in props:
            assert attributes["VisibilityTimeout"] == str(_literal(translated, props["VisibilityTimeout"]))
        if "RedrivePolicy" in props:
            redrive = json.loads(attributes["RedrivePolicy"])
            assert int(redrive["maxReceiveCount"]) == int(props["RedrivePolicy"]["maxReceiveCount"])
            dead_letter = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            assert redrive["deadLetterTargetArn"].endswith(f"-{dead_letter}")


def test_the_bucket_notification_feeds_the_event_source_queue(
    translated: dict[str, Any], provisioned: tuple[Blueprint, Any]
) -> None:
    blueprint, clients = provisioned
    (mapping,) = _of_type(translated, "AWS::Lambda::EventSourceMapping").values()
    queue_id = mapping["EventSourceArn"]["Fn::GetAtt"][0]
    for lid, props in _of_type(translated, "AWS::S3::Bucket").items():
        declared = props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
        (bucket,) = [b for b in blueprint.buckets if b.logical_id == lid]
        actual = clients("s3").get_bucket_notification_configuration(Bucket=bucket.name)
        assert len(actual.get("QueueConfigurations", [])) == len(declared)
        for config, made in zip(declared, actual.get("QueueConfigurations", []), strict=True):
            assert config["Queue"]["Fn::GetAtt"][0] == queue_id
            assert made["QueueArn"] == blueprint.inbound_queue.arn
            assert made["Events"] == [config["Event"]]
    assert blueprint.event_source.batch_size == mapping["BatchSize"]
    window = _literal(translated, mapping.get("MaximumBatchingWindowInSeconds", 0))
    assert blueprint.event_source.window_seconds == window


def test_the_function_environment_is_the_templates_and_the_function_accepts_it(
    translated: dict[str, Any], provisioned: tuple[Blueprint, Any]
) -> None:
    blueprint, _ = provisioned
    (mapping,) = _of_type(translated, "AWS::Lambda::EventSourceMapping").values()
    function = _of_type(translated, "AWS::Lambda::Function")[mapping["FunctionName"]["Ref"]]
    declared = function["Environment"]["Variables"]
    assert set(blueprint.function.environment) == set(declared)
    assert set(blueprint.function.environment) <= set(ENVIRONMENT_VARIABLES)
    assert blueprint.function.timeout_seconds == _literal(translated, function["Timeout"])
    settings = Settings.from_environ(blueprint.function.environment)
    assert settings.recipient_email == EXAMPLE_PARAMETERS["RecipientEmail"]
    assert settings.max_recipients == int(translated["Parameters"]["MaxRecipients"]["Default"])
    assert blueprint.recipients == (settings.recipient_email,)


def test_the_alarm_thresholds_come_from_the_parameters(translated: dict[str, Any]) -> None:
    blueprint = load(TEMPLATE, {"DlqAlarmThreshold": "3", "MaxRecipients": "9"})
    alarms = _of_type(translated, "AWS::CloudWatch::Alarm")
    assert {a.logical_id for a in blueprint.alarms} == set(alarms)
    by_parameter = {
        alarms[a.logical_id]["Threshold"].get("Ref"): a.threshold
        for a in blueprint.alarms
        if isinstance(alarms[a.logical_id]["Threshold"], dict)
    }
    assert by_parameter["DlqAlarmThreshold"] == 3.0
    assert blueprint.function.environment["MAX_RECIPIENTS"] == "9"


def test_a_visibility_override_touches_only_the_inbound_queue() -> None:
    blueprint = load(TEMPLATE)
    with in_process(blueprint, visibility_timeout=2) as account:
        sqs = account.client("sqs")
        timeouts = {
            q.logical_id: sqs.get_queue_attributes(
                QueueUrl=account.queue_url(q.logical_id), AttributeNames=["VisibilityTimeout"]
            )["Attributes"]["VisibilityTimeout"]
            for q in blueprint.queues
        }
    assert timeouts[blueprint.inbound_queue.logical_id] == "2"
    others = [q for q in blueprint.queues if q.logical_id != blueprint.inbound_queue.logical_id]
    assert all(timeouts[q.logical_id] == q.attributes.get("VisibilityTimeout", "30") for q in others)


def test_the_download_function_is_served_with_the_generated_link_keys(
    translated: dict[str, Any], provisioned: tuple[Blueprint, Any]
) -> None:
    from app.config import DownloadSettings
    from app.links import parse_keyring

    blueprint, clients = provisioned
    assert blueprint.download is not None
    (url,) = _of_type(translated, "AWS::Lambda::Url").values()
    target = url["TargetFunctionArn"]["Fn::GetAtt"][0]
    declared = _of_type(translated, "AWS::Lambda::Function")[target]
    assert blueprint.download.logical_id == target
    assert (
        blueprint.download.handler == declared["ImageConfig"]["Command"][0] == "app.download.lambda_handler"
    )
    assert set(blueprint.download.environment) == set(declared["Environment"]["Variables"])
    settings = DownloadSettings.from_environ(blueprint.download.environment)
    relay = Settings.from_environ(blueprint.function.environment)
    assert relay.download_base_url == blueprint.download_url == "http://127.0.0.1:8480/"
    assert relay.link_key_secret_arn == settings.link_key_secret_arn
    stored = clients("secretsmanager").get_secret_value(SecretId=settings.link_key_secret_arn)["SecretString"]
    keyring = parse_keyring(stored)
    assert keyring.current_kid == "k0"
    assert len(keyring.current) == 64
    served = {target, "DownloadFunctionUrl", "LinkKeySecret"}
    assert not [entry for entry in blueprint.not_emulated if entry.split(" ")[0] in served]
