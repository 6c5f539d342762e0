"""Create the blueprint's resources in moto, through the same APIs CloudFormation would call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sandbox.template import Blueprint, Queue, Secret

NOTICES_QUEUE = "sandbox-fallback-notices"  # the sandbox's own window on the fallback topic


@dataclass(frozen=True)
class Provisioned:
    queue_urls: dict[str, str]  # logical id -> URL
    notices_queue_url: str

    def url(self, queue: Queue) -> str:
        return self.queue_urls[queue.logical_id]


def provision(
    blueprint: Blueprint, clients: Any, visibility_timeout: int | None = None, notices_topic_arn: str = ""
) -> Provisioned:
    """`clients(service)` returns a boto3 client for the endpoint; returns the URLs the sandbox polls.

    `visibility_timeout` overrides the inbound queue's (tests make redelivery fast); everything else is
    the template's.
    """
    sqs, s3, sns = clients("sqs"), clients("s3"), clients("sns")
    urls: dict[str, str] = {}
    # Dead-letter queues first: a redrive policy must point at an existing queue.
    for queue in sorted(blueprint.queues, key=lambda q: q.dead_letter_arn is not None):
        attributes = dict(queue.attributes)
        if visibility_timeout is not None and queue.arn == blueprint.event_source.queue_arn:
            attributes["VisibilityTimeout"] = str(visibility_timeout)
        urls[queue.logical_id] = sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
    for topic in blueprint.topics:
        sns.create_topic(Name=topic.name, Attributes=topic.attributes)
    for bucket in blueprint.buckets:
        s3.create_bucket(Bucket=bucket.name)
        if bucket.queue_notifications:
            s3.put_bucket_notification_configuration(
                Bucket=bucket.name,
                NotificationConfiguration={"QueueConfigurations": bucket.queue_notifications},
            )
    for secret in blueprint.secrets:
        secretsmanager = clients("secretsmanager")
        secretsmanager.create_secret(Name=secret.name, SecretString=_secret_string(secretsmanager, secret))
    environment = blueprint.function.environment
    # SES sends only from verified identities; moto verifies on request, as a verified account would be.
    clients("ses").verify_email_identity(EmailAddress=environment["SENDER_EMAIL"])
    configuration_set = environment.get("CONFIGURATION_SET_NAME", "")
    if configuration_set:
        clients("sesv2").create_configuration_set(ConfigurationSetName=configuration_set)

    notices_url = sqs.create_queue(QueueName=NOTICES_QUEUE)["QueueUrl"]
    notices_arn = sqs.get_queue_attributes(QueueUrl=notices_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    topic_arn = notices_topic_arn or environment["FALLBACK_TOPIC_ARN"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=notices_arn)
    sqs.set_queue_attributes(
        QueueUrl=notices_url,
        Attributes={
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sns.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": notices_arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                        }
                    ],
                }
            )
        },
    )
    return Provisioned(queue_urls=urls, notices_queue_url=notices_url)


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
