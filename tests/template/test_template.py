"""The safeguards of template.yaml, checked on SAM's translation (what CloudFormation deploys)."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import ENVIRONMENT_VARIABLES, FOLDING_ENVIRONMENT_VARIABLES
from tests.support import ROOT
from tests.support.cloudformation import (
    EXAMPLE_PARAMETERS,
    Evaluator,
    as_list,
    download_function,
    image_functions,
    ref_name,
    relay_function,
    resources_of,
    statements,
    the_function,
)

pytestmark = pytest.mark.unit


def _role_statements(cfn: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for role in resources_of(cfn, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            found.extend(statements(policy["PolicyDocument"]))
    for policy in resources_of(cfn, "AWS::IAM::Policy").values():
        found.extend(statements(policy["Properties"]["PolicyDocument"]))
    return found


def _function_statements(
    source: dict[str, Any], *, download: bool = False, **parameters: str
) -> list[dict[str, Any]]:
    """The relay's (or the download function's) role statements as deployed with these parameters."""
    evaluate = Evaluator(source, **parameters)
    name, _ = download_function(source) if download else relay_function(source)
    role = ref_name(source["Resources"][name]["Properties"]["Role"])
    policies = evaluate(source["Resources"][role]["Properties"]["Policies"])
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


def test_function_environment_is_exactly_what_the_config_reads(cfn: dict[str, Any]) -> None:
    _, function = the_function(cfn)
    assert sorted(function["Properties"]["Environment"]["Variables"]) == sorted(ENVIRONMENT_VARIABLES)


def test_function_is_a_traced_image_with_json_logs(source: dict[str, Any], cfn: dict[str, Any]) -> None:
    relay, download = relay_function(source)[1], download_function(source)[1]
    for declared in (relay, download):
        assert (ROOT / declared["Metadata"]["DockerContext"] / declared["Metadata"]["Dockerfile"]).is_file()
        assert declared["Metadata"]["DockerTag"]
    # One image, built once: `sam build` puts functions in one build only when their whole Metadata is
    # equal (checkov's comments included), with the same package type and architecture (aws-sam-cli,
    # samcli/lib/build/build_graph.py, FunctionBuildDefinition.__eq__). The command picks the handler.
    assert download["Metadata"] == relay["Metadata"]
    for key in ("PackageType", "Architectures"):
        assert download["Properties"][key] == relay["Properties"][key]
    assert "ImageUri" not in download["Properties"]
    functions = image_functions(source)
    assert set(functions) == {"RelayFunction", "DownloadFunction", "AlarmClockFunction"}
    assert all(f["Metadata"] == relay["Metadata"] for f in functions.values())
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
    function_env = evaluate(relay_function(source)[1]["Properties"]["Environment"])
    incoming, attachments = (
        function_env["Variables"]["INCOMING_BUCKET"],
        function_env["Variables"]["ATTACHMENTS_BUCKET"],
    )
    allowed = {
        f"arn:aws:s3:::{incoming}/incoming/*": {"s3:GetObject"},
        f"arn:aws:s3:::{incoming}/markers/*": {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
        f"arn:aws:s3:::{incoming}/config/recipients.json": {"s3:GetObject"},
        f"arn:aws:s3:::{incoming}": {"s3:ListBucket"},
        f"arn:aws:s3:::{attachments}/attachments/*": {
            "s3:PutObject",
            "s3:PutObjectTagging",
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
        ({}, {"identity/relay@example.com", "identity/example.com", "configuration-set/*"}),
        (
            {"ConfigurationSetName": "relay-sends", "SenderEmail": "alerts@plant.example.org"},
            {"identity/alerts@plant.example.org", "identity/plant.example.org", "configuration-set/*"},
        ),
        (  # a sender on a subdomain, verified through its parent domain
            {"SenderEmail": "alerts@plant.example.org", "SenderIdentity": "example.org"},
            {
                "identity/alerts@plant.example.org",
                "identity/plant.example.org",
                "identity/example.org",
                "configuration-set/*",
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


def _granted(statements: list[dict[str, Any]], prefix: str) -> dict[str, set[str]]:
    granted: dict[str, set[str]] = {}
    for statement in statements:
        actions = {a for a in as_list(statement["Action"]) if a.startswith(prefix)}
        for resource in as_list(statement["Resource"]) if actions else []:
            granted.setdefault(resource, set()).update(actions)
    return granted


def test_both_functions_read_the_link_keys_and_nothing_else_of_secrets_manager(
    source: dict[str, Any],
) -> None:
    (secret,) = resources_of(source, "AWS::SecretsManager::Secret")
    for download in (False, True):
        granted = _granted(_function_statements(source, download=download), "secretsmanager:")
        assert granted == {f"<{secret}>": {"secretsmanager:GetSecretValue"}}
        assert not _granted(_function_statements(source, download=download), "kms:")


def test_the_secret_is_generated_in_the_shape_the_keyring_parser_reads(source: dict[str, Any]) -> None:
    import json

    from app.links import parse_keyring

    ((name, secret),) = resources_of(source, "AWS::SecretsManager::Secret").items()
    generate = secret["Properties"]["GenerateSecretString"]
    assert generate["PasswordLength"] >= 32
    assert generate["ExcludePunctuation"] is True
    document = json.loads(generate["SecretStringTemplate"])
    document[generate["GenerateStringKey"]] = "x" * generate["PasswordLength"]
    assert parse_keyring(json.dumps(document)).current_kid == "k0"
    assert "KmsKeyId" not in secret["Properties"]  # the AWS managed aws/secretsmanager key
    for _, function in (relay_function(source), download_function(source)):
        assert function["Properties"]["Environment"]["Variables"]["LINK_KEY_SECRET_ARN"] == {"Ref": name}


def test_download_function_reads_attachments_and_their_tags_never_manifests(source: dict[str, Any]) -> None:
    import fnmatch

    evaluate = Evaluator(source)
    _, function = download_function(source)
    bucket = evaluate(function["Properties"]["Environment"]["Variables"]["ATTACHMENTS_BUCKET"])
    granted = _granted(_function_statements(source, download=True), "s3:")
    assert granted == {f"arn:aws:s3:::{bucket}/attachments/*/*/*": {"s3:GetObject", "s3:GetObjectTagging"}}
    ((pattern, _),) = granted.items()
    digest = "0" * 32
    assert fnmatch.fnmatchcase(f"arn:aws:s3:::{bucket}/attachments/{digest}/2/a.jpg", pattern)
    assert not fnmatch.fnmatchcase(f"arn:aws:s3:::{bucket}/attachments/{digest}/manifest.json", pattern)
    statements = _function_statements(source, download=True, MuteLinks="off")
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetObject",
        "s3:GetObjectTagging",
        "secretsmanager:GetSecretValue",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


@pytest.mark.parametrize(
    ("parameters", "granted"),
    [
        ({}, {"<IncidentsTable.Arn>": {"dynamodb:GetItem", "dynamodb:PutItem"}}),
        ({"MuteLinks": "off"}, {}),
        ({"RepeatFolding": "off"}, {}),
    ],
    ids=["mute-links-on", "mute-links-off", "folding-off"],
)
def test_the_mute_page_may_read_and_write_the_alarm_table_only_and_only_when_it_mutes(
    source: dict[str, Any], parameters: dict[str, str], granted: dict[str, set[str]]
) -> None:
    """Behind the download URL, the mute page (app/muting.py) reads an alarm and writes it; no index,
    no scan or query, and no SES: a mute sends no mail."""
    statements = _function_statements(source, download=True, **parameters)
    assert _granted(statements, "dynamodb:") == granted
    assert not _granted(statements, "ses:")
    assert not _granted(statements, "sqs:")
    everything_else = {
        a
        for s in statements
        for a in as_list(s["Action"])
        if not a.startswith(("dynamodb:", "logs:", "xray:"))
    }
    assert everything_else == {"s3:GetObject", "s3:GetObjectTagging", "secretsmanager:GetSecretValue"}


class _RecordingTable:
    """A DynamoDB client holding items in memory and recording the partition keys each call names."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.keys: list[str] = []

    def get_item(self, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.keys.append(Key["pk"]["S"])
        item = self.items.get((Key["pk"]["S"], Key["sk"]["S"]))
        return {"Item": item} if item else {}

    def put_item(self, TableName: str, Item: dict[str, Any], **_: Any) -> None:
        self.keys.append(Item["pk"]["S"])
        self.items[Item["pk"]["S"], Item["sk"]["S"]] = Item

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> None:
        for write in TransactItems:
            self.put_item(**write["Put"])


def test_the_mute_page_may_touch_only_the_alarms_items_never_the_mails_decisions(
    source: dict[str, Any],
) -> None:
    """dynamodb:LeadingKeys (the partition keys a request names) must match "A#*", the alarms' items
    (app/aws/incidents.py), and the Null check keeps a request without one from slipping through
    ForAllValues. The patterns cover every key a mute through the function's own code names."""
    import fnmatch
    from datetime import UTC, datetime, timedelta

    from app import muting
    from app.alarms.fingerprint import identify
    from app.alarms.timeline import Arrival, Policy, on_mail
    from app.aws.incidents import Incidents

    (statement,) = [
        s for s in _function_statements(source, download=True) if "dynamodb:PutItem" in s["Action"]
    ]
    assert statement["Condition"]["Null"] == {"dynamodb:LeadingKeys": "false"}
    assert set(statement["Condition"]) == {"ForAllValues:StringLike", "Null"}
    patterns = as_list(statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
    assert patterns == ["A#*"]

    client = _RecordingTable()
    table = Incidents("alarms", client)
    now = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    identity = identify("plc-7@plant.example.com", ("ops@example.com",), "ALARM: Pump 3")
    first = on_mail(None, identity, Arrival("incoming/1", "ALARM: Pump 3"), now, Policy())
    table.commit(first, None, now)  # the relay's first mail: the alarm and the mail's decision
    assert {k[:2] for k in client.keys} == {"A#", "K#"}
    client.keys.clear()
    muting.mute(table, identity.fingerprint, now + timedelta(hours=1), "a recipient", Policy(), lambda: now)
    assert client.keys
    for key in client.keys:
        assert any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns), key
    assert not any(fnmatch.fnmatchcase("K#incoming/1", pattern) for pattern in patterns)


def test_the_mute_page_reads_the_relays_own_alarm_settings(source: dict[str, Any]) -> None:
    """One switch for both ends (no links written, none taken), and the timeline's numbers the relay
    decides by, so that a mute settles what fell due before it as the relay would."""
    _, download = download_function(source)
    _, relay = relay_function(source)
    mine = download["Properties"]["Environment"]["Variables"]
    theirs = relay["Properties"]["Environment"]["Variables"]
    shared = set(FOLDING_ENVIRONMENT_VARIABLES)
    assert {"MUTE_LINKS", "REPEAT_FOLDING", "INCIDENTS_TABLE", "FLAP_TRANSITIONS"} <= shared
    assert shared <= set(mine)
    assert {name: mine[name] for name in shared} == {name: theirs[name] for name in shared}
    assert mine["MUTE_LINKS"] == {"Ref": "MuteLinks"}
    parameter = source["Parameters"]["MuteLinks"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("on", ["on", "off"])


def test_download_function_is_public_through_its_url_only(
    source: dict[str, Any], cfn: dict[str, Any]
) -> None:
    from app.config import DOWNLOAD_ENVIRONMENT_VARIABLES

    name, function = download_function(source)
    props = function["Properties"]
    assert props["Tracing"] == "Active"
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert sorted(props["Environment"]["Variables"]) == sorted(DOWNLOAD_ENVIRONMENT_VARIABLES)
    log_group = source["Resources"][ref_name(props["LoggingConfig"]["LogGroup"])]["Properties"]
    assert Evaluator(source)(log_group["LogGroupName"]) == "/aws/lambda/iot-mail-relay-download"
    reserved = props["ReservedConcurrentExecutions"]["Fn::If"]
    assert reserved[1] == {"Ref": "DownloadReservedConcurrency"}
    ((url_name, url),) = resources_of(cfn, "AWS::Lambda::Url").items()
    assert url["Properties"]["AuthType"] == "NONE"
    assert ref_name(url["Properties"]["TargetFunctionArn"]) == name
    skips = {s["id"] for s in source["Resources"][url_name]["Metadata"]["checkov"]["skip"]}
    assert skips == {"CKV_AWS_258"}
    permissions = [
        p["Properties"]
        for p in resources_of(cfn, "AWS::Lambda::Permission").values()
        if ref_name(p["Properties"]["FunctionName"]) == name
    ]
    assert {
        (p["Action"], p.get("FunctionUrlAuthType"), p.get("InvokedViaFunctionUrl")) for p in permissions
    } == {
        ("lambda:InvokeFunctionUrl", "NONE", None),
        ("lambda:InvokeFunction", None, True),
    }
    assert all(ref_name(p["FunctionName"]) == name for p in permissions)
    _, relay = relay_function(source)
    assert relay["Properties"]["Environment"]["Variables"]["DOWNLOAD_BASE_URL"] == {
        "Fn::GetAtt": [url_name, "FunctionUrl"]
    }
    # Its Downloads metric lands in the relay's namespace, where the dashboard and the alarm look.
    namespace = props["Environment"]["Variables"]["METRICS_NAMESPACE"]
    assert namespace == relay["Properties"]["Environment"]["Variables"]["METRICS_NAMESPACE"]
    assert Evaluator(source)(namespace) == "IoTMailRelay/iot-mail-relay"
    # The download function must not reference the relay, or the two would form a cycle.
    assert relay_function(source)[0] not in str(function)


def test_alarm_thresholds_are_parameters_with_the_agreed_defaults(cfn: dict[str, Any]) -> None:
    expected = {
        "ApproximateNumberOfMessagesVisible": 50,
        "ApproximateAgeOfOldestMessage": 180,
        "NumberOfMessagesSent": 180,
        # tests/template/test_operability.py checks these in detail
        "Errors": 0,
        "Reputation.BounceRate": 0.05,
        "Reputation.ComplaintRate": 0.001,
        "Mails": 0,
        "Throttles": 0,
        "Downloads": 0,
        "FoldingUnavailable": 0,
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
    assert revokes[0]["Principal"] == "*"  # the download function's 60-second redirects included
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
    recipient = EXAMPLE_PARAMETERS["RecipientEmail"]
    assert Evaluator(source)(props["Recipients"]) == [recipient]
    devices = "cam-1@relay.example.com,nvr-2@relay.example.com"
    assert Evaluator(source, AdditionalRecipientEmails=devices)(props["Recipients"]) == [
        recipient,
        *devices.split(","),
    ]
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
