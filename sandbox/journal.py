"""The function's log lines about each mail, kept by the mail's key for the web view.

In AWS these are the function's JSON log lines in CloudWatch Logs (`"mail distributed"` with the outcome,
reason, key, recipients); the sandbox runs the handler in its own process, so a logging handler on the
function's logger sees the same records and keeps them, formatted like Lambda's JSON log format.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading

# The attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class Journal(logging.Handler):
    """Log records that name a mail (`extra={"key": ...}`), as JSON lines, by key."""

    def __init__(self, logger_name: str = "iot_mail_relay") -> None:
        super().__init__(logging.INFO)
        self.logger_name = logger_name
        self._lines: dict[str, list[str]] = {}
        self._lock_lines = threading.Lock()

    def attach(self) -> None:
        logging.getLogger(self.logger_name).addHandler(self)

    def detach(self) -> None:
        logging.getLogger(self.logger_name).removeHandler(self)

    def stop(self) -> None:
        self.detach()

    def emit(self, record: logging.LogRecord) -> None:
        key = getattr(record, "key", None)
        if not isinstance(key, str) or not key:
            return
        line = json_line(record)
        with self._lock_lines:
            self._lines.setdefault(key, []).append(line)

    def lines(self, key: str) -> list[str]:
        with self._lock_lines:
            return list(self._lines.get(key, []))

    def forget(self, keys: set[str]) -> None:
        """Drop the lines of deleted mails."""
        with self._lock_lines:
            for key in keys:
                self._lines.pop(key, None)


def json_line(record: logging.LogRecord) -> str:
    """Lambda's JSON log format: timestamp, level, message, logger, then the record's extra fields."""
    document: dict[str, object] = {
        "timestamp": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
            timespec="milliseconds"
        ),
        "level": record.levelname,
        "message": record.getMessage(),
        "logger": record.name,
    }
    for name, value in vars(record).items():
        if name not in _STANDARD:
            document[name] = value
    return json.dumps(document, default=str)
