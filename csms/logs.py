"""Structured logging: one JSON object per line, with the charger id on every charger-related line."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

__all__ = ["setup_logging", "charger_logger"]

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def setup_logging(level: str = "INFO", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("websockets", "uvicorn.access", "asyncio"):
        logging.getLogger(noisy).setLevel("WARNING")


class _ChargerAdapter(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        kwargs["extra"] = {**self.extra, **kwargs.get("extra", {})}
        return msg, kwargs


def charger_logger(charge_point_id: str, **context: Any) -> logging.LoggerAdapter:
    """A logger whose every line carries ``charge_point_id`` (and *context*)."""
    return _ChargerAdapter(logging.getLogger("csms.charger"), {"charge_point_id": charge_point_id, **context})
