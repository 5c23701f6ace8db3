"""The customer base's values, for value bands and monetary scores relative to everyone.

One sorted set holds every customer's lifetime value (net revenue in cents). Readers do not
touch it per lookup: they fetch the thresholds (the values at the top 10 %, 30 % and the
quintiles) every few seconds in the background and compare each answer with them in memory,
so a lookup still reads one key per identifier.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from bestand.profile.value import ValueThresholds, threshold_ranks, thresholds_from_ranks
from bestand.store.keys import Keys


def record_value(pipe: Pipeline, keys: Keys, person_id: str, cents: int | None) -> None:
    """Queue the write of a person's value; ``None`` (not a customer) removes the person."""
    if cents is None:
        pipe.zrem(keys.values, person_id)
    else:
        pipe.zadd(keys.values, {person_id: cents})


def forget_values(pipe: Pipeline, keys: Keys, person_ids: Sequence[str]) -> None:
    """Queue the removal of persons (merged away or erased)."""
    if person_ids:
        pipe.zrem(keys.values, *person_ids)


async def read_thresholds(client: Redis, keys: Keys) -> ValueThresholds:
    """The thresholds of the customer base as it is now (a few commands, no scan)."""
    customers = int(await client.zcard(keys.values))
    ranks = threshold_ranks(customers)
    if not ranks:
        return ValueThresholds()
    async with client.pipeline(transaction=False) as pipe:
        for rank in ranks:
            pipe.zrevrange(keys.values, rank, rank, withscores=True)
        replies = await pipe.execute()
    values: dict[int, int] = {}
    for rank, reply in zip(ranks, replies, strict=True):
        if not reply:  # the set shrank between the two reads
            return ValueThresholds()
        values[rank] = int(reply[0][1])
    return thresholds_from_ranks(customers, values)


class ThresholdCache:
    """Thresholds refreshed in the background at most every ``max_age`` seconds."""

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        max_age: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._keys = keys
        self._max_age = max_age
        self._clock = clock
        self._current = ValueThresholds()
        self._fetched_at: float | None = None
        self._refresh: asyncio.Task[None] | None = None

    async def refresh(self) -> ValueThresholds:
        """Read the thresholds now."""
        self._current = await read_thresholds(self._client, self._keys)
        self._fetched_at = self._clock()
        return self._current

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except RedisError:
            self._fetched_at = self._clock()  # try again after max_age, keep the old ones

    async def current(self) -> ValueThresholds:
        """The cached thresholds; the first call waits for them, later ones never wait."""
        if self._fetched_at is None:
            try:
                return await self.refresh()
            except RedisError:
                return self._current
        stale = self._clock() - self._fetched_at > self._max_age
        if stale and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self._refresh_quietly())
        return self._current
