"""template.yaml -> the blueprint the sandbox provisions: what the stack would create, with names and values
resolved as CloudFormation would resolve them for one stack.

The SAM template goes through the SAM translator offline (the same transform CloudFormation applies), then
the plain CloudFormation resources are read with their intrinsic functions resolved. Nothing here is a
second list of resources: change the template and the sandbox follows.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]
from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-untyped]

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PLACEHOLDER_IMAGE_URI = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/sandbox:latest"
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
_NO_VALUE = object()


class TemplateError(ValueError):
    """The template (or a parameter override) cannot be turned into sandbox resources."""


@dataclass(frozen=True)
class Queue:
    logical_id: str
    name: str
    attributes: dict[str, str]
    arn: str

    @property
    def max_receive_count(self) -> int | None:
        redrive = self.attributes.get("RedrivePolicy")
        return int(json.loads(redrive)["maxReceiveCount"]) if redrive else None

    @property
    def dead_letter_arn(self) -> str | None:
        redrive = self.attributes.get("RedrivePolicy")
        return str(json.loads(redrive)["deadLetterTargetArn"]) if redrive else None


@dataclass(frozen=True)
class Bucket:
    logical_id: str
    name: str
    queue_notifications: list[dict[str, Any]]  # boto3 QueueConfigurations


@dataclass(frozen=True)
class Topic:
    logical_id: str
    name: str
    arn: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class Function:
    logical_id: str
    name: str
    arn: str
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int


@dataclass(frozen=True)
class Secret:
    """A secret the stack creates; GenerateSecretString is done at provisioning, as CloudFormation does."""

    logical_id: str
    name: str
    arn: str  # a partial ARN (no random suffix): Secrets Manager and moto accept it as SecretId
    secret_string: str | None
    generate: dict[str, Any] | None


@dataclass(frozen=True)
class DownloadEndpoint:
    """A function behind a function URL (the link endpoint), served by the sandbox on a local port."""

    function: Function
    handler: str  # the image's command: module.function
    url: str


@dataclass(frozen=True)
class EventSource:
    queue_arn: str
    batch_size: int
    window_seconds: int
    report_batch_item_failures: bool


@dataclass(frozen=True)
class Alarm:
    logical_id: str
    name: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    statistic: str
    period_seconds: int
    threshold: float
    comparison: str
    actions: tuple[str, ...]


@dataclass(frozen=True)
class ReceiptRule:
    recipients: tuple[str, ...]
    bucket: str
    prefix: str
    scan_enabled: bool


@dataclass
class Blueprint:
    stack_name: str
    account_id: str
    region: str
    parameters: dict[str, str]
    queues: list[Queue]
    buckets: list[Bucket]
    topics: list[Topic]
    function: Function
    event_source: EventSource
    alarms: list[Alarm]
    receipt_rule: ReceiptRule | None
    not_emulated: list[str] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)
    download: DownloadEndpoint | None = None

    def queue_by_arn(self, arn: str) -> Queue:
        for queue in self.queues:
            if queue.arn == arn:
                return queue
        raise TemplateError(f"no queue with ARN {arn} in the template")

    @property
    def inbound_queue(self) -> Queue:
        return self.queue_by_arn(self.event_source.queue_arn)

    @property
    def dead_letter_queue(self) -> Queue | None:
        arn = self.inbound_queue.dead_letter_arn
        return self.queue_by_arn(arn) if arn else None

    @property
    def recipients(self) -> tuple[str, ...]:
        """Who the receipt rule accepts mail for (the function's RECIPIENT_EMAIL without a rule)."""
        if self.receipt_rule and self.receipt_rule.recipients:
            return self.receipt_rule.recipients
        return (self.function.environment["RECIPIENT_EMAIL"].lower(),)

    @property
    def incoming_prefix(self) -> str:
        return self.receipt_rule.prefix if self.receipt_rule else "incoming/"

    @property
    def incoming_bucket(self) -> str:
        return self.function.environment["INCOMING_BUCKET"]


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
        known = ", ".join(declared)
        raise TemplateError(f"unknown parameter(s) {', '.join(unknown)}; the template has {known}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in overrides:
            value = overrides[name]
        elif "Default" in spec:
            value = _scalar(spec["Default"])
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
    fallbacks: Mapping[str, str] | None = None,
    stack_name: str = "sandbox",
    account_id: str = ACCOUNT_ID,
    region: str = REGION,
    function_url: str = "http://127.0.0.1:8480/",
) -> Blueprint:
    """`function_url` is what a function URL resolves to: where the sandbox serves that function."""
    translated = translate(template_path, region)
    params = parameter_values(translated, overrides or {}, fallbacks)
    resolver = _Resolver(translated, params, stack_name, account_id, region, function_url)
    return _Reader(translated, resolver).blueprint(stack_name, account_id, region, params)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_scalar(v) for v in value)
    return str(value)


def _check_parameter(name: str, spec: Mapping[str, Any], value: str) -> None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [_scalar(v) for v in allowed]:
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


class _Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::If, ... for the resources of one stack."""

    def __init__(
        self,
        template: Mapping[str, Any],
        params: Mapping[str, str],
        stack: str,
        account: str,
        region: str,
        function_url: str = "",
    ) -> None:
        self.function_url = function_url
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.conditions: Mapping[str, Any] = template.get("Conditions", {})
        self.mappings: Mapping[str, Any] = template.get("Mappings", {})
        self.account, self.region, self.stack = account, region, stack
        self.values: dict[str, Any] = {
            **params,
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::StackName": stack,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack}/sandbox",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        for name in params:
            if template["Parameters"][name].get("Type") == "CommaDelimitedList":
                self.values[name] = [v.strip() for v in params[name].split(",")] if params[name] else []
        self._names: dict[str, str] = {}
        self._condition_values: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._condition_values:
            if name not in self.conditions:
                raise TemplateError(f"unknown condition {name}")
            self._condition_values[name] = bool(self.resolve(self.conditions[name]))
        return self._condition_values[name]

    def exists(self, logical_id: str) -> bool:
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def properties(self, logical_id: str) -> dict[str, Any]:
        resolved = self.resolve(self.resources[logical_id].get("Properties", {}))
        return resolved if isinstance(resolved, dict) else {}

    def physical_name(self, logical_id: str) -> str:
        if logical_id not in self._names:
            resource = self.resources[logical_id]
            kind = resource["Type"]
            name_property = {
                "AWS::S3::Bucket": "BucketName",
                "AWS::SQS::Queue": "QueueName",
                "AWS::SNS::Topic": "TopicName",
                "AWS::Lambda::Function": "FunctionName",
                "AWS::SES::ReceiptRuleSet": "RuleSetName",
                "AWS::CloudWatch::Alarm": "AlarmName",
                "AWS::IAM::Role": "RoleName",
                "AWS::SecretsManager::Secret": "Name",
            }.get(kind)
            explicit = resource.get("Properties", {}).get(name_property) if name_property else None
            if explicit is not None:
                name = str(self.resolve(explicit))
            elif kind == "AWS::S3::Bucket":
                name = f"{self.stack}-{logical_id}".lower()[:63]
            else:
                name = f"{self.stack}-{logical_id}"
                fifo = resource.get("Properties", {}).get("FifoQueue") or resource.get("Properties", {}).get(
                    "FifoTopic"
                )
                if fifo:
                    name += ".fifo"
            self._names[logical_id] = name
        return self._names[logical_id]

    def arn(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        a, r = self.account, self.region
        arns = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{r}:{a}:{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{r}:{a}:{name}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{r}:{a}:function:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{a}:role/{name}",
            "AWS::CloudWatch::Alarm": f"arn:aws:cloudwatch:{r}:{a}:alarm:{name}",
            "AWS::SecretsManager::Secret": f"arn:aws:secretsmanager:{r}:{a}:secret:{name}",
        }
        if kind not in arns:
            raise TemplateError(f"the ARN of {logical_id} ({kind}) is not emulated")
        return arns[kind]

    def ref(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name not in self.resources:
            raise TemplateError(f"Ref to unknown {name}")
        kind = self.resources[name]["Type"]
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{self.physical_name(name)}"
        if kind in {"AWS::SNS::Topic", "AWS::SecretsManager::Secret"}:
            return self.arn(name)
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.resources:
            raise TemplateError(f"Fn::GetAtt on unknown resource {logical_id}")
        kind = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        if attribute == "Arn" or (kind == "AWS::SNS::Topic" and attribute == "TopicArn"):
            return self.arn(logical_id)
        attributes = {
            ("AWS::SQS::Queue", "QueueName"): name,
            ("AWS::SQS::Queue", "QueueUrl"): self.ref(logical_id),
            ("AWS::SNS::Topic", "TopicName"): name,
            ("AWS::S3::Bucket", "DomainName"): f"{name}.s3.amazonaws.com",
            ("AWS::S3::Bucket", "RegionalDomainName"): f"{name}.s3.{self.region}.amazonaws.com",
            ("AWS::Lambda::Url", "FunctionUrl"): self.function_url,
        }
        if (kind, attribute) not in attributes:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} ({kind}) is not emulated")
        return attributes[(kind, attribute)]

    def resolve(self, value: Any) -> Any:  # noqa: PLR0912 - one branch per intrinsic function
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                parts = arg.split(".", 1) if isinstance(arg, str) else [self.resolve(a) for a in arg]
                return self.get_att(parts[0], parts[1])
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                separator, items = arg
                return str(separator).join(_scalar(v) for v in self.resolve(items))
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = (_scalar(self.resolve(v)) for v in arg)
                return left == right
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in arg)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if key == "Fn::FindInMap":
                name, top, second = (self.resolve(v) for v in arg[:3])
                return self.mappings[name][top][second]
            if key == "Fn::ToJsonString":
                return json.dumps(self.resolve(arg), separators=(",", ":"))
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not emulated by the sandbox")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return _scalar(variables[expression])
            if "." in expression and expression.split(".", 1)[0] in self.resources:
                logical_id, attribute = expression.split(".", 1)
                return _scalar(self.get_att(logical_id, attribute))
            return _scalar(self.ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, str(text))


class _Reader:
    """Walks the translated resources and keeps what the sandbox can emulate."""

    def __init__(self, template: Mapping[str, Any], resolver: _Resolver) -> None:
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.r = resolver

    def of_type(self, kind: str) -> list[str]:
        return [lid for lid, res in self.resources.items() if res.get("Type") == kind and self.r.exists(lid)]

    def blueprint(self, stack: str, account: str, region: str, params: dict[str, str]) -> Blueprint:
        mappings = self.of_type("AWS::Lambda::EventSourceMapping")
        sqs_mappings = [lid for lid in mappings if ":sqs:" in str(self.r.properties(lid)["EventSourceArn"])]
        if len(sqs_mappings) != 1:
            raise TemplateError(f"expected one SQS event source mapping, found {len(sqs_mappings)}")
        mapping = self.r.properties(sqs_mappings[0])
        function_id = self.function_id(mapping["FunctionName"])
        emulated = {"AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::SNS::Topic", "AWS::CloudWatch::Alarm"}
        emulated |= {"AWS::SES::ReceiptRule", "AWS::Lambda::EventSourceMapping"}
        emulated |= {"AWS::SecretsManager::Secret", "AWS::Lambda::Url"}
        download = self.download()
        served = {function_id, download.function.logical_id if download else ""}
        not_emulated = [
            f"{lid} ({res['Type']})"
            for lid, res in self.resources.items()
            if res.get("Type") not in emulated and lid not in served and self.r.exists(lid)
        ]
        return Blueprint(
            stack_name=stack,
            account_id=account,
            region=region,
            parameters=params,
            queues=[self.queue(lid) for lid in self.of_type("AWS::SQS::Queue")],
            buckets=[self.bucket(lid) for lid in self.of_type("AWS::S3::Bucket")],
            topics=[self.topic(lid) for lid in self.of_type("AWS::SNS::Topic")],
            function=self.function(function_id),
            event_source=EventSource(
                queue_arn=str(mapping["EventSourceArn"]),
                batch_size=int(mapping.get("BatchSize", 10)),
                window_seconds=int(mapping.get("MaximumBatchingWindowInSeconds", 0)),
                report_batch_item_failures="ReportBatchItemFailures"
                in mapping.get("FunctionResponseTypes", ()),
            ),
            alarms=[a for a in (self.alarm(lid) for lid in self.of_type("AWS::CloudWatch::Alarm")) if a],
            receipt_rule=self.receipt_rule(),
            not_emulated=not_emulated,
            secrets=[self.secret(lid) for lid in self.of_type("AWS::SecretsManager::Secret")],
            download=download,
        )

    def secret(self, lid: str) -> Secret:
        props = self.r.properties(lid)
        string = props.get("SecretString")
        generate = props.get("GenerateSecretString")
        return Secret(lid, self.r.physical_name(lid), self.r.arn(lid), string, generate)

    def download(self) -> DownloadEndpoint | None:
        """The function behind the template's function URL, if it has one."""
        for lid in self.of_type("AWS::Lambda::Url"):
            target = str(self.r.properties(lid)["TargetFunctionArn"])
            function_id = self.function_id(target)
            command = self.r.properties(function_id).get("ImageConfig", {}).get("Command", [])
            if len(command) != 1:
                raise TemplateError(
                    f"{function_id}: the sandbox serves image functions with a one-word Command"
                )
            return DownloadEndpoint(self.function(function_id), str(command[0]), self.r.function_url)
        return None

    def function_id(self, function_name: str) -> str:
        for lid in self.of_type("AWS::Lambda::Function"):
            if self.r.physical_name(lid) == function_name or self.r.arn(lid) == function_name:
                return lid
        raise TemplateError(f"the event source's function {function_name} is not in the template")

    def queue(self, lid: str) -> Queue:
        props = self.r.properties(lid)
        attributes = {}
        for key in SQS_ATTRIBUTES:
            if key in props:
                value = props[key]
                if isinstance(value, dict):
                    value = json.dumps(value)
                attributes[key] = _scalar(value)
        return Queue(lid, self.r.physical_name(lid), attributes, self.r.arn(lid))

    def bucket(self, lid: str) -> Bucket:
        props = self.r.properties(lid)
        notifications = []
        for config in props.get("NotificationConfiguration", {}).get("QueueConfigurations", []):
            entry: dict[str, Any] = {"QueueArn": config["Queue"], "Events": [config["Event"]]}
            rules = config.get("Filter", {}).get("S3Key", {}).get("Rules", [])
            if rules:
                filter_rules = [{"Name": rule["Name"], "Value": rule["Value"]} for rule in rules]
                entry["Filter"] = {"Key": {"FilterRules": filter_rules}}
            notifications.append(entry)
        return Bucket(lid, self.r.physical_name(lid), notifications)

    def topic(self, lid: str) -> Topic:
        props = self.r.properties(lid)
        attributes = {key: _scalar(props[key]) for key in SNS_ATTRIBUTES if key in props}
        return Topic(lid, self.r.physical_name(lid), self.r.arn(lid), attributes)

    def function(self, lid: str) -> Function:
        props = self.r.properties(lid)
        variables = props.get("Environment", {}).get("Variables", {})
        return Function(
            logical_id=lid,
            name=self.r.physical_name(lid),
            arn=self.r.arn(lid),
            environment={k: _scalar(v) for k, v in variables.items()},
            timeout_seconds=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
        )

    def alarm(self, lid: str) -> Alarm | None:
        props = self.r.properties(lid)
        if "MetricName" not in props:
            return None  # metric math: not evaluated by the sandbox
        return Alarm(
            logical_id=lid,
            name=self.r.physical_name(lid),
            namespace=str(props.get("Namespace", "")),
            metric=str(props["MetricName"]),
            dimensions={str(d["Name"]): _scalar(d["Value"]) for d in props.get("Dimensions", [])},
            statistic=str(props.get("Statistic", props.get("ExtendedStatistic", ""))),
            period_seconds=int(props.get("Period", 60)),
            threshold=float(props.get("Threshold", 0)),
            comparison=str(props["ComparisonOperator"]),
            actions=tuple(_scalar(a) for a in props.get("AlarmActions", [])),
        )

    def receipt_rule(self) -> ReceiptRule | None:
        for lid in self.of_type("AWS::SES::ReceiptRule"):
            rule = self.r.properties(lid).get("Rule", {})
            for action in rule.get("Actions", []):
                s3 = action.get("S3Action")
                if s3 and rule.get("Enabled", True):
                    return ReceiptRule(
                        recipients=tuple(str(r).lower() for r in rule.get("Recipients", [])),
                        bucket=str(s3["BucketName"]),
                        prefix=str(s3.get("ObjectKeyPrefix", "")),
                        scan_enabled=bool(rule.get("ScanEnabled", False)),
                    )
        return None
