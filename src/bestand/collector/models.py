"""The collector's answers (its requests are Segment's calls, documented by Segment)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class CollectorAnswer(BaseModel):
    """200: every event of the request is in Kafka."""

    success: Literal[True] = True
    forwarded: int = Field(description="Calls that became events, now in Kafka.")
    skipped: int = Field(description="Valid calls of no use to bestand (other track events, ...).")


class RefusedCall(BaseModel):
    """One call that made no event."""

    index: int = Field(description="Its place in the request's batch (0 for a single call).")
    reason: str = Field(description="Stable code: schema, no_identifier, too_large, ...")
    detail: str


class CollectorRefusal(BaseModel):
    """400: some calls made no event; the others of the batch are in Kafka all the same."""

    error: str = Field(description="The first refused call's reason.")
    detail: str
    failed: list[RefusedCall]
    forwarded: int
    skipped: int
