"""Errors of the Redis store."""

from __future__ import annotations


class StoreConflict(RuntimeError):
    """A compare-and-set kept losing against concurrent writers; the event will be retried."""


class StoreLayoutError(RuntimeError):
    """Redis holds keys in a shape an earlier release of bestand wrote: they are made again
    from Kafka with ``bestand rebuild``, not read or changed in place."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            "Redis holds keys of another layout of bestand's store than this release writes: "
            f"run `bestand rebuild` to write them again from Kafka ({detail})"
        )
