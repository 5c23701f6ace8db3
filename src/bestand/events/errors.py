"""Errors of the event contracts."""

from __future__ import annotations


class InvalidEvent(ValueError):
    """An input that does not satisfy its topic's contract; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
