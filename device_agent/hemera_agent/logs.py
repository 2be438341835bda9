"""Structured logs of the agent: one JSON object per line, each carrying tenant and device.

Configured once by the CLI; modules only call `logging.getLogger("hemera_agent....")` and pass
fields with `extra={...}`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else came in through `extra=` and is logged as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


class _DeviceFields(logging.Filter):
    def __init__(self, tenant: str, device: str) -> None:
        super().__init__()
        self.tenant = tenant
        self.device = device

    def filter(self, record: logging.LogRecord) -> bool:
        record.tenant = self.tenant
        record.device = self.device
        return True


def configure_logging(tenant: str, device: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_DeviceFields(tenant, device))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # pymodbus logs every retry at INFO/WARNING; keep it for real problems only.
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
