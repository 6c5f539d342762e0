"""Fallback notices on SNS: a short subject, the JSON notice, and `reason` as a message attribute so
subscriptions can filter by it."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from app.aws import clients
from app.errors import RetryableError
from app.outcomes import Notice


def publish(topic_arn: str, notice: Notice) -> None:
    try:
        clients.client("sns").publish(
            TopicArn=topic_arn,
            Subject=notice.title,
            Message=json.dumps(notice.as_message(), ensure_ascii=False),
            MessageAttributes={"reason": {"DataType": "String", "StringValue": str(notice.reason)}},
        )
    except (ClientError, BotoCoreError) as e:
        raise RetryableError(f"publishing the {notice.reason} notice: {e}") from e
