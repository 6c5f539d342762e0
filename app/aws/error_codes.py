"""What an AWS error says, read in one place: botocore's `ClientError.response["Error"]["Code"]`.

Every adapter turns AWS errors into the product's exceptions (`app.errors`); this module is how they
name the cause (the code only: messages can quote request values, such as keys or addresses). relayctl
reads codes here too; it needs nothing but botocore.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

MISSING = frozenset({"NoSuchKey", "404", "NotFound"})  # GetObject/HeadObject of a key that is not there
MISSING_BUCKET = frozenset(
    {"NoSuchBucket", "404", "NotFound"}
)  # a bucket that is not there (HeadBucket: 404)


def code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", "unknown"))


def message(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Message", ""))


def describe(e: Exception) -> str:
    """The code of an AWS error, or the type of a connection or client-side one."""
    return code(e) if isinstance(e, ClientError) else type(e).__name__
