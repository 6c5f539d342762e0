"""template.yaml -> `Blueprint`: the SAM template through the SAM translator (offline, the transform
CloudFormation applies), parameters checked as CloudFormation checks them, then each resource read with
its intrinsic functions resolved (`localaws.intrinsics`).

Nothing here is a second list of the relay's resources: every queue, bucket, topic, subscription,
secret, table, alarm, dashboard, log group and receipt rule the template declares is read, and every
function a queue, a function URL or a schedule triggers. What cannot run locally (IAM, KMS, policies,
custom resources) is listed in `not_emulated`, and so is every part of an emulated resource the reader
skips (a bucket notification to a topic or a function, an event source mapping from a stream, an
event-pattern rule, a second receipt rule or a rule's other actions), so nothing disappears silently.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3
from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]
from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-untyped]

from localaws.blueprint import (
    Alarm,
    Blueprint,
    Bucket,
    Dashboard,
    Function,
    LogGroup,
    QueueTrigger,
    ReceiptRule,
    RuleSet,
    Schedule,
    Secret,
    Subscription,
    Table,
    TemplateError,
    Topic,
    UrlEndpoint,
)
from localaws.blueprint import Queue as QueueSpec
from localaws.intrinsics import Resolver, scalar

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"
PLACEHOLDER_IMAGE_URI = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/local:latest"
# Answers for the parameters without a default, as `sam deploy --guided` would prompt for them: the
# README's example deployment, used by every local account unless told otherwise.
EXAMPLE_PARAMETERS = {"SenderEmail": "relay@example.com", "RecipientEmail": "inbox-7f3k9q@relay.example.com"}
SQS_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DelaySeconds",
    "FifoQueue",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)
SNS_ATTRIBUTES = ("DisplayName", "KmsMasterKeyId", "FifoTopic")
# Types created in moto (localaws.provision) or run by the sandbox (functions and their triggers).
EMULATED = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::SQS::Queue",
        "AWS::SNS::Topic",
        "AWS::SNS::Subscription",
        "AWS::SecretsManager::Secret",
        "AWS::DynamoDB::Table",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::Dashboard",
        "AWS::Logs::LogGroup",
        "AWS::SES::ReceiptRuleSet",
        "AWS::SES::ReceiptRule",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Lambda::Url",
        "AWS::Events::Rule",
        "AWS::Scheduler::Schedule",
    }
)


def translate(template_path: Path, region: str = REGION) -> dict[str, Any]:
    """The CloudFormation template CloudFormation would run, from the SAM template, offline."""
    sam = yaml_parse(template_path.read_text(encoding="utf-8"))
    for resource in sam.get("Resources", {}).values():
        properties = resource.setdefault("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and properties.get("PackageType") == "Image":
            properties.setdefault("ImageUri", PLACEHOLDER_IMAGE_URI)  # what `sam build` fills in
    translator = Translator({}, Parser(), boto_session=boto3.session.Session(region_name=region))
    translated: dict[str, Any] = translator.translate(
        copy.deepcopy(sam), parameter_values={}, get_managed_policy_map=lambda: {}
    )
    return translated


def parameter_values(
    template: Mapping[str, Any], overrides: Mapping[str, str], fallbacks: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Defaults with overrides applied, checked against the parameter's constraints like CloudFormation.

    `fallbacks` stand in for parameters without a default (a deploy would prompt for them).
    """
    fallbacks = fallbacks or {}
    declared = template.get("Parameters", {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(
            f"unknown parameter(s) {', '.join(unknown)}; the template has {', '.join(declared)}"
        )
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in overrides:
            value = overrides[name]
        elif "Default" in spec:
            value = scalar(spec["Default"])
        elif name in fallbacks:
            value = fallbacks[name]
        else:
            raise TemplateError(f"parameter {name} has no default: pass --param {name}=VALUE")
        _check_parameter(name, spec, value)
        values[name] = value
    return values


def load(
    template_path: Path,
    overrides: Mapping[str, str] | None = None,
    fallbacks: Mapping[str, str] | None = EXAMPLE_PARAMETERS,
    stack_name: str = "sandbox",
    account_id: str = ACCOUNT_ID,
    region: str = REGION,
    function_url: Callable[[str], str] | None = None,
) -> Blueprint:
    """The blueprint of one stack. `function_url(function logical id)`: where a function URL is served
    here (the sandbox's local port); without it, URLs shaped like AWS's."""
    translated = translate(template_path, region)
    params = parameter_values(translated, overrides or {}, fallbacks)
    resolver = Resolver(translated, params, stack_name, account_id, region, function_url)
    return _Reader(translated, resolver, template_path.parent).blueprint(params)


def _check_parameter(name: str, spec: Mapping[str, Any], value: str) -> None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [scalar(v) for v in allowed]:
        raise TemplateError(f"parameter {name}: {value!r} is not one of {allowed}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise TemplateError(f"parameter {name}: {value!r} does not match {pattern}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name}: {value!r} is not a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}: {value} is below {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}: {value} is above {spec['MaxValue']}")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        raise TemplateError(f"parameter {name}: shorter than {spec['MinLength']} characters")
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        raise TemplateError(f"parameter {name}: longer than {spec['MaxLength']} characters")


class _Reader:
    """Walks the translated resources and turns each one that runs locally into blueprint data."""

    def __init__(self, template: Mapping[str, Any], resolver: Resolver, template_dir: Path) -> None:
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.outputs: Mapping[str, Any] = template.get("Outputs", {})
        self.r = resolver
        self.template_dir = template_dir
        self.skipped: list[str] = []  # parts of emulated resources the local account leaves out

    def skip(self, lid: str, part: str) -> None:
        self.skipped.append(f"{lid} ({self.resources[lid]['Type']}: {part})")

    def of_type(self, *kinds: str) -> list[str]:
        return [lid for lid, res in self.resources.items() if res.get("Type") in kinds and self.r.exists(lid)]

    def blueprint(self, params: dict[str, str]) -> Blueprint:
        queue_triggers = [
            t for t in map(self.queue_trigger, self.of_type("AWS::Lambda::EventSourceMapping")) if t
        ]
        if len(queue_triggers) != 1:
            raise TemplateError(f"expected one SQS event source mapping, found {len(queue_triggers)}")
        endpoints = [self.endpoint(lid) for lid in self.of_type("AWS::Lambda::Url")]
        schedules = [
            s for s in map(self.schedule, self.of_type("AWS::Events::Rule", "AWS::Scheduler::Schedule")) if s
        ]
        triggered = {t.function_id for t in queue_triggers} | {e.function_id for e in endpoints}
        triggered |= {s.function_id for s in schedules}
        functions = {lid: self.function(lid) for lid in self.resources if lid in triggered}
        buckets = [self.bucket(lid) for lid in self.of_type("AWS::S3::Bucket")]
        receipt_rule = self.receipt_rule()
        return Blueprint(
            stack_name=self.r.stack,
            account_id=self.r.account,
            region=self.r.region,
            parameters=params,
            queues=[self.queue(lid) for lid in self.of_type("AWS::SQS::Queue")],
            buckets=buckets,
            topics=[self.topic(lid) for lid in self.of_type("AWS::SNS::Topic")],
            subscriptions=[self.subscription(lid) for lid in self.of_type("AWS::SNS::Subscription")],
            secrets=[self.secret(lid) for lid in self.of_type("AWS::SecretsManager::Secret")],
            tables=[self.table(lid) for lid in self.of_type("AWS::DynamoDB::Table")],
            alarms=[self.alarm(lid) for lid in self.of_type("AWS::CloudWatch::Alarm")],
            dashboards=[self.dashboard(lid) for lid in self.of_type("AWS::CloudWatch::Dashboard")],
            log_groups=[self.log_group(lid) for lid in self.of_type("AWS::Logs::LogGroup")],
            functions=functions,
            queue_triggers=queue_triggers,
            endpoints=endpoints,
            schedules=schedules,
            rule_sets=[
                RuleSet(lid, self.r.physical_name(lid)) for lid in self.of_type("AWS::SES::ReceiptRuleSet")
            ],
            receipt_rule=receipt_rule,
            outputs={
                name: scalar(self.r.resolve(output["Value"]))
                for name, output in self.outputs.items()
                if "Condition" not in output or self.r.condition(output["Condition"])
            },
            not_emulated=[
                f"{lid} ({res['Type']})"
                for lid, res in self.resources.items()
                if res.get("Type") not in EMULATED and lid not in triggered and self.r.exists(lid)
            ]
            + self.skipped,
        )

    # -- storage and messaging -----------------------------------------------------------------------
    def queue(self, lid: str) -> QueueSpec:
        props = self.r.properties(lid)
        attributes = {}
        for key in SQS_ATTRIBUTES:
            if key in props:
                value = props[key]
                attributes[key] = json.dumps(value) if isinstance(value, dict) else scalar(value)
        return QueueSpec(lid, self.r.physical_name(lid), self.r.arn(lid), attributes)

    def bucket(self, lid: str) -> Bucket:
        props = self.r.properties(lid)
        notifications = []
        declared = props.get("NotificationConfiguration", {})
        for kind in sorted(set(declared) - {"QueueConfigurations"}):
            self.skip(lid, f"NotificationConfiguration.{kind}")  # topics, functions, EventBridge
        for config in declared.get("QueueConfigurations", []):
            entry: dict[str, Any] = {"QueueArn": config["Queue"], "Events": [config["Event"]]}
            rules = config.get("Filter", {}).get("S3Key", {}).get("Rules", [])
            if rules:
                filter_rules = [{"Name": rule["Name"], "Value": rule["Value"]} for rule in rules]
                entry["Filter"] = {"Key": {"FilterRules": filter_rules}}
            notifications.append(entry)
        encryption = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        return Bucket(
            logical_id=lid,
            name=self.r.physical_name(lid),
            queue_notifications=notifications,
            lifecycle_rules=[
                _lifecycle_rule(lid, rule)
                for rule in props.get("LifecycleConfiguration", {}).get("Rules", [])
            ],
            encryption=[_encryption_rule(rule) for rule in encryption],
            public_access_block={
                k: bool(v) for k, v in props.get("PublicAccessBlockConfiguration", {}).items()
            },
        )

    def topic(self, lid: str) -> Topic:
        props = self.r.properties(lid)
        attributes = {key: scalar(props[key]) for key in SNS_ATTRIBUTES if key in props}
        return Topic(lid, self.r.physical_name(lid), self.r.arn(lid), attributes)

    def subscription(self, lid: str) -> Subscription:
        props = self.r.properties(lid)
        return Subscription(
            lid, str(props["TopicArn"]), str(props["Protocol"]), str(props.get("Endpoint", ""))
        )

    def secret(self, lid: str) -> Secret:
        props = self.r.properties(lid)
        return Secret(
            lid,
            self.r.physical_name(lid),
            self.r.arn(lid),
            props.get("SecretString"),
            props.get("GenerateSecretString"),
        )

    def table(self, lid: str) -> Table:
        props = self.r.properties(lid)
        name = self.r.physical_name(lid)
        create: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput", "Tags"):
            if key in props:
                create[key] = props[key]
        if "SSESpecification" in props:
            sse = props["SSESpecification"]
            create["SSESpecification"] = {
                "Enabled": bool(sse.get("SSEEnabled", False)),
                **({"SSEType": sse["SSEType"]} if "SSEType" in sse else {}),
                **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {}),
            }
        if "StreamSpecification" in props:
            create["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        ttl = props.get("TimeToLiveSpecification", {})
        recovery = props.get("PointInTimeRecoverySpecification", {})
        return Table(
            logical_id=lid,
            name=name,
            arn=self.r.arn(lid),
            create=create,
            ttl_attribute=str(ttl["AttributeName"]) if ttl.get("Enabled") else None,
            point_in_time_recovery=bool(recovery.get("PointInTimeRecoveryEnabled", False)),
        )

    def alarm(self, lid: str) -> Alarm:
        props = self.r.properties(lid)
        return Alarm(
            logical_id=lid,
            name=self.r.physical_name(lid),
            namespace=str(props.get("Namespace", "")),
            metric=str(props.get("MetricName", "")),  # empty: a metric-math alarm, not evaluated locally
            dimensions={str(d["Name"]): scalar(d["Value"]) for d in props.get("Dimensions", [])},
            statistic=str(props.get("Statistic", props.get("ExtendedStatistic", ""))),
            period_seconds=int(props.get("Period", 60)),
            threshold=float(props.get("Threshold", 0)),
            comparison=str(props["ComparisonOperator"]),
            actions=tuple(scalar(a) for a in props.get("AlarmActions", [])),
            evaluation_periods=int(props.get("EvaluationPeriods", 1)),
        )

    def dashboard(self, lid: str) -> Dashboard:
        return Dashboard(
            lid, self.r.physical_name(lid), str(self.r.properties(lid).get("DashboardBody", "{}"))
        )

    def log_group(self, lid: str) -> LogGroup:
        retention = self.r.properties(lid).get("RetentionInDays")
        return LogGroup(lid, self.r.physical_name(lid), int(retention) if retention is not None else None)

    def receipt_rule(self) -> ReceiptRule | None:
        """The first enabled rule that stores mail in S3: the mail the sandbox receives goes there."""
        found: ReceiptRule | None = None
        for lid in self.of_type("AWS::SES::ReceiptRule"):
            props = self.r.properties(lid)
            rule = props.get("Rule", {})
            actions = rule.get("Actions", [])
            stores = [action["S3Action"] for action in actions if "S3Action" in action]
            if found is not None:
                self.skip(lid, "a second receipt rule")
                continue
            if not stores:
                self.skip(lid, "a rule that stores no mail in S3")
                continue
            if not rule.get("Enabled", True):
                self.skip(lid, "a disabled rule")
                continue
            s3 = stores[0]
            for action in actions:
                if action.get("S3Action") is not s3:
                    self.skip(lid, f"its {', '.join(action)}")  # SNS, Lambda, Bounce, a second S3 action
            found = ReceiptRule(
                logical_id=lid,
                rule_set=str(props["RuleSetName"]),
                name=str(rule.get("Name", f"{self.r.stack}-{lid}")),
                recipients=tuple(str(r).lower() for r in rule.get("Recipients", [])),
                bucket=str(s3["BucketName"]),
                prefix=str(s3.get("ObjectKeyPrefix", "")),
                scan_enabled=bool(rule.get("ScanEnabled", False)),
                tls_policy=str(rule.get("TlsPolicy", "Optional")),
            )
        return found

    # -- functions and what triggers them -----------------------------------------------------------
    def queue_trigger(self, lid: str) -> QueueTrigger | None:
        mapping = self.r.properties(lid)
        if ":sqs:" not in str(mapping.get("EventSourceArn", "")):
            self.skip(lid, "an event source other than SQS")  # streams, Kafka, MQ: nothing feeds it here
            return None
        return QueueTrigger(
            logical_id=lid,
            function_id=self.r.function_id(str(mapping["FunctionName"])),
            queue_arn=str(mapping["EventSourceArn"]),
            batch_size=int(mapping.get("BatchSize", 10)),
            window_seconds=int(mapping.get("MaximumBatchingWindowInSeconds", 0)),
            report_batch_item_failures="ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", ()),
        )

    def endpoint(self, lid: str) -> UrlEndpoint:
        target = str(self.r.properties(lid)["TargetFunctionArn"])
        return UrlEndpoint(lid, self.r.function_id(target), str(self.r.get_att(lid, "FunctionUrl")))

    def schedule(self, lid: str) -> Schedule | None:
        props = self.r.properties(lid)
        expression = props.get("ScheduleExpression")
        targets = props.get("Targets") or ([props["Target"]] if "Target" in props else [])
        functions = [str(t["Arn"]) for t in targets if ":lambda:" in str(t.get("Arn", ""))]
        if not expression:
            self.skip(lid, "an event pattern")  # no local events reach EventBridge
            return None
        if len(functions) != 1:
            self.skip(lid, f"{len(functions)} function targets")  # only a schedule of one function runs
            return None
        return Schedule(
            logical_id=lid,
            function_id=self.r.function_id(functions[0]),
            expression=str(expression),
            enabled=str(props.get("State", "ENABLED")).upper() == "ENABLED",
        )

    def function(self, lid: str) -> Function:
        props = self.r.properties(lid)
        variables = props.get("Environment", {}).get("Variables", {})
        return Function(
            logical_id=lid,
            name=self.r.physical_name(lid),
            arn=self.r.arn(lid),
            environment={k: scalar(v) for k, v in variables.items()},
            timeout_seconds=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            handler=self.handler(lid, props),
        )

    def handler(self, lid: str, props: Mapping[str, Any]) -> str:
        """module.function: the image's Command, else its Dockerfile's CMD; a zip function's Handler."""
        if props.get("PackageType") != "Image":
            return str(props.get("Handler", ""))
        command = props.get("ImageConfig", {}).get("Command")
        if command is None:
            command = _dockerfile_command(self.template_dir, self.resources[lid].get("Metadata", {}))
        if len(command) != 1:
            raise TemplateError(
                f"{lid}: local functions run a one-word Command (module.function), not {command}"
            )
        return str(command[0])


def _dockerfile_command(template_dir: Path, metadata: Mapping[str, Any]) -> list[str]:
    """The last CMD of the function's Dockerfile (SAM's Metadata names it), exec or shell form."""
    dockerfile = (
        template_dir / str(metadata.get("DockerContext", ".")) / str(metadata.get("Dockerfile", "Dockerfile"))
    )
    try:
        lines = dockerfile.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise TemplateError(f"the image function's Dockerfile {dockerfile} cannot be read: {e}") from None
    commands = [line.strip()[3:].strip() for line in lines if line.strip().upper().startswith("CMD ")]
    if not commands:
        raise TemplateError(f"{dockerfile} has no CMD and the function no ImageConfig.Command")
    last = commands[-1]
    return [str(v) for v in json.loads(last)] if last.startswith("[") else shlex.split(last)


def _encryption_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation default-encryption rule in PutBucketEncryption's shape."""
    converted: dict[str, Any] = {}
    if "ServerSideEncryptionByDefault" in rule:
        converted["ApplyServerSideEncryptionByDefault"] = dict(rule["ServerSideEncryptionByDefault"])
    if "BucketKeyEnabled" in rule:
        converted["BucketKeyEnabled"] = bool(rule["BucketKeyEnabled"])
    return converted


_LIFECYCLE_KEYS = {
    "Id",
    "Status",
    "Prefix",
    "ExpirationInDays",
    "AbortIncompleteMultipartUpload",
    "NoncurrentVersionExpirationInDays",
    "ExpiredObjectDeleteMarker",
}


def _lifecycle_rule(lid: str, rule: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in PutBucketLifecycleConfiguration's shape."""
    unknown = sorted(set(rule) - _LIFECYCLE_KEYS)
    if unknown:
        raise TemplateError(f"{lid}: lifecycle rule keys {', '.join(unknown)} are not emulated")
    converted: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        converted["ID"] = rule["Id"]
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "ExpiredObjectDeleteMarker" in rule:
        converted["Expiration"] = {"ExpiredObjectDeleteMarker": bool(rule["ExpiredObjectDeleteMarker"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        converted["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    if "NoncurrentVersionExpirationInDays" in rule:
        converted["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])
        }
    return converted
