"""`make demo`: replay the sample mails in events/ through the function against in-process moto.

Each mail is uploaded to the incoming bucket under `incoming/<file name>`, delivered to `lambda_handler`
as one SQS record, and what happened is printed: the distributed mail with its links (each link is
followed and its bytes counted), the fallback notice, or the retry.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.handler import lambda_handler
from demo.world import World, moto_world, sqs_event

EVENTS = Path(__file__).resolve().parent.parent / "events"
LINK_PREFIX = "https://"


def main() -> int:
    mails = sorted((EVENTS / "mails").glob("*.eml"))
    with moto_world() as world:
        for path in mails:
            world.put_mail(f"incoming/{path.name}", path.read_bytes())
        for path in [*mails, Path("does-not-exist.eml")]:
            replay(world, f"incoming/{path.name}")
    return 0


def replay(world: World, key: str) -> None:
    sent_before, notices_before = len(world.sent()), len(world.notices())
    response = lambda_handler(sqs_event(key), None)
    print(f"\n=== {key}")
    for mail in world.sent()[sent_before:]:
        show_mail(world, mail.destinations, mail.message)
    for notice in world.notices()[notices_before:]:
        print(f"fallback notice: {notice['title']}")
        print(json.dumps({k: v for k, v in notice.items() if k != "title"}, indent=2))
    if response["batchItemFailures"]:
        print("reported for retry (after the queue's maxReceiveCount it lands in the DLQ)")


def show_mail(world: World, destinations: tuple[str, ...], message: object) -> None:
    from email.message import EmailMessage

    if not isinstance(message, EmailMessage):
        raise TypeError("expected an EmailMessage")
    print(f"distributed to {len(destinations)} recipients (Bcc): {', '.join(destinations)}")
    for header in ("From", "Reply-To", "To", "Subject"):
        print(f"{header}: {message[header]}")
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_content()
            print(text.rstrip())
            for word in text.split():
                if word.startswith(LINK_PREFIX):
                    size = len(world.download(word))
                    print(f"  link works: {size} bytes, expires in {_expiry(word)} s")


def _expiry(url: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(url).query).get("X-Amz-Expires", ["?"])[0]


if __name__ == "__main__":
    sys.exit(main())
