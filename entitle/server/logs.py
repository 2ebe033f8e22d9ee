"""Structured logs: one JSON object per line on stderr, so operators can grep and ship them."""

from __future__ import annotations

import json
import logging
import os
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

LOGGER = "entitle"
_BUILTIN = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# The id of the RPC being served on this thread (set by the metrics interceptor); log lines
# written while serving it carry it as `request_id`.
REQUEST_ID: ContextVar[str | None] = ContextVar("entitle_request_id", default=None)


class JsonLines(logging.Formatter):
    """Formats a record and its `extra=` fields as one JSON line (tracebacks as a field)."""

    def __init__(self, static: dict | None = None):
        super().__init__()
        self.static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            **self.static,
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            out["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _BUILTIN and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str = "info", **static: object) -> logging.Logger:
    """Route the `entitle` logger to stderr as JSON lines tagged with `static` fields."""
    logger = logging.getLogger(LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines({"pid": os.getpid(), **static}))
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER)
