"""Reading a SAM template into the sandbox's blueprint: parameters, intrinsics, conditions, event source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.template import TemplateError, load

pytestmark = pytest.mark.unit

MINI = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Recipient:
    Type: String
  Limit:
    Type: Number
    Default: 50
    MinValue: 1
    MaxValue: 100
  Mode:
    Type: String
    Default: a
    AllowedValues: [a, b]
  ConfigSet:
    Type: String
    Default: ""
Conditions:
  HasConfigSet: !Not [!Equals [!Ref ConfigSet, ""]]
Resources:
  Inbox:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${AWS::StackName}-inbox-${AWS::AccountId}"
      NotificationConfiguration:
        QueueConfigurations:
          - Event: s3:ObjectCreated:*
            Queue: !GetAtt Work.Arn
            Filter: {S3Key: {Rules: [{Name: prefix, Value: in/}]}}
  Work:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 60
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Dead.Arn, maxReceiveCount: 3}
  Dead:
    Type: AWS::SQS::Queue
  Notices:
    Type: AWS::SNS::Topic
  Optional:
    Type: AWS::SNS::Topic
    Condition: HasConfigSet
  Rule:
    Type: AWS::SES::ReceiptRule
    Properties:
      RuleSetName: rules
      Rule:
        Recipients: [!Ref Recipient]
        ScanEnabled: true
        Actions: [{S3Action: {BucketName: !Ref Inbox, ObjectKeyPrefix: in/}}]
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      PackageType: Image
      Timeout: 30
      Environment:
        Variables:
          INCOMING_BUCKET: !Ref Inbox
          TOPIC: !Ref Notices
          QUEUE_NAME: !GetAtt Work.QueueName
          LIMIT: !Ref Limit
          JOINED: !Join ["/", [!Ref Mode, !Select [1, !Split ["@", !Ref Recipient]]]]
          CONFIG_SET: !If [HasConfigSet, !Ref ConfigSet, !Ref AWS::NoValue]
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt Work.Arn
            BatchSize: 7
            MaximumBatchingWindowInSeconds: 2
            FunctionResponseTypes: [ReportBatchItemFailures]
  Backlog:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Dimensions: [{Name: QueueName, Value: !GetAtt Dead.QueueName}]
      Statistic: Maximum
      Period: 60
      EvaluationPeriods: 1
      Threshold: !Ref Limit
      ComparisonOperator: GreaterThanThreshold
"""


@pytest.fixture
def template(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(MINI)
    return path


def test_names_and_references_resolve_like_one_stack(template: Path) -> None:
    b = load(template, {"Recipient": "in@relay.example.com"}, stack_name="st")
    env = b.function.environment
    assert env["INCOMING_BUCKET"] == "st-inbox-123456789012"
    assert env["TOPIC"] == "arn:aws:sns:us-east-1:123456789012:st-Notices"
    assert env["QUEUE_NAME"] == "st-Work"
    assert env["LIMIT"] == "50"
    assert env["JOINED"] == "a/relay.example.com"
    assert "CONFIG_SET" not in env  # Fn::If to AWS::NoValue removes the variable
    assert [t.name for t in b.topics] == ["st-Notices"]  # the conditional topic does not exist


def test_queue_redrive_event_source_and_receipt_rule(template: Path) -> None:
    b = load(template, {"Recipient": "In@Relay.example.com"})
    assert b.inbound_queue.attributes["VisibilityTimeout"] == "60"
    assert b.inbound_queue.max_receive_count == 3
    assert b.dead_letter_queue is not None
    assert b.dead_letter_queue.logical_id == "Dead"
    assert (b.event_source.batch_size, b.event_source.window_seconds) == (7, 2)
    assert b.event_source.report_batch_item_failures
    assert b.function.timeout_seconds == 30
    assert b.recipients == ("in@relay.example.com",)
    assert b.incoming_prefix == "in/"
    (inbox,) = [bucket for bucket in b.buckets if bucket.logical_id == "Inbox"]
    (notification,) = inbox.queue_notifications
    assert notification["QueueArn"] == b.inbound_queue.arn
    assert notification["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "in/"}]
    assert json.loads(b.inbound_queue.attributes["RedrivePolicy"])["deadLetterTargetArn"] == b.queues[1].arn


def test_overrides_change_the_environment_the_alarm_and_conditions(template: Path) -> None:
    b = load(template, {"Recipient": "in@relay.example.com", "Limit": "7", "ConfigSet": "cs", "Mode": "b"})
    assert b.function.environment["LIMIT"] == "7"
    assert b.function.environment["CONFIG_SET"] == "cs"
    assert b.function.environment["JOINED"].startswith("b/")
    assert b.alarms[0].threshold == 7.0
    assert b.alarms[0].dimensions == {"QueueName": "sandbox-Dead"}
    assert len(b.topics) == 2


def test_fallbacks_fill_parameters_without_defaults_only(template: Path) -> None:
    b = load(template, {}, {"Recipient": "fallback@relay.example.com", "Limit": "9"})
    assert b.recipients == ("fallback@relay.example.com",)
    assert b.function.environment["LIMIT"] == "50"
    with pytest.raises(TemplateError, match="Recipient has no default"):
        load(template, {})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"Nope": "1"}, "unknown parameter"),
        ({"Limit": "0"}, "below"),
        ({"Limit": "x"}, "not a number"),
        ({"Mode": "c"}, "not one of"),
    ],
)
def test_overrides_are_checked_like_cloudformation(
    template: Path, override: dict[str, str], message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        load(template, {"Recipient": "in@relay.example.com", **override})


def test_what_is_not_emulated_is_listed(template: Path) -> None:
    b = load(template, {"Recipient": "in@relay.example.com"})
    assert "FnRole (AWS::IAM::Role)" in b.not_emulated
