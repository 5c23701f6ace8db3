"""Messages in and out of a worker, and the dead-letter record of one that cannot be used."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import orjson

from bestand.events import DeadLetter

_DLQ_PAYLOAD_CHARS = 4000  # of the original value, kept in the dead letter
_DLQ_TEXT_CHARS = 4096  # the most any text field of a record holds (Contract str_max_length)

#: Where an outgoing message goes: the dead-letter topic, the profile-changes topic or the
#: explain topic (an erased person's marker, ``kafka/explain_topic.py``).
Destination = Literal["dlq", "changes", "explain"]


@dataclass(slots=True)  # built per event: frozen would double that
class Incoming:
    """One consumed message and where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None  # Kafka's timestamp in seconds, when the record has one


@dataclass(slots=True)  # built per event: frozen would double that
class Outgoing:
    """A message to send."""

    destination: Destination
    key: bytes | None
    value: bytes | None
    route: bytes | None = None  # what picks the partition, where not the key


def _clip(text: str, limit: int = _DLQ_TEXT_CHARS) -> str:
    """Text cut to what a dead-letter field holds, marked when cut."""
    return text if len(text) <= limit else text[: limit - 12] + " …(clipped)"


def dead_letter(message: Incoming, reason: str, error: str) -> Outgoing:
    """The dead-letter record of a message that could not be processed.

    Never fails: every text is clipped to the record's limits, whatever the input was (a
    dead letter that could not be written would stop the stream it protects).
    """
    value = message.value or b""
    record = DeadLetter(
        reason=_clip(reason, 64),
        error=_clip(error),
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=None if message.key is None else _clip(message.key.decode("utf-8", "replace")),
        payload=_clip(value[:_DLQ_PAYLOAD_CHARS].decode("utf-8", "replace")),
        payload_bytes=len(value),
        failed_at=datetime.now(UTC),
    )
    return Outgoing("dlq", message.key, orjson.dumps(record.model_dump(mode="json")))
