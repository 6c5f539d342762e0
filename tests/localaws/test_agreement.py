"""The local account and template.yaml agree: what `localaws` creates in moto is what the template
declares, for the sandbox, the demo, the benchmark and the tests alike.

The expectations are read here from the SAM translator's output on its own (literal values and parameter
defaults), not from the blueprint, so a local account that drifted from the template fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.config import ENVIRONMENT_VARIABLES, Settings
from localaws.account import in_process
from localaws.blueprint import Blueprint
from localaws.template import EMULATED, EXAMPLE_PARAMETERS, load, translate
from tests.support import TEMPLATE

pytestmark = pytest.mark.integration


# Where each type the local account emulates lands in the blueprint, by logical id: a type added to
# EMULATED without a place here fails the test below.
WHERE: dict[str, Callable[[Blueprint], list[str]]] = {
    "AWS::S3::Bucket": lambda b: [x.logical_id for x in b.buckets],
    "AWS::SQS::Queue": lambda b: [x.logical_id for x in b.queues],
    "AWS::SNS::Topic": lambda b: [x.logical_id for x in b.topics],
    "AWS::SNS::Subscription": lambda b: [x.logical_id for x in b.subscriptions],
    "AWS::SecretsManager::Secret": lambda b: [x.logical_id for x in b.secrets],
    "AWS::DynamoDB::Table": lambda b: [x.logical_id for x in b.tables],
    "AWS::CloudWatch::Alarm": lambda b: [x.logical_id for x in b.alarms],
    "AWS::CloudWatch::Dashboard": lambda b: [x.logical_id for x in b.dashboards],
    "AWS::Logs::LogGroup": lambda b: [x.logical_id for x in b.log_groups],
    "AWS::SES::ReceiptRuleSet": lambda b: [x.logical_id for x in b.rule_sets],
    "AWS::SES::ReceiptRule": lambda b: [b.receipt_rule.logical_id] if b.receipt_rule else [],
    "AWS::Lambda::EventSourceMapping": lambda b: [x.logical_id for x in b.queue_triggers],
    "AWS::Lambda::Url": lambda b: [x.logical_id for x in b.endpoints],
    "AWS::Events::Rule": lambda b: [x.logical_id for x in b.schedules],
    "AWS::Scheduler::Schedule": lambda b: [x.logical_id for x in b.schedules],
}
# Parameters under which every Condition that gates a resource is true, so every resource exists.
EVERY_RESOURCE = {"FallbackEmail": "fallback@example.com", "AlarmEmail": "alarms@example.com"}


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


def test_every_resource_is_created_run_or_listed_as_not_emulated(translated: dict[str, Any]) -> None:
    """Nothing the template declares disappears silently: a resource of an emulated type is in the
    blueprint (what `provision` creates and the sandbox runs) under its logical id, whole; a function is
    run behind its trigger; anything else is named in the sandbox's banner as not emulated."""
    assert WHERE.keys() == EMULATED
    blueprint = load(TEMPLATE, EVERY_RESOURCE)
    placed = {lid for where in WHERE.values() for lid in where(blueprint)}
    listed = [entry.split(" ")[0] for entry in blueprint.not_emulated]
    for lid, resource in translated["Resources"].items():
        kind = resource["Type"]
        if kind in EMULATED:
            assert lid in WHERE[kind](blueprint), f"{lid} ({kind}) is not in the blueprint"
            assert lid not in listed, f"part of {lid} is not emulated: {blueprint.not_emulated}"
        else:
            assert lid not in placed, lid
            assert (lid in blueprint.functions) != (lid in listed), f"{lid} ({kind}): run xor listed"
    assert set(listed) <= set(translated["Resources"])
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
    (mapping,) = _of_type(translated, "AWS::Lambda::EventSourceMapping").values()
    inbound = mapping["EventSourceArn"]["Fn::GetAtt"][0]
    queues = _of_type(translated, "AWS::SQS::Queue")
    # The inbound queue declares both (the visibility covers the function's timeout, the redrive
    # bounds the retries): without them the loop below would compare nothing.
    assert {"VisibilityTimeout", "RedrivePolicy"} <= set(queues[inbound])
    for lid, props in queues.items():
        url = sqs.get_queue_url(QueueName=blueprint.queue(lid).name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        expected = str(_literal(translated, props.get("VisibilityTimeout", 30)))
        assert attributes["VisibilityTimeout"] == expected, lid
        assert ("RedrivePolicy" in attributes) == ("RedrivePolicy" in props), lid
        if "RedrivePolicy" in props:
            redrive = json.loads(attributes["RedrivePolicy"])
            assert int(redrive["maxReceiveCount"]) == int(props["RedrivePolicy"]["maxReceiveCount"])
            dead_letter = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            assert redrive["deadLetterTargetArn"] == blueprint.queue(dead_letter).arn


def test_the_bucket_notification_feeds_the_event_source_queue(
    translated: dict[str, Any], provisioned: tuple[Blueprint, Any]
) -> None:
    blueprint, clients = provisioned
    (mapping,) = _of_type(translated, "AWS::Lambda::EventSourceMapping").values()
    queue_id = mapping["EventSourceArn"]["Fn::GetAtt"][0]
    (rule,) = _of_type(translated, "AWS::SES::ReceiptRule").values()
    (store,) = [a["S3Action"] for a in rule["Rule"]["Actions"] if "S3Action" in a]
    incoming = store["BucketName"]["Ref"]
    notified = {
        lid: props["NotificationConfiguration"]
        for lid, props in _of_type(translated, "AWS::S3::Bucket").items()
        if "NotificationConfiguration" in props
    }
    # Exactly one notification, on the bucket the receipt rule stores mail in, to the function's queue.
    assert list(notified) == [incoming]
    assert list(notified[incoming]) == ["QueueConfigurations"]
    (config,) = notified[incoming]["QueueConfigurations"]
    assert config["Queue"]["Fn::GetAtt"][0] == queue_id
    for bucket in blueprint.buckets:
        actual = clients("s3").get_bucket_notification_configuration(Bucket=bucket.name)
        made = actual.get("QueueConfigurations", [])
        if bucket.logical_id != incoming:
            assert made == [], bucket.logical_id
            continue
        (only,) = made
        assert only["QueueArn"] == blueprint.inbound_queue.arn
        assert only["Events"] == [config["Event"]]
        # Only new mail under the rule's prefix wakes the function (S3 names the rule in either case).
        declared = [(r["Name"].lower(), r["Value"]) for r in config["Filter"]["S3Key"]["Rules"]]
        filtered = [(r["Name"].lower(), r["Value"]) for r in only["Filter"]["Key"]["FilterRules"]]
        assert declared == filtered == [("prefix", store["ObjectKeyPrefix"])]
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
