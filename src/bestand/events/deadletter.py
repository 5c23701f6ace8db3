"""The dead-letter record: a rejected input with the reason, so nothing is silently dropped."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from bestand.events.common import Contract


class DeadLetter(Contract):
    """Written to the dead-letter topic for every input that could not be processed."""

    reason: str = Field(description="Machine-readable reason, e.g. 'invalid_json', 'schema'.")
    error: str = Field(description="Human-readable explanation of what was wrong.")
    topic: str
    partition: int
    offset: int
    key: str | None = Field(None, description="Message key, decoded as UTF-8 where possible.")
    payload: str = Field(description="The original value, UTF-8 with replacement, truncated.")
    payload_bytes: int = Field(description="Size of the original value in bytes.")
    failed_at: AwareDatetime
