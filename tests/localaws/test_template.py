"""Reading a SAM template into a blueprint: parameters, intrinsics, conditions, triggers; and a resource
added to a template appears in the local account without further code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localaws.account import in_process
from localaws.blueprint import TemplateError
from localaws.template import load

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
      ImageUri: 123456789012.dkr.ecr.us-east-1.amazonaws.com/fn:latest
      ImageConfig: {Command: [app.handler.lambda_handler]}
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


SKIPPED = """
  Uploads:
    Type: AWS::S3::Bucket
    Properties:
      NotificationConfiguration:
        TopicConfigurations: [{Event: s3:ObjectCreated:*, Topic: !Ref Notices}]
        LambdaConfigurations: [{Event: s3:ObjectRemoved:*, Function: !GetAtt Fn.Arn}]
  FromStream:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref Fn
      EventSourceArn: arn:aws:kinesis:us-east-1:123456789012:stream/readings
      StartingPosition: LATEST
  OnBounce:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [aws.ses]}
      Targets: [{Arn: !GetAtt Fn.Arn, Id: fn}]
  SecondRule:
    Type: AWS::SES::ReceiptRule
    Properties:
      RuleSetName: rules
      Rule:
        Actions: [{S3Action: {BucketName: !Ref Uploads}}]
"""


def test_what_the_reader_skips_in_an_emulated_resource_is_listed(tmp_path: Path) -> None:
    """A notification to a topic or a function, a mapping from a stream, an event-pattern rule, a
    second receipt rule and a rule's other actions: none runs here, and the banner says so."""
    path = tmp_path / "template.yaml"
    text = MINI.replace(
        "Actions: [{S3Action: {BucketName: !Ref Inbox, ObjectKeyPrefix: in/}}]",
        "Actions: [{S3Action: {BucketName: !Ref Inbox, ObjectKeyPrefix: in/}}, {SNSAction: {TopicArn: !Ref Notices}}]",
    )
    path.write_text(text + SKIPPED)
    b = load(path, {"Recipient": "in@relay.example.com"})
    assert {
        "Uploads (AWS::S3::Bucket: NotificationConfiguration.LambdaConfigurations)",
        "Uploads (AWS::S3::Bucket: NotificationConfiguration.TopicConfigurations)",
        "FromStream (AWS::Lambda::EventSourceMapping: an event source other than SQS)",
        "OnBounce (AWS::Events::Rule: an event pattern)",
        "SecondRule (AWS::SES::ReceiptRule: a second receipt rule)",
        "Rule (AWS::SES::ReceiptRule: its SNSAction)",
    } <= set(b.not_emulated)
    assert b.bucket("Uploads").queue_notifications == []
    assert [t.logical_id for t in b.queue_triggers] == ["FnQueue"]
    assert b.schedules == []
    assert b.receipt_rule is not None
    assert b.receipt_rule.logical_id == "Rule"


ADDED = """
  State:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: due, AttributeType: N}
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      GlobalSecondaryIndexes:
        - IndexName: by-due
          KeySchema: [{AttributeName: due, KeyType: HASH}]
          Projection: {ProjectionType: KEYS_ONLY}
      TimeToLiveSpecification: {AttributeName: expires, Enabled: true}
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
      SSESpecification: {SSEEnabled: true}
  Keys:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString: {SecretStringTemplate: '{"kid": "k0"}', GenerateStringKey: key, PasswordLength: 20}
  Clock:
    Type: AWS::Serverless::Function
    Properties:
      PackageType: Image
      ImageUri: 123456789012.dkr.ecr.us-east-1.amazonaws.com/fn:latest
      ImageConfig: {Command: [app.clock.lambda_handler]}
      Environment:
        Variables:
          TABLE: !Ref State
          LIMIT: !Ref Limit
      Events:
        EveryMinute:
          Type: Schedule
          Properties: {Schedule: rate(1 minute)}
"""


def test_a_table_a_secret_and_a_scheduled_function_added_to_the_template_appear(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(MINI + ADDED)
    b = load(path, {"Recipient": "in@relay.example.com"}, stack_name="st")
    (schedule,) = b.schedules
    assert (schedule.function_id, schedule.expression) == ("Clock", "rate(1 minute)")
    assert b.functions["Clock"].handler == "app.clock.lambda_handler"
    assert b.functions["Clock"].environment == {"TABLE": "st-State", "LIMIT": "50"}
    assert b.process_environment()["TABLE"] == "st-State"  # both functions' variables, for one process
    with in_process(b) as account:
        dynamodb = account.client("dynamodb")
        table = dynamodb.describe_table(TableName="st-State")["Table"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by-due"]
        assert table["SSEDescription"]["Status"] == "ENABLED"
        ttl = dynamodb.describe_time_to_live(TableName="st-State")["TimeToLiveDescription"]
        assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires")
        backups = dynamodb.describe_continuous_backups(TableName="st-State")["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
        secret = account.client("secretsmanager").get_secret_value(SecretId=b.secrets[0].arn)
        generated = json.loads(secret["SecretString"])
        assert generated["kid"] == "k0"
        assert len(generated["key"]) == 20


def test_functions_that_disagree_on_a_shared_variable_cannot_share_a_process(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(MINI + ADDED.replace("LIMIT: !Ref Limit", "LIMIT: '1'"))
    b = load(path, {"Recipient": "in@relay.example.com"})
    with pytest.raises(TemplateError, match="LIMIT differs between the functions"):
        b.process_environment()


def test_an_image_function_without_a_command_runs_its_dockerfiles_cmd(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    text = MINI.replace("      ImageConfig: {Command: [app.handler.lambda_handler]}\n", "")
    path.write_text(
        text.replace(
            "  Fn:\n    Type: AWS::Serverless::Function\n",
            "  Fn:\n    Type: AWS::Serverless::Function\n"
            "    Metadata: {Dockerfile: Dockerfile, DockerContext: .}\n",
        )
    )
    (tmp_path / "Dockerfile").write_text(
        'FROM scratch\nCMD ["first.handler"]\nCMD ["app.relay_main.handler"]\n'
    )
    assert load(path, {"Recipient": "in@relay.example.com"}).function.handler == "app.relay_main.handler"
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(TemplateError, match="has no CMD"):
        load(path, {"Recipient": "in@relay.example.com"})
