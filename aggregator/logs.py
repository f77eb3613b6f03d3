"""Logging set-up: human lines by default, JSON lines with `--log-format json`.

Every record passes a redacting filter first, so a secret never reaches a
log line whatever the format: passwords in URLs (`scheme://user:pw@host`),
the SMTP password (its value, read from the environment variable the config
names), and anything else registered with `add_secret`.

What this module does not do: decide what to log. Modules log with
`extra={...}` fields (`source=`, `job=`, `status=`); the JSON format keeps
them as keys, the human format appends them as `key=value`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

FORMATS = ("human", "json")

#: the attributes every LogRecord has; anything else came from `extra=`
#: (and uvicorn's color_message, a duplicate of the message with terminal colours)
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(?=@)", re.I)
_secrets: set[str] = set()


def add_secret(value: str | None) -> None:
    """Never print `value` in a log line (short values are ignored: too many false hits)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    """`text` with URL passwords and registered secrets replaced by `***`."""
    text = _URL_PASSWORD.sub(r"\g<head>***", text)
    for secret in _secrets:
        text = text.replace(secret, "***")
    return text


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class RedactingFilter(logging.Filter):
    """Rewrites the record's message and extra fields with secrets removed."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in _extras(record).items():
            if isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class HumanFormatter(logging.Formatter):
    """`2026-11-22 12:00:00 WARNING aggregator.daemon: message key=value`."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
        line = f"{when} {record.levelname} {record.name}: {record.getMessage()}"
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            data.setdefault(key, value)
        if record.exc_info:
            data["traceback"] = redact(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False, default=str)


def announce(
    logger: logging.Logger, msg: str, *args: object, extra: dict[str, Any] | None = None
) -> None:
    """An INFO line that shows at every log level: what a service says once
    about itself (the daemon's address, version, database and schedule), so
    its log never starts silent. Below INFO it goes straight to the root
    logger's handlers, through their filters: secrets stay redacted."""
    if logger.isEnabledFor(logging.INFO):
        logger.info(msg, *args, extra=extra, stacklevel=2)
        return
    record = logger.makeRecord(logger.name, logging.INFO, "", 0, msg, args, None, extra=extra)
    for handler in logging.getLogger().handlers:
        handler.handle(record)


def setup(fmt: str = "human", level: int = logging.WARNING, stream: TextIO | None = None) -> None:
    """Configure the root logger once for the process (replaces earlier handlers)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    handler.addFilter(RedactingFilter())
    # On the handler too: libraries that set their own logger's level (werkzeug
    # says INFO) would otherwise print below the level asked for.
    handler.setLevel(level)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's own loggers would otherwise print with their own handlers and format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(max(level, logging.INFO))
