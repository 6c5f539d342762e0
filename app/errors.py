"""The product's own exceptions: adapters raise these so the relay decides retry vs fallback."""


class RetryableError(Exception):
    """Worth retrying: the record is reported as a batch item failure and, in the end, reaches the DLQ."""


class MailMissing(RetryableError):
    """The incoming object is not there (yet, or any more)."""


class InFlight(RetryableError):
    """Another invocation is working on the same mail right now; try again after it finished."""


class SendRejected(Exception):
    """SES refused the mail itself (MessageRejected and the like) or refused the role (an authorisation
    error naming the permission it lacks): retrying the same call will not help, so the relay turns it
    into a `rejected` notice instead of looping into the DLQ."""
