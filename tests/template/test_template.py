"""The safeguards of template.yaml, checked on SAM's translation (what CloudFormation deploys)."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import ENVIRONMENT_VARIABLES
from tests.template.conftest import (
    ROOT,
    Evaluator,
    as_list,
    image_functions,
    ref_name,
    resources_of,
    statements,
    the_function,
)

pytestmark = pytest.mark.unit

SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:relay-link-signer-AbCdEf"


def _role_statements(cfn: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for role in resources_of(cfn, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            found.extend(statements(policy["PolicyDocument"]))
    for policy in resources_of(cfn, "AWS::IAM::Policy").values():
        found.extend(statements(policy["Properties"]["PolicyDocument"]))
    return found


def _function_statements(source: dict[str, Any], **parameters: str) -> list[dict[str, Any]]:
    """The function role's statements as deployed with these parameter values."""
    evaluate = Evaluator(source, **parameters)
    ((name, _),) = image_functions(source).items()
    role = ref_name(source["Resources"][name]["Properties"]["Role"])
    policies = evaluate(source["Resources"][role]["Properties"]["Policies"])
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


def test_function_environment_is_exactly_what_the_config_reads(cfn: dict[str, Any]) -> None:
    _, function = the_function(cfn)
    assert sorted(function["Properties"]["Environment"]["Variables"]) == sorted(ENVIRONMENT_VARIABLES)


def test_function_is_a_traced_image_with_json_logs(source: dict[str, Any], cfn: dict[str, Any]) -> None:
    ((_, declared),) = image_functions(source).items()
    assert (ROOT / declared["Metadata"]["DockerContext"] / declared["Metadata"]["Dockerfile"]).is_file()
    assert declared["Metadata"]["DockerTag"]
    _, function = the_function(cfn)
    assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}
    assert function["Properties"]["LoggingConfig"]["LogFormat"] == "JSON"


def test_every_iam_statement_names_its_resources(cfn: dict[str, Any]) -> None:
    found = _role_statements(cfn)
    assert found
    for statement in found:
        assert "NotResource" not in statement, statement
        assert "NotAction" not in statement, statement
        if "*" in as_list(statement["Resource"]):
            assert all(a.startswith("xray:") for a in as_list(statement["Action"])), statement
    for role in resources_of(cfn, "AWS::IAM::Role").values():
        # AWS managed policies (basic execution, SQS poller) grant on "*": the role spells its rights out.
        assert not role["Properties"].get("ManagedPolicyArns"), role["Properties"]["ManagedPolicyArns"]


def test_function_object_access_stays_in_the_storage_layout(source: dict[str, Any]) -> None:
    evaluate = Evaluator(source)
    function_env = evaluate(next(iter(image_functions(source).values()))["Properties"]["Environment"])
    incoming, attachments = (
        function_env["Variables"]["INCOMING_BUCKET"],
        function_env["Variables"]["ATTACHMENTS_BUCKET"],
    )
    allowed = {
        f"arn:aws:s3:::{incoming}/incoming/*": {"s3:GetObject"},
        f"arn:aws:s3:::{incoming}/markers/*": {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
        f"arn:aws:s3:::{incoming}": {"s3:ListBucket"},
        f"arn:aws:s3:::{attachments}/attachments/*": {
            "s3:PutObject",
            "s3:PutObjectTagging",
            "s3:GetObject",
            "s3:AbortMultipartUpload",
        },
    }
    granted: dict[str, set[str]] = {}
    for statement in _function_statements(source):
        actions = {a for a in as_list(statement["Action"]) if a.startswith("s3:")}
        for resource in as_list(statement["Resource"]) if actions else []:
            granted.setdefault(resource, set()).update(actions)
    assert granted == allowed


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({}, {"identity/relay@example.com", "identity/example.com"}),
        (
            {"ConfigurationSetName": "relay-sends", "SenderEmail": "alerts@plant.example.org"},
            {
                "identity/alerts@plant.example.org",
                "identity/plant.example.org",
                "configuration-set/relay-sends",
            },
        ),
    ],
)
def test_ses_send_is_limited_to_the_sender_identity_and_configuration_set(
    source: dict[str, Any], parameters: dict[str, str], expected: set[str]
) -> None:
    sends = [
        s for s in _function_statements(source, **parameters) if "ses:SendRawEmail" in as_list(s["Action"])
    ]
    assert len(sends) == 1
    prefix = "arn:aws:ses:eu-west-1:123456789012:"
    assert {r.removeprefix(prefix) for r in as_list(sends[0]["Resource"])} == expected
    assert set(as_list(sends[0]["Action"])) <= {"ses:SendEmail", "ses:SendRawEmail"}


@pytest.mark.parametrize("secret", ["", SECRET])
def test_link_signing_secret_is_readable_only_when_configured(source: dict[str, Any], secret: str) -> None:
    reads = [
        s
        for s in _function_statements(source, LinkSigningSecretArn=secret)
        if any(a.startswith("secretsmanager:") for a in as_list(s["Action"]))
    ]
    assert len(reads) == (1 if secret else 0)
    if secret:
        assert as_list(reads[0]["Action"]) == ["secretsmanager:GetSecretValue"]
        assert as_list(reads[0]["Resource"]) == [secret]


def test_alarm_thresholds_are_parameters_with_the_agreed_defaults(cfn: dict[str, Any]) -> None:
    expected = {
        "ApproximateNumberOfMessagesVisible": 50,
        "ApproximateAgeOfOldestMessage": 180,
        "NumberOfMessagesSent": 180,
        # tests/template/test_operability.py checks these four in detail
        "Errors": 0,
        "Reputation.BounceRate": 0.05,
        "Reputation.ComplaintRate": 0.001,
        "Mails": 0,
    }
    alarms = resources_of(cfn, "AWS::CloudWatch::Alarm").values()
    found = {}
    for alarm in alarms:
        props = alarm["Properties"]
        parameter = cfn["Parameters"][ref_name(props["Threshold"])]
        found[props["MetricName"]] = parameter["Default"]
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["TreatMissingData"] in {"notBreaching", "breaching", "ignore", "missing"}
    assert found == expected
    rate = next(a["Properties"] for a in alarms if a["Properties"]["MetricName"] == "NumberOfMessagesSent")
    assert (rate["Statistic"], rate["Period"]) == ("Sum", 300)


def test_alarms_watch_the_right_queues_and_notify_the_alarms_topic(cfn: dict[str, Any]) -> None:
    mapping = next(iter(resources_of(cfn, "AWS::Lambda::EventSourceMapping").values()))["Properties"]
    inbound = ref_name(mapping["EventSourceArn"])
    dlq = ref_name(cfn["Resources"][inbound]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
    _, function = the_function(cfn)
    fallback = ref_name(function["Properties"]["Environment"]["Variables"]["FALLBACK_TOPIC_ARN"])
    for alarm in resources_of(cfn, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if props["Namespace"] == "AWS/SQS":
            queue = ref_name(props["Dimensions"][0]["Value"])
            assert queue == (dlq if props["MetricName"] == "ApproximateNumberOfMessagesVisible" else inbound)
        topics = {ref_name(t) for t in props["AlarmActions"]}
        assert len(topics) == 1
        assert fallback not in topics
        assert cfn["Resources"][topics.pop()]["Type"] == "AWS::SNS::Topic"


def test_queue_outlives_the_function_and_fails_over_to_a_dlq(cfn: dict[str, Any]) -> None:
    _, function = the_function(cfn)
    mapping = next(iter(resources_of(cfn, "AWS::Lambda::EventSourceMapping").values()))["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] >= 1
    queue = cfn["Resources"][ref_name(mapping["EventSourceArn"])]["Properties"]
    timeout = function["Properties"]["Timeout"]
    window = cfn["Parameters"][ref_name(mapping["MaximumBatchingWindowInSeconds"])]
    assert window["Default"] == 0  # a lone alarm mail is not held back
    assert queue["VisibilityTimeout"] >= 6 * timeout + window["MaxValue"]
    assert 1 < queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    dlq = cfn["Resources"][ref_name(queue["RedrivePolicy"]["deadLetterTargetArn"])]["Properties"]
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600 >= queue["MessageRetentionPeriod"]


def test_every_bucket_is_encrypted_private_and_expiring(cfn: dict[str, Any]) -> None:
    buckets = resources_of(cfn, "AWS::S3::Bucket")
    assert len(buckets) == 2
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]
        block = props["PublicAccessBlockConfiguration"]
        assert block == dict.fromkeys(
            ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
        )
        rules = props["LifecycleConfiguration"]["Rules"]
        assert any("Ref" in rule.get("ExpirationInDays", {}) for rule in rules)
        assert any("AbortIncompleteMultipartUpload" in rule for rule in rules)


def test_every_bucket_policy_denies_plain_http(source: dict[str, Any], cfn: dict[str, Any]) -> None:
    policies = {
        ref_name(p["Properties"]["Bucket"]): p for p in resources_of(cfn, "AWS::S3::BucketPolicy").values()
    }
    assert set(policies) == set(resources_of(cfn, "AWS::S3::Bucket"))
    evaluate = Evaluator(source)
    for bucket, policy in policies.items():
        arn = f"arn:aws:s3:::{evaluate.physical(bucket)}"
        denies = [
            s
            for s in evaluate(policy["Properties"]["PolicyDocument"])["Statement"]
            if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert len(denies) == 1, bucket
        assert denies[0]["Principal"] == "*"
        assert denies[0]["Action"] == "s3:*"
        assert set(denies[0]["Resource"]) == {arn, f"{arn}/*"}


def test_tagging_an_attachment_revoked_denies_every_read(source: dict[str, Any], cfn: dict[str, Any]) -> None:
    _, function = the_function(cfn)
    bucket = ref_name(function["Properties"]["Environment"]["Variables"]["ATTACHMENTS_BUCKET"])
    policy = next(
        p
        for p in resources_of(source, "AWS::S3::BucketPolicy").values()
        if ref_name(p["Properties"]["Bucket"]) == bucket
    )
    evaluate = Evaluator(source)
    revokes = [
        s
        for s in evaluate(policy["Properties"]["PolicyDocument"])["Statement"]
        if s["Effect"] == "Deny" and "s3:GetObject" in as_list(s["Action"])
    ]
    assert len(revokes) == 1
    assert revokes[0]["Principal"] == "*"  # links signed by the role or the signing user alike
    assert revokes[0]["Condition"] == {"StringEquals": {"s3:ExistingObjectTag/revoked": "true"}}
    assert as_list(revokes[0]["Resource"]) == [f"arn:aws:s3:::{evaluate.physical(bucket)}/*"]


def test_queues_and_topics_are_encrypted(cfn: dict[str, Any]) -> None:
    for queue in resources_of(cfn, "AWS::SQS::Queue").values():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props
    topics = resources_of(cfn, "AWS::SNS::Topic")
    assert len(topics) == 2
    for topic in topics.values():
        assert topic["Properties"]["KmsMasterKeyId"]


def test_receipt_rule_scans_requires_tls_and_stores_under_incoming(source: dict[str, Any]) -> None:
    (rule,) = resources_of(source, "AWS::SES::ReceiptRule").values()
    props = rule["Properties"]["Rule"]
    assert props["ScanEnabled"] is True
    assert props["TlsPolicy"] == "Require"
    assert props["Recipients"] == [{"Ref": "RecipientEmail"}]
    (action,) = props["Actions"]
    bucket = ref_name(action["S3Action"]["BucketName"])
    assert action["S3Action"]["ObjectKeyPrefix"] == "incoming/"
    # SES test-writes on rule creation: the bucket policy letting it must already exist.
    bucket_policy = next(
        n
        for n, p in resources_of(source, "AWS::S3::BucketPolicy").items()
        if ref_name(p["Properties"]["Bucket"]) == bucket
    )
    assert bucket_policy in as_list(rule["DependsOn"])
    evaluate = Evaluator(source)
    rule_arn = (
        "arn:aws:ses:eu-west-1:123456789012:receipt-rule-set/"
        f"{evaluate(rule['Properties']['RuleSetName'])}:receipt-rule/{evaluate(props['Name'])}"
    )
    document = evaluate(source["Resources"][bucket_policy]["Properties"]["PolicyDocument"])
    (ses,) = [s for s in document["Statement"] if s.get("Principal") == {"Service": "ses.amazonaws.com"}]
    assert ses["Action"] == "s3:PutObject"
    assert ses["Resource"] == f"arn:aws:s3:::{evaluate.physical(bucket)}/incoming/*"
    assert ses["Condition"]["ArnLike"]["aws:SourceArn"] == rule_arn
    assert ses["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_incoming_notifications_reach_the_queue_without_a_dependency_cycle(source: dict[str, Any]) -> None:
    (rule,) = resources_of(source, "AWS::SES::ReceiptRule").values()
    bucket_name = ref_name(rule["Properties"]["Rule"]["Actions"][0]["S3Action"]["BucketName"])
    bucket = source["Resources"][bucket_name]
    (notification,) = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Event"] == "s3:ObjectCreated:*"
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "incoming/"}]
    queue = ref_name(notification["Queue"])
    ((policy_name, policy),) = (
        (n, p)
        for n, p in resources_of(source, "AWS::SQS::QueuePolicy").items()
        if queue in {ref_name(q) for q in p["Properties"]["Queues"]}
    )
    assert policy_name in as_list(bucket["DependsOn"])  # S3 checks the policy when notifications are set
    evaluate = Evaluator(source)
    (allow,) = evaluate(policy["Properties"]["PolicyDocument"])["Statement"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    # The policy names the bucket by the same deterministic name, not by a reference to it.
    assert (
        allow["Condition"]["ArnEquals"]["aws:SourceArn"] == f"arn:aws:s3:::{evaluate.physical(bucket_name)}"
    )
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


@pytest.mark.parametrize("prefix", ["iot-mail-relay", "a", "plant-7-relay-abcdef"])
def test_bucket_names_are_valid_for_every_allowed_prefix(source: dict[str, Any], prefix: str) -> None:
    import re

    pattern = source["Parameters"]["BucketNamePrefix"]["AllowedPattern"]
    assert re.fullmatch(pattern, prefix)
    evaluate = Evaluator(source, BucketNamePrefix=prefix, **{"AWS::Region": "ap-southeast-2"})
    for bucket in resources_of(source, "AWS::S3::Bucket"):
        name = evaluate.physical(bucket)
        assert 3 <= len(name) <= 63, name
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*[a-z0-9]", name), name
