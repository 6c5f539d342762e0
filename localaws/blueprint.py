"""What one stack of the template creates, with every name and value resolved: plain data, no AWS.

`localaws.template` fills it from template.yaml; `localaws.provision` creates it in moto; the sandbox
runs its functions on their triggers (queue, function URL, schedule).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class TemplateError(ValueError):
    """The template (or a parameter override) cannot be turned into local resources."""


@dataclass(frozen=True)
class Queue:
    logical_id: str
    name: str
    arn: str
    attributes: dict[str, str]  # as CreateQueue takes them

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
    queue_notifications: list[dict[str, Any]] = field(default_factory=list)  # boto3 QueueConfigurations
    lifecycle_rules: list[dict[str, Any]] = field(default_factory=list)  # boto3 LifecycleConfiguration.Rules
    encryption: list[dict[str, Any]] = field(
        default_factory=list
    )  # boto3 ServerSideEncryptionConfiguration.Rules
    public_access_block: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Topic:
    logical_id: str
    name: str
    arn: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class Subscription:
    logical_id: str
    topic_arn: str
    protocol: str
    endpoint: str


@dataclass(frozen=True)
class Secret:
    """A secret the stack creates; GenerateSecretString is done at provisioning, as CloudFormation does."""

    logical_id: str
    name: str
    arn: str  # a partial ARN (no random suffix): Secrets Manager and moto accept it as SecretId
    secret_string: str | None
    generate: dict[str, Any] | None


@dataclass(frozen=True)
class Table:
    """A DynamoDB table: CreateTable's arguments, then its time-to-live and backup settings."""

    logical_id: str
    name: str
    arn: str
    create: dict[str, Any]  # CreateTable's keyword arguments, TableName included
    ttl_attribute: str | None = None
    point_in_time_recovery: bool = False


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
    evaluation_periods: int = 1


@dataclass(frozen=True)
class Dashboard:
    logical_id: str
    name: str
    body: str


@dataclass(frozen=True)
class LogGroup:
    logical_id: str
    name: str
    retention_days: int | None


@dataclass(frozen=True)
class Function:
    logical_id: str
    name: str
    arn: str
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int
    handler: str  # module.function: the image's Command (or the zip function's Handler)


@dataclass(frozen=True)
class QueueTrigger:
    """An SQS event source mapping: the queue feeds the function in batches."""

    logical_id: str
    function_id: str
    queue_arn: str
    batch_size: int
    window_seconds: int
    report_batch_item_failures: bool


@dataclass(frozen=True)
class UrlEndpoint:
    """A function behind a function URL, served on a local port."""

    logical_id: str
    function_id: str
    url: str


@dataclass(frozen=True)
class Schedule:
    """A scheduled EventBridge rule that invokes a function."""

    logical_id: str
    function_id: str
    expression: str  # rate(1 minute), cron(...)
    enabled: bool = True


@dataclass(frozen=True)
class RuleSet:
    """A receipt rule set the stack creates (without one, the rule joins an existing set)."""

    logical_id: str
    name: str


@dataclass(frozen=True)
class ReceiptRule:
    logical_id: str
    rule_set: str
    name: str
    recipients: tuple[str, ...]
    bucket: str
    prefix: str
    scan_enabled: bool
    tls_policy: str = "Optional"


@dataclass
class Blueprint:
    stack_name: str
    account_id: str
    region: str
    parameters: dict[str, str]
    queues: list[Queue] = field(default_factory=list)
    buckets: list[Bucket] = field(default_factory=list)
    topics: list[Topic] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)
    dashboards: list[Dashboard] = field(default_factory=list)
    log_groups: list[LogGroup] = field(default_factory=list)
    functions: dict[str, Function] = field(default_factory=dict)  # logical id -> function
    queue_triggers: list[QueueTrigger] = field(default_factory=list)
    endpoints: list[UrlEndpoint] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    rule_sets: list[RuleSet] = field(default_factory=list)
    receipt_rule: ReceiptRule | None = None
    outputs: dict[str, str] = field(default_factory=dict)  # the stack's Outputs, resolved
    # What the local account leaves out, "LogicalId (Type)" or "LogicalId (Type: the part left out)":
    # resources of types it does not create or run, and parts of emulated ones it skips.
    not_emulated: list[str] = field(default_factory=list)

    # -- the relay's own shape: one queue-fed function, at most one function URL -------------------
    @property
    def event_source(self) -> QueueTrigger:
        """The inbound queue's mapping (the template has exactly one; `template.load` checks it)."""
        return self.queue_triggers[0]

    @property
    def function(self) -> Function:
        """The function the inbound queue feeds: the relay."""
        return self.functions[self.event_source.function_id]

    @property
    def download(self) -> Function | None:
        """The function behind the function URL (the download links' endpoint), if any."""
        return self.functions[self.endpoints[0].function_id] if self.endpoints else None

    @property
    def download_url(self) -> str | None:
        return self.endpoints[0].url if self.endpoints else None

    def queue_by_arn(self, arn: str) -> Queue:
        for queue in self.queues:
            if queue.arn == arn:
                return queue
        raise TemplateError(f"no queue with ARN {arn} in the template")

    def queue(self, logical_id: str) -> Queue:
        return _by_id(self.queues, logical_id)

    def bucket(self, logical_id: str) -> Bucket:
        return _by_id(self.buckets, logical_id)

    def topic(self, logical_id: str) -> Topic:
        return _by_id(self.topics, logical_id)

    def table(self, logical_id: str) -> Table:
        return _by_id(self.tables, logical_id)

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
        """Where received mail is stored: the receipt rule's bucket (the relay's INCOMING_BUCKET)."""
        return self.receipt_rule.bucket if self.receipt_rule else self.function.environment["INCOMING_BUCKET"]

    def process_environment(self) -> dict[str, str]:
        """Every function's variables at once, for one process that runs them all (the sandbox, the
        tests): they must agree where they share a name, or one function would read another's value."""
        merged: dict[str, str] = {}
        for function in self.functions.values():
            for name, value in function.environment.items():
                if merged.setdefault(name, value) != value:
                    raise TemplateError(
                        f"{name} differs between the functions ({merged[name]!r} and {value!r}):"
                        " they cannot share one local process"
                    )
        return merged


def _by_id[T: (Queue, Bucket, Topic, Table)](items: list[T], logical_id: str) -> T:
    for item in items:
        if item.logical_id == logical_id:
            return item
    raise TemplateError(f"no {logical_id} in the template")
