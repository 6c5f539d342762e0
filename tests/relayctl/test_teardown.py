"""teardown against moto: the rule stops, both buckets are emptied, the stack is deleted; nothing
changes without a confirmation; a failed first deploy's leftover buckets are found by their names.

What is real and what is not: the stack is a small CloudFormation template deployed to moto with two
buckets named by the template's scheme and the outputs relayctl reads. moto's CloudFormation has no
SES resources, so the receipt rule set and rule are created with SES calls beside the stack (in AWS
the stack would delete them). moto's stack deletion leaves a bucket that still holds objects in place
while reporting DELETE_COMPLETE, so a bucket that is gone afterwards was emptied by teardown.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import boto3
import pytest

from relayctl import images, resources, teardown
from relayctl.aws import Aws
from tests.support.relayctl import Relay, bucket_name

NAME = "relay-td"
PREFIX = "relay-td"


class _Stdin(io.StringIO):
    def __init__(self, text: str, tty: bool) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.fixture
def aws(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(teardown, "POLL_SECONDS", 0)
    monkeypatch.setattr("sys.stdin", _Stdin("", tty=False))
    return {name: boto3.client(name, region_name=relay.region) for name in ("cloudformation", "s3", "ses")}


def _bucket(relay: Relay, kind: str) -> str:
    """The template's name for the stack's bucket of that kind (BucketNamePrefix=PREFIX)."""
    name = bucket_name(f"{kind.capitalize()}Bucket", {"BucketNamePrefix": PREFIX})
    assert name.endswith(f"-{relay.region}")
    return name


def _deploy(
    relay: Relay, aws: dict[str, Any], rule_set: str, owned: str | None = "true", outputs: bool = True
) -> str:
    """The stack (two buckets, a queue, the rule outputs) and its receipt rule, active if owned."""
    ses, s3 = aws["ses"], aws["s3"]
    resources: dict[str, Any] = {
        f"{kind.capitalize()}Bucket": {
            "Type": "AWS::S3::Bucket",
            "Properties": {"BucketName": _bucket(relay, kind)},
        }
        for kind in ("incoming", "attachments")
    }
    resources["Queue"] = {"Type": "AWS::SQS::Queue"}
    values = {"ReceiptRuleSetName": rule_set, "ReceiptRuleName": f"{NAME}-store"}
    if owned is not None:
        values["ReceiptRuleSetOwned"] = owned
    body: dict[str, Any] = {"Resources": resources}
    if outputs:
        body["Outputs"] = {key: {"Value": value} for key, value in values.items()}
    aws["cloudformation"].create_stack(StackName=NAME, TemplateBody=json.dumps(body))
    if owned != "false":
        ses.create_receipt_rule_set(RuleSetName=rule_set)
    ses.create_receipt_rule(
        RuleSetName=rule_set,
        Rule={
            "Name": f"{NAME}-store",
            "Enabled": True,
            "Recipients": ["inbox@relay.example.com"],
            "Actions": [
                {"S3Action": {"BucketName": _bucket(relay, "incoming"), "ObjectKeyPrefix": "incoming/"}}
            ],
        },
    )
    if owned != "false":
        ses.set_active_receipt_rule_set(RuleSetName=rule_set)
    for i in range(3):
        s3.put_object(Bucket=_bucket(relay, "incoming"), Key=f"incoming/m{i}", Body=b"raw mail")
    s3.put_object(Bucket=_bucket(relay, "incoming"), Key="markers/m0", Body=b"")
    s3.put_object(Bucket=_bucket(relay, "attachments"), Key="attachments/d/1-a.csv", Body=b"t,v")
    s3.create_multipart_upload(Bucket=_bucket(relay, "attachments"), Key="attachments/d/2-big.bin")
    return rule_set


def _buckets(aws: dict[str, Any]) -> set[str]:
    return {b["Name"] for b in aws["s3"].list_buckets()["Buckets"]}


def _stack_status(aws: dict[str, Any]) -> str | None:
    try:
        return str(aws["cloudformation"].describe_stacks(StackName=NAME)["Stacks"][0]["StackStatus"])
    except aws["cloudformation"].exceptions.ClientError:
        return None


def _active(aws: dict[str, Any]) -> str | None:
    name = aws["ses"].describe_active_receipt_rule_set().get("Metadata", {}).get("Name")
    return str(name) if name else None


def test_teardown_deactivates_the_rule_set_empties_the_buckets_and_deletes_the_stack(
    relay: Relay, aws: dict[str, Any]
) -> None:
    rule_set = _deploy(relay, aws, f"{NAME}-rules")

    report = relay.run_json("teardown", "--stack", NAME, "--yes")

    assert _active(aws) is None
    assert {_bucket(relay, "incoming"), _bucket(relay, "attachments")}.isdisjoint(_buckets(aws))
    assert _stack_status(aws) is None
    assert report["receipt_rule"] == {
        "rule_set": rule_set,
        "rule": f"{NAME}-store",
        "owned": True,
        "action": "deactivate",
    }
    counts = {b["bucket"]: (b["objects"], b["uploads"], b["removed"]) for b in report["buckets"]}
    assert counts == {_bucket(relay, "incoming"): (4, 0, 4), _bucket(relay, "attachments"): (1, 1, 2)}
    assert report["stack_status"] == "DELETE_COMPLETE"


def test_without_a_terminal_and_without_yes_it_refuses_and_changes_nothing(
    relay: Relay, aws: dict[str, Any]
) -> None:
    rule_set = _deploy(relay, aws, f"{NAME}-rules")

    code, out, err = relay.run("teardown", "--stack", NAME)

    assert code == 1
    assert out == ""
    assert "refusing without confirmation (stdin is not a terminal; pass --yes)" in err
    assert "6 object(s) in 2 bucket(s)" in err
    assert f"deactivate receipt rule set {rule_set}" in err
    assert err.count("\n") == 1
    assert _active(aws) == rule_set
    assert _stack_status(aws) == "CREATE_COMPLETE"
    listed = aws["s3"].list_objects_v2(Bucket=_bucket(relay, "incoming"))
    assert listed["KeyCount"] == 4


def test_at_a_terminal_it_asks_and_a_no_changes_nothing(
    relay: Relay, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rule_set = _deploy(relay, aws, f"{NAME}-rules")
    monkeypatch.setattr("sys.stdin", _Stdin("n\n", tty=True))

    code, _, err = relay.run("teardown", "--stack", NAME)

    assert code == 1
    assert f"empty bucket {_bucket(relay, 'incoming')}: 4 object(s)" in err
    assert f"This deletes 6 object(s) in 2 bucket(s) and stack {NAME} for good. Go ahead? [y/N]" in err
    assert "cancelled: nothing was changed" in err
    assert (_active(aws), _stack_status(aws)) == (rule_set, "CREATE_COMPLETE")

    monkeypatch.setattr("sys.stdin", _Stdin("yes\n", tty=True))
    code, out, _ = relay.run("teardown", "--stack", NAME)
    assert code == 0
    assert f"deleted stack {NAME}" in out
    assert _stack_status(aws) is None


def test_a_rule_in_an_existing_set_is_disabled_and_the_set_left_active(
    relay: Relay, aws: dict[str, Any]
) -> None:
    ses = aws["ses"]
    ses.create_receipt_rule_set(RuleSetName="corporate-mail")
    ses.create_receipt_rule(
        RuleSetName="corporate-mail",
        Rule={"Name": "sales", "Enabled": True, "Recipients": ["sales@example.com"]},
    )
    ses.set_active_receipt_rule_set(RuleSetName="corporate-mail")
    _deploy(relay, aws, "corporate-mail", owned="false")

    report = relay.run_json("teardown", "--stack", NAME, "--yes")

    assert report["receipt_rule"]["action"] == "disable"
    assert _active(aws) == "corporate-mail"
    rules = {
        r["Name"]: r["Enabled"] for r in ses.describe_receipt_rule_set(RuleSetName="corporate-mail")["Rules"]
    }
    assert rules == {"sales": True, f"{NAME}-store": False}  # in AWS the stack's deletion removes it
    assert _stack_status(aws) is None


def test_an_own_set_holding_other_rules_is_refused_without_force(relay: Relay, aws: dict[str, Any]) -> None:
    rule_set = _deploy(relay, aws, f"{NAME}-rules")
    aws["ses"].create_receipt_rule(
        RuleSetName=rule_set, Rule={"Name": "moved-in", "Enabled": True, "Recipients": ["x@example.com"]}
    )

    code, _, err = relay.run("teardown", "--stack", NAME, "--yes")

    assert code == 1
    assert "also holds rules the stack did not make (moved-in)" in err
    assert _stack_status(aws) == "CREATE_COMPLETE"
    assert relay.run("teardown", "--stack", NAME, "--yes", "--force")[0] == 0
    assert _stack_status(aws) is None


def test_a_stack_without_outputs_is_torn_down_from_its_resources(relay: Relay, aws: dict[str, Any]) -> None:
    """A deploy that failed before writing outputs: the buckets come from the stack's resources."""
    _deploy(relay, aws, f"{NAME}-rules", outputs=False)

    report = relay.run_json("teardown", "--stack", NAME, "--yes")

    assert sorted(b["bucket"] for b in report["buckets"]) == sorted(
        [_bucket(relay, "attachments"), _bucket(relay, "incoming")]
    )
    assert {_bucket(relay, "incoming"), _bucket(relay, "attachments")}.isdisjoint(_buckets(aws))
    assert _stack_status(aws) is None


def test_leftover_buckets_of_a_failed_first_deploy_are_found_by_prefix(
    relay: Relay, aws: dict[str, Any]
) -> None:
    s3 = aws["s3"]
    incoming = _bucket(relay, "incoming")
    s3.create_bucket(Bucket=incoming)
    s3.put_bucket_versioning(Bucket=incoming, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=incoming, Key="incoming/AMAZON_SES_SETUP_NOTIFICATION", Body=b"v1")
    s3.put_object(Bucket=incoming, Key="incoming/AMAZON_SES_SETUP_NOTIFICATION", Body=b"v2")
    s3.delete_object(Bucket=incoming, Key="incoming/AMAZON_SES_SETUP_NOTIFICATION")  # a delete marker

    code, _, err = relay.run("teardown", "--stack", NAME, "--yes")
    assert code == 1
    assert f"stack {NAME!r} does not exist" in err
    assert "--bucket-prefix" in err

    report = relay.run_json("teardown", "--stack", NAME, "--bucket-prefix", PREFIX, "--yes")

    assert report["stack"] is None
    assert report["buckets"] == [
        {
            "bucket": incoming,
            "versioned": True,
            "objects": 3,
            "uploads": 0,
            "removed": 3,
            "bucket_deleted": True,
        }
    ]
    assert incoming not in _buckets(aws)
    assert relay.run("teardown", "--bucket-prefix", PREFIX, "--yes")[1].startswith("nothing to tear down")


class _TaggedS3:
    """moto's S3, with the system tag CloudFormation puts on the buckets it creates (which moto's
    CloudFormation does not set and its S3 refuses from a caller)."""

    def __init__(self, real: Any, stack_id: str) -> None:
        self._real, self._stack_id = real, stack_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def get_bucket_tagging(self, **kwargs: Any) -> dict[str, Any]:
        return {"TagSet": [{"Key": "aws:cloudformation:stack-id", "Value": self._stack_id}]}


def test_a_bucket_another_live_stack_holds_is_not_touched(
    relay: Relay, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = aws["cloudformation"].create_stack(
        StackName="someone-else", TemplateBody=json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
    )["StackId"]
    incoming = _bucket(relay, "incoming")
    aws["s3"].create_bucket(Bucket=incoming)
    aws["s3"].put_object(Bucket=incoming, Key="incoming/x", Body=b"mail")
    original = Aws.client

    def client(self: Aws, service: str, attempts: int = 5) -> Any:
        real = original(self, service, attempts)
        return _TaggedS3(real, other) if service == "s3" else real

    monkeypatch.setattr(Aws, "client", client)

    code, _, err = relay.run("teardown", "--bucket-prefix", PREFIX, "--yes")

    assert code == 1
    assert f"bucket {incoming} belongs to stack 'someone-else'" in err
    assert aws["s3"].list_objects_v2(Bucket=incoming)["KeyCount"] == 1


def test_a_stack_in_the_middle_of_an_operation_is_left_alone(
    relay: Relay, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _deploy(relay, aws, f"{NAME}-rules")
    real = resources.describe_stack

    def updating(aws_: Any, stack: str) -> dict[str, Any] | None:
        found = real(aws_, stack)
        return None if found is None else {**found, "StackStatus": "UPDATE_IN_PROGRESS"}

    monkeypatch.setattr("relayctl.teardown.describe_stack", updating)
    code, _, err = relay.run("teardown", "--stack", NAME, "--yes")

    assert code == 1
    assert "is UPDATE_IN_PROGRESS; wait for that to finish" in err
    assert _active(aws) == f"{NAME}-rules"


class _FailingDeletion:
    """moto's CloudFormation, with a deletion that fails the way AWS reports it: the stack in
    DELETE_FAILED and the resource that could not go marked with its reason."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.deleting = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def delete_stack(self, **kwargs: Any) -> dict[str, Any]:
        self.deleting = True
        return {}

    def describe_stacks(self, **kwargs: Any) -> dict[str, Any]:
        stacks = self._real.describe_stacks(**kwargs)
        if self.deleting:
            stacks["Stacks"][0]["StackStatus"] = "DELETE_FAILED"
        return dict(stacks)

    def get_paginator(self, name: str) -> Any:
        paginator = self._real.get_paginator(name)
        if not self.deleting:
            return paginator

        class _Failed:
            def paginate(self, **kwargs: Any) -> Any:
                for page in paginator.paginate(**kwargs):
                    for resource in page["StackResourceSummaries"]:
                        if resource["LogicalResourceId"] == "AttachmentsBucket":
                            resource["ResourceStatus"] = "DELETE_FAILED"
                            resource["ResourceStatusReason"] = "The bucket you tried to delete is not empty"
                    yield page

        return _Failed()


def test_a_failed_deletion_names_the_resource_and_exits_1(
    relay: Relay, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _deploy(relay, aws, f"{NAME}-rules")
    original = Aws.client
    made: dict[int, Any] = {}

    def client(self: Aws, service: str, attempts: int = 5) -> Any:
        real = original(self, service, attempts)
        if service != "cloudformation":
            return real
        return made.setdefault(id(real), _FailingDeletion(real))

    monkeypatch.setattr(Aws, "client", client)
    code, out, _ = relay.run("teardown", "--stack", NAME, "--yes")

    assert code == 1
    assert f"deleting stack {NAME} failed; fix what is listed, then run teardown again:" in out
    assert "AttachmentsBucket (AWS::S3::Bucket): The bucket you tried to delete is not empty" in out


def test_no_wait_returns_once_the_deletion_started(relay: Relay, aws: dict[str, Any]) -> None:
    _deploy(relay, aws, f"{NAME}-rules")
    report = relay.run_json("teardown", "--stack", NAME, "--yes", "--no-wait")
    assert report["stack_status"] == "DELETE_IN_PROGRESS"


def _args(rule_set: str | None = None) -> Any:
    return type("Args", (), {"rule_set": rule_set})()


def _summary(kind: str, physical_id: str) -> dict[str, str]:
    return {"ResourceType": kind, "PhysicalResourceId": physical_id, "ResourceStatus": "CREATE_COMPLETE"}


@pytest.mark.parametrize(
    ("stack", "resources", "expected"),
    [
        (  # the template's outputs
            {
                "Outputs": [
                    {"OutputKey": "ReceiptRuleSetName", "OutputValue": "corporate-mail"},
                    {"OutputKey": "ReceiptRuleName", "OutputValue": "relay-store"},
                    {"OutputKey": "ReceiptRuleSetOwned", "OutputValue": "false"},
                ]
            },
            [],
            ("corporate-mail", "relay-store", False),
        ),
        (  # a stack from before ReceiptRuleSetOwned and ReceiptRuleName: its own set
            {"Outputs": [{"OutputKey": "ReceiptRuleSetName", "OutputValue": "relay-rules"}]},
            [_summary("AWS::SES::ReceiptRule", "relay-store")],
            ("relay-rules", "relay-store", True),
        ),
        (  # a failed deploy without outputs: its resources
            {"Parameters": [{"ParameterKey": "ExistingRuleSetName", "ParameterValue": ""}]},
            [
                _summary("AWS::SES::ReceiptRuleSet", "relay-rules"),
                _summary("AWS::SES::ReceiptRule", "relay-store"),
            ],
            ("relay-rules", "relay-store", True),
        ),
        (  # a failed deploy into an existing set: the set from its parameter
            {"Parameters": [{"ParameterKey": "ExistingRuleSetName", "ParameterValue": "corporate-mail"}]},
            [_summary("AWS::SES::ReceiptRule", "relay-store")],
            ("corporate-mail", "relay-store", False),
        ),
    ],
    ids=["outputs", "older-outputs", "resources", "existing-set-parameter"],
)
def test_the_stacks_rule_is_found_with_or_without_outputs(
    stack: dict[str, Any], resources: list[dict[str, str]], expected: tuple[str, str, bool]
) -> None:
    rule = teardown.find_receipt_rule(_args(), stack, resources)
    assert rule is not None
    assert (rule.rule_set, rule.rule, rule.owned) == expected


def test_a_stack_that_made_no_rule_has_none() -> None:
    assert teardown.find_receipt_rule(_args(), {"Outputs": []}, []) is None


def test_the_stack_comes_from_relayctl_stack_as_for_every_command(
    relay: Relay, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _deploy(relay, aws, f"{NAME}-rules")
    monkeypatch.setenv("RELAYCTL_STACK", NAME)
    assert relay.run_json("teardown", "--yes")["stack"] == NAME
    assert _stack_status(aws) is None


# ---------------------------------------------------------------- SAM's image repositories
IMAGE_FUNCTIONS = ("RelayFunction", "DownloadFunction")


def _repository(function: str) -> str:
    """The repository name SAM gives an image function of stack NAME (data_types.ECRRepo.physical_id)."""
    escaped = "".join(c for c in NAME.lower() if c.isalnum())
    stack_hash = hashlib.md5(NAME.encode(), usedforsecurity=False).hexdigest()[:8]
    function_hash = hashlib.md5(function.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{escaped}{stack_hash}/{function.lower()}{function_hash}repo"


def _image(ecr: Any, repository: str, tag: str, config: str) -> None:
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1,
            "digest": "sha256:" + hashlib.sha256(config.encode()).hexdigest(),
        },
        "layers": [  # moto derives the image digest from these
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": 1,
                "digest": "sha256:" + hashlib.sha256(f"layer of {config}".encode()).hexdigest(),
            }
        ],
    }
    ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag)


def _companion(relay: Relay, aws: dict[str, Any], description: str = images.DESCRIPTION) -> str:
    """The companion stack `sam deploy` makes for NAME: one repository per image function, each
    holding the image of two deploys (the second under two tags)."""
    body = {
        "Description": description,
        "Resources": {
            f"{function}Repo": {
                "Type": "AWS::ECR::Repository",
                "Properties": {"RepositoryName": _repository(function)},
            }
            for function in IMAGE_FUNCTIONS
        },
    }
    name = images.companion_name(NAME)
    aws["cloudformation"].create_stack(StackName=name, TemplateBody=json.dumps(body))
    ecr = boto3.client("ecr", region_name=relay.region)
    for function in IMAGE_FUNCTIONS:
        _image(ecr, _repository(function), "python3.12-v1-aaaa", "first deploy")
        _image(ecr, _repository(function), "python3.12-v1-bbbb", "second deploy")
        _image(ecr, _repository(function), "python3.12-v1", "second deploy")  # one image, two tags
    return name


def _repositories(relay: Relay) -> set[str]:
    ecr = boto3.client("ecr", region_name=relay.region)
    return {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]}


def test_the_companion_name_is_sams() -> None:
    # aws-sam-cli data_types.CompanionStack: name[:104], "-", md5(name)[:8], "-CompanionStack"
    assert images.companion_name("iot-mail-relay") == (
        f"iot-mail-relay-{hashlib.md5(b'iot-mail-relay', usedforsecurity=False).hexdigest()[:8]}-CompanionStack"
    )
    long = "r" * 128
    assert (
        images.companion_name(long)
        == f"{'r' * 104}-{hashlib.md5(long.encode(), usedforsecurity=False).hexdigest()[:8]}-CompanionStack"
    )
    assert len(images.companion_name(long)) == 128  # CloudFormation's limit for a stack name


def test_teardown_empties_and_deletes_sams_image_repositories_after_the_stack(
    relay: Relay, aws: dict[str, Any]
) -> None:
    _deploy(relay, aws, f"{NAME}-rules")
    companion = _companion(relay, aws)

    code, out, err = relay.run("teardown", "--stack", NAME, "--yes")

    assert (code, err) == (0, "")
    assert _stack_status(aws) is None
    with pytest.raises(aws["cloudformation"].exceptions.ClientError):
        aws["cloudformation"].describe_stacks(StackName=companion)
    assert {_repository(f) for f in IMAGE_FUNCTIONS}.isdisjoint(_repositories(relay))
    lines = out.splitlines()
    assert lines.index(f"deleted stack {NAME}") < lines.index(f"deleted stack {companion}")
    for function in IMAGE_FUNCTIONS:
        assert f"emptied image repository {_repository(function)}: 2 removed" in lines


def test_the_dry_run_shows_every_step_and_changes_nothing(relay: Relay, aws: dict[str, Any]) -> None:
    rule_set = _deploy(relay, aws, f"{NAME}-rules")
    companion = _companion(relay, aws)

    code, out, err = relay.run("teardown", "--stack", NAME, "--dry-run")  # no --yes, no terminal

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"would deactivate receipt rule set {rule_set} (it is the active one)",
        f"would empty bucket {_bucket(relay, 'incoming')}: 4 object(s)",
        f"would empty bucket {_bucket(relay, 'attachments')}: 1 object(s), 1 unfinished upload(s)",
        f"would delete stack {NAME} (CREATE_COMPLETE)",
        f"would empty image repository {_repository('RelayFunction')}: 2 image(s)",
        f"would empty image repository {_repository('DownloadFunction')}: 2 image(s)",
        f"would delete stack {companion} (SAM's image repositories)",
        f"would delete for good: 6 object(s) in 2 bucket(s) and stack {NAME}, 4 image(s) and stack {companion}"
        " (nothing was changed)",
    ]
    report = relay.run_json("teardown", "--stack", NAME, "--dry-run")
    assert report["dry_run"] is True
    assert report["companion_stack"]["stack"] == companion
    assert (_active(aws), _stack_status(aws)) == (rule_set, "CREATE_COMPLETE")
    assert {_repository(f) for f in IMAGE_FUNCTIONS} <= _repositories(relay)
    ecr = boto3.client("ecr", region_name=relay.region)
    assert len(ecr.list_images(repositoryName=_repository("RelayFunction"))["imageIds"]) == 3
    assert aws["s3"].list_objects_v2(Bucket=_bucket(relay, "incoming"))["KeyCount"] == 4


def test_a_companion_left_behind_by_a_deleted_stack_is_removed(relay: Relay, aws: dict[str, Any]) -> None:
    """What `sam delete` cannot do once the stack is gone: it looks for the companion only after it."""
    companion = _companion(relay, aws)

    report = relay.run_json("teardown", "--stack", NAME, "--yes")

    assert report["stack"] is None
    assert report["companion_stack"]["stack"] == companion
    assert [r["removed"] for r in report["companion_stack"]["repositories"]] == [2, 2]
    assert report["companion_stack_status"] == "DELETE_COMPLETE"
    assert {_repository(f) for f in IMAGE_FUNCTIONS}.isdisjoint(_repositories(relay))
    assert relay.run("teardown", "--stack", NAME, "--yes")[0] == 1  # now nothing is left: says so


def test_after_a_failed_deletion_the_image_repositories_stay_for_the_next_run(
    relay: Relay, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _deploy(relay, aws, f"{NAME}-rules")
    companion = _companion(relay, aws)
    original = Aws.client
    made: dict[int, Any] = {}

    def client(self: Aws, service: str, attempts: int = 5) -> Any:
        real = original(self, service, attempts)
        return made.setdefault(id(real), _FailingDeletion(real)) if service == "cloudformation" else real

    monkeypatch.setattr(Aws, "client", client)
    code, out, _ = relay.run("teardown", "--stack", NAME, "--yes")

    assert code == 1
    assert f"left stack {companion} (the image repositories) for the next run" in out
    ecr = boto3.client("ecr", region_name=relay.region)
    assert len(ecr.list_images(repositoryName=_repository("RelayFunction"))["imageIds"]) == 3


def test_a_stack_with_the_companions_name_that_sam_did_not_make_is_not_touched(
    relay: Relay, aws: dict[str, Any]
) -> None:
    _deploy(relay, aws, f"{NAME}-rules")
    companion = _companion(relay, aws, description="someone else's")

    code, _, err = relay.run("teardown", "--stack", NAME, "--yes")

    assert code == 1
    assert f"stack {companion} has the name of the stack's image repositories but is not described" in err
    assert _stack_status(aws) == "CREATE_COMPLETE"


def test_no_wait_leaves_the_image_repositories_until_a_run_after_the_stack_is_gone(
    relay: Relay, aws: dict[str, Any]
) -> None:
    """The relay's deletion may still fail, and its functions run from those images until it is gone."""
    _deploy(relay, aws, f"{NAME}-rules")
    companion = _companion(relay, aws)

    code, out, err = relay.run("teardown", "--stack", NAME, "--yes", "--no-wait")

    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == (
        f"left stack {companion} (the image repositories): the relay's stack is still being deleted;"
        " once it is gone, run teardown again to remove the image repositories"
    )
    ecr = boto3.client("ecr", region_name=relay.region)
    for function in IMAGE_FUNCTIONS:
        assert len(ecr.list_images(repositoryName=_repository(function))["imageIds"]) == 3
    status = aws["cloudformation"].describe_stacks(StackName=companion)["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE"

    assert _stack_status(aws) is None  # moto deleted the relay's stack at once; AWS takes minutes
    again = relay.run_json("teardown", "--stack", NAME, "--yes", "--no-wait")
    assert again["stack"] is None
    assert [r["removed"] for r in again["companion_stack"]["repositories"]] == [2, 2]
    assert again["companion_stack_status"] == "DELETE_IN_PROGRESS"
    assert {_repository(f) for f in IMAGE_FUNCTIONS}.isdisjoint(_repositories(relay))


def test_no_wait_reports_the_untouched_companion_in_json(relay: Relay, aws: dict[str, Any]) -> None:
    _deploy(relay, aws, f"{NAME}-rules")
    _companion(relay, aws)
    report = relay.run_json("teardown", "--stack", NAME, "--yes", "--no-wait")
    assert (report["stack_status"], report["companion_stack_status"]) == (
        "DELETE_IN_PROGRESS",
        "CREATE_COMPLETE",
    )
    assert [r["removed"] for r in report["companion_stack"]["repositories"]] == [0, 0]
