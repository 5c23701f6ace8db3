"""Retry work with backoff while Redis or Kafka is away, instead of dropping an event or
crashing in a loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    MovedError,
    TimeoutError,
    TryAgainError,
)

from bestand.store import StoreConflict

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Errors after which the same work is tried again: Redis away, slow, loading, or contended,
#: or a cluster that lost a master (down until it is back) or moved a slot (the worker reads
#: its slot map again meanwhile).
RETRYABLE = (
    ConnectionError,
    TimeoutError,
    BusyLoadingError,
    StoreConflict,
    OSError,
    ClusterDownError,
    TryAgainError,
    MovedError,
    AskError,
)


async def with_backoff(
    work: Callable[[], Awaitable[T]],
    *,
    what: str,
    on_retry: Callable[[], None] | None = None,
    retryable: tuple[type[BaseException], ...] = RETRYABLE,
    first_delay: float = 0.05,
    max_delay: float = 5.0,
) -> T:
    """Run ``work`` until it succeeds, sleeping 50 ms, 100 ms, ... up to 5 s between tries.

    The stream does not move past an event whose result is not in Redis, so the consumer's
    committed offset never passes it either.
    """
    delay = first_delay
    while True:
        try:
            return await work()
        except retryable as exc:
            if on_retry is not None:
                on_retry()
            log.warning(
                "%s failed (%s: %s); retrying in %.2fs", what, type(exc).__name__, exc, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
