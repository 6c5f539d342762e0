"""template.yaml as CloudFormation sees it: decoded, translated by SAM offline, and evaluated (the
template tests' helpers; their fixtures `source` and `cfn` are in tests/template/conftest.py).

Tests read names from the template instead of repeating them, so renaming a resource cannot make a
test pass vacuously. The translation and the intrinsic functions are localaws's (`localaws.template`,
`localaws.intrinsics`): the template tests and the local account resolve the template the same way.
`Evaluator` resolves them for one set of parameter values, so a test can check the bucket name a
deployment would really get; other references stay symbolic (`<Logical>`, `<Logical.Attribute>`), so a
test can say which resource a policy or a widget points at.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cfnlint.decode import decode

from localaws import template as localaws_template
from localaws.intrinsics import Resolver, scalar
from tests.support import TEMPLATE

# What a documented example deployment resolves to; events/ and env.json are written for it.
EXAMPLE_PSEUDO = {"AWS::AccountId": "123456789012", "AWS::Region": "eu-west-1", "AWS::Partition": "aws"}
EXAMPLE_STACK = "iot-mail-relay"
EXAMPLE_PARAMETERS = localaws_template.EXAMPLE_PARAMETERS
# The name properties whose value a test sees; every other resource is a placeholder of its logical id.
_NAMED_BY = ("BucketName", "RuleSetName", "LogGroupName")


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


def translate() -> dict[str, Any]:
    """template.yaml through SAM's transform, offline, as the local account reads it (localaws)."""
    return localaws_template.translate(TEMPLATE, EXAMPLE_PSEUDO["AWS::Region"])


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


class Evaluator(Resolver):
    """localaws's resolver for the example deployment (`EXAMPLE_PARAMETERS`, the parameters' defaults,
    `overrides` of parameters and pseudo parameters), called on a node: `evaluate(node)`. Names are the
    template's own (`_NAMED_BY`), a bucket's ARN its real one, every other reference a placeholder."""

    def __init__(self, template: Mapping[str, Any], **overrides: str) -> None:
        pseudo = {**EXAMPLE_PSEUDO, "AWS::StackName": EXAMPLE_STACK}
        pseudo |= {k: v for k, v in overrides.items() if k.startswith("AWS::")}
        declared = template["Parameters"]
        values = {name: scalar(p.get("Default", "")) for name, p in declared.items()}
        values |= EXAMPLE_PARAMETERS
        values |= {k: v for k, v in overrides.items() if not k.startswith("AWS::")}
        super().__init__(
            template, values, pseudo["AWS::StackName"], pseudo["AWS::AccountId"], pseudo["AWS::Region"]
        )
        self.template = template

    def __call__(self, node: Any) -> Any:
        return self.resolve(node)

    def physical(self, logical: str) -> str:
        return self.physical_name(logical)

    def physical_name(self, logical_id: str) -> str:
        props = self.template["Resources"][logical_id].get("Properties", {})
        for key in _NAMED_BY:
            if key in props:
                return str(self.resolve(props[key]))
        return f"<{logical_id}>"

    def ref(self, name: str) -> Any:
        if name in self.values or name == "AWS::NoValue":
            return super().ref(name)
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if self.kind(logical_id) == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{self.physical_name(logical_id)}"
        return f"<{logical_id}.{attribute}>"


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
