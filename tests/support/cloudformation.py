"""template.yaml as CloudFormation sees it: decoded, translated by SAM offline, and evaluated (the
template tests' helpers; their fixtures `source` and `cfn` are in tests/template/conftest.py).

Tests read names from the template instead of repeating them, so renaming a resource cannot make a
test pass vacuously. `Evaluator` resolves the few intrinsics the template uses for one set of
parameter values, so a test can check the ARN or bucket name a deployment would really get.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping
from typing import Any
from unittest import mock

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

from tests.support import TEMPLATE

# What a documented example deployment resolves to; events/ and env.json are written for it.
EXAMPLE_PSEUDO = {"AWS::AccountId": "123456789012", "AWS::Region": "eu-west-1", "AWS::Partition": "aws"}
EXAMPLE_STACK = "iot-mail-relay"
EXAMPLE_PARAMETERS = {"SenderEmail": "relay@example.com", "RecipientEmail": "inbox-7f3k9q@relay.example.com"}
PLACEHOLDER_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/iot-mail-relay:python3.12-v1"

NO_VALUE = object()


class _NoManagedPolicies:
    """Stands in for SAM's IAM-backed loader: the template names no managed policies by name."""

    def load(self) -> dict[str, str]:
        return {}


def load_template() -> dict[str, Any]:
    template, matches = decode(str(TEMPLATE))
    assert template is not None, matches
    return dict(template)


def image_functions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        and resource.get("Properties", {}).get("PackageType") == "Image"
    }


def relay_function(template: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The image function an SQS queue drives (the download function shares its image)."""
    found = [
        (name, f)
        for name, f in image_functions(template).items()
        if any(e.get("Type") == "SQS" for e in f["Properties"].get("Events", {}).values())
    ]
    assert len(found) == 1, found
    return found[0]


def download_function(template: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The image function whose command is the download handler."""
    found = [
        (name, f)
        for name, f in image_functions(template).items()
        if f["Properties"].get("ImageConfig", {}).get("Command") == ["app.download.lambda_handler"]
    ]
    assert len(found) == 1, found
    return found[0]


def translate(template: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's transform, offline, with the ImageUri that `sam build` would fill in."""
    fragment = copy.deepcopy(dict(template))
    for function in image_functions(fragment).values():
        function["Properties"]["ImageUri"] = PLACEHOLDER_IMAGE
    parameters = {**EXAMPLE_PSEUDO, "AWS::StackName": EXAMPLE_STACK}
    # The translator reads the region from boto3's default session even when it is given.
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": EXAMPLE_PSEUDO["AWS::Region"]}):
        return transform(fragment, parameters, _NoManagedPolicies())  # type: ignore[arg-type]


def resources_of(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def the_function(cfn: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The relay: the function the SQS event source mapping drives."""
    (mapping,) = resources_of(cfn, "AWS::Lambda::EventSourceMapping").values()
    name = ref_name(mapping["Properties"]["FunctionName"])
    return name, dict(cfn["Resources"][name])


def ref_name(node: Any) -> str:
    """The logical id a Ref or GetAtt points at."""
    if isinstance(node, dict) and "Ref" in node:
        return str(node["Ref"])
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        target = node["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".", 1)[0])
    raise AssertionError(f"not a Ref or GetAtt: {node!r}")


def statements(document: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every statement of a policy document, both branches of an Fn::If included."""
    for statement in document["Statement"]:
        if isinstance(statement, dict) and "Fn::If" in statement:
            yield from (s for s in statement["Fn::If"][1:] if s != {"Ref": "AWS::NoValue"})
        else:
            yield statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class Evaluator:
    """Resolves Ref, Sub, GetAtt, Select, Split, If, Not, And, Or, Equals (and Rules' Contains) for given
    parameter values."""

    def __init__(self, template: Mapping[str, Any], **overrides: str) -> None:
        defaults = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
        self.values = {
            **defaults,
            **EXAMPLE_PARAMETERS,
            **EXAMPLE_PSEUDO,
            "AWS::StackName": EXAMPLE_STACK,
            **overrides,
        }
        self.template = template

    def condition(self, name: str) -> bool:
        return bool(self(self.template["Conditions"][name]))

    def physical(self, logical: str) -> str:
        """A resource's name where the template fixes it, else a placeholder of its logical id."""
        props = self.template["Resources"][logical].get("Properties", {})
        for key in ("BucketName", "RuleSetName", "LogGroupName"):
            if key in props:
                return str(self(props[key]))
        return f"<{logical}>"

    def __call__(self, node: Any) -> Any:  # noqa: PLR0912
        if isinstance(node, list):
            return [v for v in (self(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {k: v for k, v in ((k, self(v)) for k, v in node.items()) if v is not NO_VALUE}
        ((key, arg),) = node.items()
        match key:
            case "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                return self.values[arg] if arg in self.values else self.physical(arg)
            case "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._attribute(logical, attribute)
            case "Fn::Sub":
                text, local = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
                return self._sub(text, local)
            case "Fn::Select":
                return self(arg[1])[int(self(arg[0]))]
            case "Fn::Split":
                return str(self(arg[1])).split(arg[0])
            case "Fn::If":
                return self(arg[1] if self.condition(arg[0]) else arg[2])
            case "Fn::Not":
                return not self(arg[0])
            case "Fn::And":
                return all(self(item) for item in arg)
            case "Fn::Or":
                return any(self(item) for item in arg)
            case "Fn::Equals":
                return str(self(arg[0])) == str(self(arg[1]))
            case "Fn::Contains":  # Rules only: is the value one of the list's
                return str(self(arg[1])) in [str(item) for item in self(arg[0])]
            case "Condition":
                return self.condition(arg)
        return {key: self(arg)}

    def _attribute(self, logical: str, attribute: str) -> str:
        kind = self.template["Resources"][logical]["Type"]
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{self.physical(logical)}"
        return f"<{logical}.{attribute}>"

    def _sub(self, text: str, local: Mapping[str, Any]) -> str:
        out, rest = [], text
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out.append(before)
            if name in local:
                out.append(str(local[name]))
            elif "." in name:
                out.append(self._attribute(*name.split(".", 1)))
            else:
                out.append(str(self({"Ref": name})))
        return "".join(out) + rest


def violated_rules(template: Mapping[str, Any], **parameters: str) -> dict[str, list[str]]:
    """The template's `Rules` as CloudFormation checks them before creating anything: each rule whose
    RuleCondition holds (or that has none) must pass all its assertions; returns the failing rules
    with their AssertDescriptions."""
    evaluate = Evaluator(template, **parameters)
    failed: dict[str, list[str]] = {}
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"]):
            continue
        messages = [a["AssertDescription"] for a in rule["Assertions"] if not evaluate(a["Assert"])]
        if messages:
            failed[name] = messages
    return failed
