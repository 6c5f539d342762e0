"""Create a blueprint's resources in moto through the APIs CloudFormation itself calls, in the order its
references need (dead-letter queues before the queues that name them, queues before the bucket
notifications that target them). Then the account's own prerequisites that no stack creates: the sender
identity SES sends from, verified, and the configuration set the function names.

`clients(service)` returns a boto3 client: of `mock_aws` in process, or of moto's server.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

from localaws.blueprint import Blueprint, Bucket, Secret, Table

Clients = Callable[[str], Any]


def provision(
    blueprint: Blueprint, clients: Clients, visibility_timeout: int | None = None
) -> dict[str, str]:
    """Create everything; returns each queue's URL by logical id. `visibility_timeout` overrides the
    inbound queue's (tests make redelivery fast); everything else is the template's."""
    urls = _queues(blueprint, clients("sqs"), visibility_timeout)
    sns = clients("sns")
    for topic in blueprint.topics:
        sns.create_topic(Name=topic.name, Attributes=topic.attributes)
    for subscription in blueprint.subscriptions:
        sns.subscribe(
            TopicArn=subscription.topic_arn, Protocol=subscription.protocol, Endpoint=subscription.endpoint
        )
    for bucket in blueprint.buckets:
        _bucket(clients("s3"), bucket, blueprint.region)
    for secret in blueprint.secrets:
        secretsmanager = clients("secretsmanager")
        secretsmanager.create_secret(Name=secret.name, SecretString=_secret_string(secretsmanager, secret))
    for table in blueprint.tables:
        _table(clients("dynamodb"), table)
    _monitoring(blueprint, clients)
    _ses(blueprint, clients)
    _stack(blueprint, clients("cloudformation"))
    return urls


def _queues(blueprint: Blueprint, sqs: Any, visibility_timeout: int | None) -> dict[str, str]:
    urls: dict[str, str] = {}
    for queue in sorted(blueprint.queues, key=lambda q: q.dead_letter_arn is not None):
        attributes = dict(queue.attributes)
        if visibility_timeout is not None and queue.arn == blueprint.event_source.queue_arn:
            attributes["VisibilityTimeout"] = str(visibility_timeout)
        urls[queue.logical_id] = sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
    return urls


def _bucket(s3: Any, bucket: Bucket, region: str) -> None:
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket.name, **location)
    if bucket.encryption:
        s3.put_bucket_encryption(
            Bucket=bucket.name, ServerSideEncryptionConfiguration={"Rules": bucket.encryption}
        )
    if bucket.public_access_block:
        s3.put_public_access_block(
            Bucket=bucket.name, PublicAccessBlockConfiguration=bucket.public_access_block
        )
    if bucket.lifecycle_rules:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket.name, LifecycleConfiguration={"Rules": bucket.lifecycle_rules}
        )
    if bucket.queue_notifications:
        s3.put_bucket_notification_configuration(
            Bucket=bucket.name, NotificationConfiguration={"QueueConfigurations": bucket.queue_notifications}
        )


def _table(dynamodb: Any, table: Table) -> None:
    dynamodb.create_table(**table.create)
    if table.ttl_attribute:
        dynamodb.update_time_to_live(
            TableName=table.name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
        )
    if table.point_in_time_recovery:
        dynamodb.update_continuous_backups(
            TableName=table.name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )


def _monitoring(blueprint: Blueprint, clients: Clients) -> None:
    if blueprint.alarms:
        cloudwatch = clients("cloudwatch")
        for alarm in blueprint.alarms:
            if not alarm.metric:
                continue  # metric math: neither created nor evaluated locally
            cloudwatch.put_metric_alarm(
                AlarmName=alarm.name,
                Namespace=alarm.namespace,
                MetricName=alarm.metric,
                Dimensions=[{"Name": k, "Value": v} for k, v in alarm.dimensions.items()],
                Statistic=alarm.statistic,
                Period=alarm.period_seconds,
                EvaluationPeriods=alarm.evaluation_periods,
                Threshold=alarm.threshold,
                ComparisonOperator=alarm.comparison,
                AlarmActions=list(alarm.actions),
            )
        for dashboard in blueprint.dashboards:
            cloudwatch.put_dashboard(DashboardName=dashboard.name, DashboardBody=dashboard.body)
    if blueprint.log_groups:
        logs = clients("logs")
        for group in blueprint.log_groups:
            logs.create_log_group(logGroupName=group.name)
            if group.retention_days is not None:
                logs.put_retention_policy(logGroupName=group.name, retentionInDays=group.retention_days)


def _ses(blueprint: Blueprint, clients: Clients) -> None:
    ses = clients("ses")
    for rule_set in blueprint.rule_sets:
        ses.create_receipt_rule_set(RuleSetName=rule_set.name)
    rule = blueprint.receipt_rule
    if rule is not None:
        if rule.rule_set not in {s.name for s in blueprint.rule_sets}:
            # It joins a set the operator has (ExistingRuleSetName): that set exists in a real account.
            ses.create_receipt_rule_set(RuleSetName=rule.rule_set)
        ses.create_receipt_rule(
            RuleSetName=rule.rule_set,
            Rule={
                "Name": rule.name,
                "Enabled": True,
                "TlsPolicy": rule.tls_policy,
                "Recipients": list(rule.recipients),
                "ScanEnabled": rule.scan_enabled,
                "Actions": [{"S3Action": {"BucketName": rule.bucket, "ObjectKeyPrefix": rule.prefix}}],
            },
        )
    environment = blueprint.process_environment()
    # SES sends only from verified identities; moto verifies on request, as a verified account would be.
    if environment.get("SENDER_EMAIL"):
        ses.verify_email_identity(EmailAddress=environment["SENDER_EMAIL"])
    if environment.get("CONFIGURATION_SET_NAME"):
        clients("sesv2").create_configuration_set(ConfigurationSetName=environment["CONFIGURATION_SET_NAME"])


def _stack(blueprint: Blueprint, cloudformation: Any) -> None:
    """The stack itself, holding the template's Outputs, so tools that find the resources through the
    stack (relayctl --stack) find this account's. Its one resource is a placeholder: the resources are
    the ones created above."""
    body = {
        "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {name: {"Value": value} for name, value in blueprint.outputs.items()},
    }
    with warnings.catch_warnings():  # moto warns that it models no placeholder
        warnings.simplefilter("ignore", UserWarning)
        cloudformation.create_stack(StackName=blueprint.stack_name, TemplateBody=json.dumps(body))


# GenerateSecretString's password options, as Secrets Manager's GetRandomPassword names them.
_PASSWORD_OPTIONS = (
    "PasswordLength",
    "ExcludeCharacters",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "ExcludeLowercase",
    "IncludeSpace",
    "RequireEachIncludedType",
)


def _secret_string(secretsmanager: Any, secret: Secret) -> str:
    """The secret's value: its SecretString, or GenerateSecretString done the way CloudFormation does it
    (a random password from Secrets Manager, put under GenerateStringKey of SecretStringTemplate)."""
    if secret.generate is None:
        return secret.secret_string or ""
    options = {k: secret.generate[k] for k in _PASSWORD_OPTIONS if k in secret.generate}
    password = str(secretsmanager.get_random_password(**options)["RandomPassword"])
    key = secret.generate.get("GenerateStringKey")
    if key is None:
        return password
    document = json.loads(secret.generate.get("SecretStringTemplate") or "{}")
    document[key] = password
    return json.dumps(document)
