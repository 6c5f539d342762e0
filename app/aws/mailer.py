"""SES v2 (raw messages up to 40 MB): one call per chunk of at most 50 destinations."""

from __future__ import annotations

import re
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from app.aws import clients, error_codes
from app.errors import RetryableError, SendRejected

MAX_DESTINATIONS = 50  # SES's limit per SendEmail call
_PERMANENT = {"MessageRejected", "MailFromDomainNotVerifiedException", "BadRequestException"}
# IAM refusing the role: SES v2 (REST-JSON) answers 403 AccessDeniedException; AccessDenied and
# NotAuthorized are the same refusal in the query protocol's and the common-errors spelling. Retrying
# cannot grant the permission, so the mail becomes a `rejected` notice instead of a DLQ loop.
_DENIED = {"AccessDeniedException", "AccessDenied", "NotAuthorized", "NotAuthorizedException"}
_IAM_MESSAGE = re.compile(r"not authorized to perform: (?P<action>\S+) on resource: (?P<resource>[^\s,;]+)")


def send(raw: bytes, recipients: Sequence[str], sender: str, configuration_set: str | None) -> str:
    """Send to `recipients` as blind copies; returns SES's message id."""
    if not 0 < len(recipients) <= MAX_DESTINATIONS:
        raise ValueError(f"a send takes 1..{MAX_DESTINATIONS} recipients, not {len(recipients)}")
    request = {
        "FromEmailAddress": sender,
        "Destination": {"BccAddresses": list(recipients)},
        "Content": {"Raw": {"Data": raw}},
    }
    if configuration_set:
        request["ConfigurationSetName"] = configuration_set
    try:
        return str(clients.client("sesv2").send_email(**request)["MessageId"])
    except ClientError as e:
        code = error_codes.code(e)
        if code in _DENIED:
            raise SendRejected(denied(code, error_codes.message(e))) from e
        if code in _PERMANENT:
            raise SendRejected(f"SES rejected the mail: {code}") from e
        raise RetryableError(f"SES send failed: {code}") from e
    except BotoCoreError as e:
        raise RetryableError(f"SES send failed: {type(e).__name__}") from e


def chunks(recipients: Sequence[str]) -> list[tuple[str, ...]]:
    return [tuple(recipients[i : i + MAX_DESTINATIONS]) for i in range(0, len(recipients), MAX_DESTINATIONS)]


def denied(code: str, message: str) -> str:
    """What an authorisation error lacks, from IAM's "... is not authorized to perform: A on resource: R"."""
    found = _IAM_MESSAGE.search(message)
    if found is None:
        return (
            f"SES denied the send ({code}): the function's role lacks ses:SendRawEmail on the sender's "
            "identity or on its configuration set"
        )
    return f"SES denied the send ({code}): the function's role lacks {found['action']} on {found['resource']}"
