"""`make demo`: replay the sample mails in events/ through the function against the template's account
in moto, in process.

Each mail is uploaded to the incoming bucket under `incoming/<file name>`, delivered to `lambda_handler`
as one SQS record, and what happened is printed: the distributed mail with its links (each link is
followed through the download function and its bytes counted), the fallback notice, or the retry.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from app import links
from localaws.account import Account, environ, in_process
from localaws.events import sqs_event
from localaws.template import load

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


def main() -> int:
    blueprint = load(ROOT / "template.yaml", stack_name="demo")
    mails = sorted((EVENTS / "mails").glob("*.eml"))
    with in_process(blueprint) as account, environ(account.environment()):
        from app.handler import lambda_handler  # imported once the function's environment is in place

        incoming = blueprint.incoming_bucket
        for path in mails:
            account.client("s3").put_object(
                Bucket=incoming, Key=f"incoming/{path.name}", Body=path.read_bytes()
            )
        fallback_topic = blueprint.topic("FallbackTopic").arn
        for path in [*mails, Path("does-not-exist.eml")]:
            key = f"incoming/{path.name}"
            sent, notices = len(account.sent_mail()), len(account.published(fallback_topic))
            response = lambda_handler(sqs_event(key, bucket=incoming), None)
            print(f"\n=== {key}")
            for mail in account.sent_mail()[sent:]:
                show_mail(account, mail.destinations, mail.message)
            for notice in account.published(fallback_topic)[notices:]:
                print(f"fallback notice: {notice.subject}")
                print(json.dumps(notice.json(), indent=2))
            if response["batchItemFailures"]:
                print("reported for retry (after the queue's maxReceiveCount it lands in the DLQ)")
    return 0


def show_mail(account: Account, destinations: tuple[str, ...], message: EmailMessage) -> None:
    print(f"distributed to {len(destinations)} recipients (Bcc): {', '.join(destinations)}")
    for header in ("From", "Reply-To", "To", "Subject"):
        print(f"{header}: {message[header]}")
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_content()
            print(text.rstrip())
            for word in text.split():
                if word.startswith(("https://", "http://")) and links.is_mute_path(urlsplit(word).path):
                    print(f"  mute link: opens a page, its button mutes; until {_expiry(word)}")
                elif word.startswith(("https://", "http://")):
                    with contextlib.redirect_stdout(io.StringIO()):  # the download function's log line
                        size = len(account.download(word))
                    print(f"  link works: {size} bytes, until {_expiry(word)}")


def _expiry(url: str) -> str:
    """The link's own expiry (`exp`, Unix seconds) as a date."""
    exp = parse_qs(urlsplit(url).query).get("exp", [""])[0]
    return datetime.fromtimestamp(int(exp), UTC).strftime("%Y-%m-%d %H:%M UTC") if exp.isdigit() else "?"


if __name__ == "__main__":
    sys.exit(main())
