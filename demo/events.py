"""SQS events as Lambda's event source mapping delivers them: one S3 ObjectCreated notification per
record. No AWS or moto imports, so measured processes (bench/) can build events cheaply too."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus, urlsplit

REGION = "us-east-1"


def sqs_event(*keys: str, bucket: str, first_id: int = 1) -> dict[str, Any]:
    return {"Records": [_sqs_record(str(first_id + n), bucket, key) for n, key in enumerate(keys)]}


def _sqs_record(message_id: str, bucket: str, key: str) -> dict[str, Any]:
    notification = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
            }
        ]
    }
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": json.dumps(notification),
        "attributes": {"ApproximateReceiveCount": "1"},
        "eventSource": "aws:sqs",
        "awsRegion": REGION,
    }


def function_url_event(
    method: str, url_or_path: str, source_ip: str = "198.51.100.7", user_agent: str = "curl/8.5.0"
) -> dict[str, Any]:
    """A Lambda function URL request (API Gateway payload 2.0) for a link or a raw `path?query`."""
    parts = urlsplit(url_or_path)
    host = parts.netloc or "abcdefghij.lambda-url.us-east-1.on.aws"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": {"host": host, "user-agent": user_agent},
        "requestContext": {
            "domainName": host,
            "http": {
                "method": method,
                "path": parts.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": user_agent,
            },
        },
        "isBase64Encoded": False,
    }
