"""Logs as text for people or as JSON lines for log pipelines (``BESTAND_LOG_FORMAT``).

In JSON every line carries the fields bound for the work in hand: the batch (its size and
partitions) and, for a dead letter, the topic, partition and offset of the message and the
reason, so a log search finds what happened to one input record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

LogFormat = Literal["text", "json"]
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_bound: ContextVar[dict[str, Any]] = ContextVar("bestand_log_fields", default={})  # noqa: B039


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every log line written inside the block (this task only)."""
    token = _bound.set({**_bound.get(), **fields})
    try:
        yield
    finally:
        _bound.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, bound fields, error."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_bound.get(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def logging_config(log_format: LogFormat, level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the root logger in ``log_format``."""
    formatter: dict[str, Any] = {"()": JsonFormatter} if log_format == "json" else {"format": TEXT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"bestand": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "bestand"},
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # The Kafka client's routine messages (assignments, leader moves it retries) are noise.
        "loggers": {"aiokafka": {"level": "ERROR"}},
    }
