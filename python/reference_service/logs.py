"""Log output on stderr: text (the default) or JSON, as the Rust service's
LOG_FORMAT. A JSON line is the object tracing-subscriber's JSON format writes:

    {"timestamp": "2026-01-02T03:04:05.123456Z", "level": "INFO",
     "fields": {"message": "bundle loaded", "bundle": "mlp", ...},
     "target": "reference_service"}

`fields` holds the message and the record's extra fields
(`log.info("bundle loaded", extra={"bundle": name})`), plus `error` with the
traceback when the record carries an exception; `target` is the logger's name.
The text format appends the extra fields as `key=value`, as tracing's does.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# tracing's level names; Python's CRITICAL has no counterpart above ERROR.
LEVEL_NAMES = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN", logging.ERROR: "ERROR",
               logging.CRITICAL: "ERROR"}
# LOG_LEVEL values (the Rust service's, and Python's "warning") -> Python levels.
LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "warning": logging.WARNING, "error": logging.ERROR}

# Attributes every LogRecord has: whatever else a record holds came from `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
# Extras that are presentation, not data (uvicorn's colored copy of the message).
_PRESENTATION = {"color_message"}
_HANDLER_NAME = "reference_service"


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's `extra`: not logging's own attributes, nor private ones
    (ray, which NeuralForecast imports, stamps every record with `_ray_timestamp_ns`)."""
    return {k: v for k, v in vars(record).items()
            if k not in _STANDARD and k not in _PRESENTATION and not k.startswith("_")}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {"message": record.getMessage()}
        fields.update((k, _jsonable(v)) for k, v in extra_fields(record).items())
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["error"] = record.exc_text
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        line = {
            "timestamp": stamp,
            "level": LEVEL_NAMES.get(record.levelno, record.levelname),
            "fields": fields,
            "target": record.name,
        }
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        text = super().formatMessage(record)
        extras = extra_fields(record)
        if extras:
            text += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return text


def configure(log_format: str = "text", level: str = "info", stream: TextIO | None = None) -> logging.Handler:
    """A handler on the root logger (uvicorn's loggers propagate to it), in
    place of the one a previous call installed."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    return handler
