"""What Lambda hands a function, in the shapes its triggers deliver: SQS records (of S3 notifications),
function URL requests (payload 2.0), scheduled events, and the context object.

No AWS or moto imports, so measured processes (bench/) and the sandbox's poller can build them cheaply.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, urlsplit

REGION = "us-east-1"
URL_HOST = "abcdefghij.lambda-url.us-east-1.on.aws"  # where a function URL's requests arrive, by default
LAMBDA_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
)


class LambdaContext:
    """The parts of Lambda's context object a handler uses; the deadline is the function's Timeout."""

    def __init__(self, function_name: str, function_arn: str, memory_mb: int, timeout_seconds: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = str(memory_mb)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/[$LATEST]{uuid.uuid4().hex}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def sqs_event(*keys: str, bucket: str, first_id: int = 1, region: str = REGION) -> dict[str, Any]:
    """An SQS event of S3 ObjectCreated notifications, one record per key, as a hand-made test event
    (no receipt handle of a real queue: nothing to postpone)."""
    return {"Records": [_s3_record(str(first_id + n), bucket, key, region) for n, key in enumerate(keys)]}


def _s3_record(message_id: str, bucket: str, key: str, region: str) -> dict[str, Any]:
    notification = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
            }
        ]
    }
    return sqs_record(message_id, json.dumps(notification), region)


def sqs_record(message_id: str, body: str, region: str = REGION) -> dict[str, Any]:
    """One SQS record of a message with this body, received once, as a hand-made test event (its
    receipt handle is no real queue's)."""
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "eventSource": "aws:sqs",
        "awsRegion": region,
    }


def sqs_event_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One message SQS's ReceiveMessage returned, in the shape Lambda hands to the function."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {k: attributes[k] for k in LAMBDA_ATTRIBUTES if k in attributes},
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def function_url_event(
    method: str,
    url_or_path: str,
    source_ip: str = "198.51.100.7",
    user_agent: str = "curl/8.5.0",
    headers: dict[str, str] | None = None,
    body: str | None = None,
) -> dict[str, Any]:
    """A Lambda function URL request (API Gateway payload 2.0) for a URL or a raw `path?query`."""
    parts = urlsplit(url_or_path)
    return function_url_request(
        method,
        parts.path or "/",
        parts.query,
        host=parts.netloc or URL_HOST,
        source_ip=source_ip,
        user_agent=user_agent,
        headers=headers,
        body=body,
    )


def function_url_request(
    method: str,
    raw_path: str,
    raw_query: str = "",
    host: str = URL_HOST,
    source_ip: str = "198.51.100.7",
    user_agent: str = "curl/8.5.0",
    headers: dict[str, str] | None = None,
    body: str | None = None,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """A function URL request whose path and query are exactly these, whatever bytes they hold (a
    client's raw request line, not split again as a URL)."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": {
            "host": host,
            "user-agent": user_agent,
            **{k.lower(): v for k, v in (headers or {}).items()},
        },
        "requestContext": {
            "domainName": host,
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": user_agent,
            },
        },
        "isBase64Encoded": base64_encoded,
    }
    if body is not None:
        event["body"] = body
    return event


def scheduled_event(rule_arn: str, region: str = REGION, now: datetime | None = None) -> dict[str, Any]:
    """What an EventBridge schedule rule hands its target function."""
    moment = now or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule_arn.split(":")[4] if rule_arn.count(":") >= 5 else "",
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }
