"""CloudFormation's intrinsic functions, pseudo parameters and conditions for the resources of one stack.

`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`, `Fn::If` and the condition functions, `Fn::Select`,
`Fn::Split`, `Fn::FindInMap`, `Fn::ToJsonString`: each resolved to the value CloudFormation would give
for this stack, with physical names generated the way the sandbox names things (`<stack>-<logical id>`,
lower case for buckets) where the template gives none. A function no resource uses is an error naming
it, never a silent placeholder.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from localaws.blueprint import TemplateError

NO_VALUE = object()  # AWS::NoValue: the property or list item disappears

# The property that names a resource, by type (CloudFormation generates a name without it).
_NAME_PROPERTY = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::SES::ReceiptRuleSet": "RuleSetName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::IAM::Role": "RoleName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Events::Rule": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
}
# Types whose Ref is their ARN rather than their name.
_REF_IS_ARN = {"AWS::SNS::Topic", "AWS::SecretsManager::Secret"}


def scalar(value: Any) -> str:
    """A resolved value as CloudFormation turns it into a string (lists of parameters joined by commas)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(scalar(v) for v in value)
    return str(value)


class Resolver:
    """Resolves one stack's intrinsic functions. `function_url(logical id)` is the URL a function's
    function URL has here (the sandbox serves it on a local port); without it, one shaped like AWS's."""

    def __init__(
        self,
        template: Mapping[str, Any],
        params: Mapping[str, str],
        stack: str,
        account: str,
        region: str,
        function_url: Callable[[str], str] | None = None,
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
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack}/{self._uuid('stack')}",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        declared = template.get("Parameters", {})
        for name in params:
            if declared.get(name, {}).get("Type") == "CommaDelimitedList":
                self.values[name] = [v.strip() for v in params[name].split(",")] if params[name] else []
        self._names: dict[str, str] = {}
        self._condition_values: dict[str, bool] = {}

    # -- conditions --------------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._condition_values:
            if name not in self.conditions:
                raise TemplateError(f"unknown condition {name}")
            self._condition_values[name] = bool(self.resolve(self.conditions[name]))
        return self._condition_values[name]

    def exists(self, logical_id: str) -> bool:
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(condition)

    # -- names, ARNs, Ref and GetAtt ---------------------------------------------------------------
    def kind(self, logical_id: str) -> str:
        if logical_id not in self.resources:
            raise TemplateError(f"no resource {logical_id} in the template")
        return str(self.resources[logical_id]["Type"])

    def properties(self, logical_id: str) -> dict[str, Any]:
        resolved = self.resolve(self.resources[logical_id].get("Properties", {}))
        return resolved if isinstance(resolved, dict) else {}

    def physical_name(self, logical_id: str) -> str:
        if logical_id not in self._names:
            kind = self.kind(logical_id)
            properties = self.resources[logical_id].get("Properties", {})
            name_property = _NAME_PROPERTY.get(kind)
            explicit = properties.get(name_property) if name_property else None
            if explicit is not None:
                name = str(self.resolve(explicit))
            elif kind == "AWS::S3::Bucket":
                name = f"{self.stack}-{logical_id}".lower()[:63]
            else:
                name = f"{self.stack}-{logical_id}"
                if properties.get("FifoQueue") or properties.get("FifoTopic"):
                    name += ".fifo"
            self._names[logical_id] = name
        return self._names[logical_id]

    def arn(self, logical_id: str) -> str:
        kind = self.kind(logical_id)
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
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{r}:{a}:table/{name}",
            "AWS::Events::Rule": f"arn:aws:events:{r}:{a}:rule/{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{r}:{a}:log-group:{name}:*",
            "AWS::KMS::Key": f"arn:aws:kms:{r}:{a}:key/{self._uuid(logical_id)}",
        }
        if kind not in arns:
            raise TemplateError(f"the ARN of {logical_id} ({kind}) is not emulated")
        return arns[kind]

    def ref(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        kind = self.kind(name)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{self.physical_name(name)}"
        if kind == "AWS::KMS::Key":
            return self._uuid(name)  # a key id is made by KMS; a stable one stands in for it
        if kind in _REF_IS_ARN:
            return self.arn(name)
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        kind = self.kind(logical_id)
        name = self.physical_name(logical_id)
        if attribute == "Arn" or (kind == "AWS::SNS::Topic" and attribute == "TopicArn"):
            return self.arn(logical_id)
        if kind == "AWS::Lambda::Url" and attribute == "FunctionUrl":
            return self._function_url(logical_id)
        attributes = {
            ("AWS::SQS::Queue", "QueueName"): name,
            ("AWS::SQS::Queue", "QueueUrl"): self.ref(logical_id),
            ("AWS::SNS::Topic", "TopicName"): name,
            ("AWS::S3::Bucket", "DomainName"): f"{name}.s3.amazonaws.com",
            ("AWS::S3::Bucket", "RegionalDomainName"): f"{name}.s3.{self.region}.amazonaws.com",
            ("AWS::KMS::Key", "KeyId"): self.ref(logical_id),
        }
        if (kind, attribute) not in attributes:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} ({kind}) is not emulated")
        return attributes[(kind, attribute)]

    def function_id(self, name_or_arn: str) -> str:
        """The logical id of the function a mapping, URL or rule names by name or ARN."""
        for lid, resource in self.resources.items():
            if resource.get("Type") == "AWS::Lambda::Function" and name_or_arn in {
                self.physical_name(lid),
                self.arn(lid),
            }:
                return lid
        raise TemplateError(f"the function {name_or_arn} is not in the template")

    def _function_url(self, url_id: str) -> str:
        target = str(self.resolve(self.resources[url_id]["Properties"]["TargetFunctionArn"]))
        function_id = self.function_id(target)
        if self.function_url is not None:
            return self.function_url(function_id)
        url_id_part = hashlib.sha256(f"{self.stack}/{function_id}".encode()).hexdigest()[:32]
        return f"https://{url_id_part}.lambda-url.{self.region}.on.aws/"  # the shape AWS gives

    def _uuid(self, seed: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.account}/{self.region}/{self.stack}/{seed}"))

    # -- the intrinsic functions ---------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:  # noqa: PLR0912 - one branch per intrinsic function
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not NO_VALUE]
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
                return str(separator).join(scalar(v) for v in self.resolve(items))
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = (scalar(self.resolve(v)) for v in arg)
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
            if key == "Fn::Contains":  # Rules only: is the value one of the list's
                items, item = arg
                return scalar(self.resolve(item)) in [scalar(v) for v in self.resolve(items)]
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not emulated locally")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return scalar(variables[expression])
            if "." in expression and expression.split(".", 1)[0] in self.resources:
                logical_id, attribute = expression.split(".", 1)
                return scalar(self.get_att(logical_id, attribute))
            return scalar(self.ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, str(text))
