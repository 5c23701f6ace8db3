"""The customer base's values, for value bands and monetary scores relative to everyone.

Readers do not ask per lookup: every five minutes, in the background, they read the lifetime
values (net revenue in cents) of a sample of the persons in Redis and compare each answer with
the thresholds of that sample (the values at the top 10 %, 30 % and the quintiles) in memory,
so a lookup still reads one key per identifier. A refresh decodes up to 20,000 states (about
0.4 s of an API process's CPU at a million persons), eight person buckets at a time between
turns of the event loop, so that lookups in flight wait a millisecond at most; a customer
base's thresholds move little in five minutes.

The sample is the persons of the person buckets a ``SCAN`` meets first, up to
``sample_persons`` of them: every person of a smaller shop (the thresholds are then exact), and
for a larger one a random share of its persons, since a scan meets buckets in the order of
Redis's hash table. Earlier releases kept every customer's value in a sorted set for this:
64 bytes a person at a million persons, on every write of a changed value
(``bench/memory.py``); 20,000 persons (about 8,000 customers) put a threshold within half a
percentage point of its rank.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bestand.profile.state import CustomerRule, PersonState, load_state
from bestand.profile.summary import LookupSummary
from bestand.profile.value import ValueThresholds, threshold_ranks, thresholds_from_ranks
from bestand.store.keys import Keys, person_value

#: Persons whose values a refresh reads at most (the whole shop below that).
SAMPLE_PERSONS = 20_000
#: Person buckets read per round trip, and states decoded between two turns of the event loop.
_BUCKETS_PER_READ = 8


def lifetime_value(state: PersonState) -> int | None:
    """A customer's lifetime value in cents (what the lookup answer ranks); ``None`` for a
    person who is no customer."""
    summary = LookupSummary.of(state)
    return summary.revenue_cents if summary.existing_customer else None


async def sample_values(
    client: Redis, keys: Keys, sample_persons: int = SAMPLE_PERSONS, rule: CustomerRule = "kept"
) -> tuple[list[int], int]:
    """The lifetime values of the customers among up to ``sample_persons`` persons, and how
    many persons were read (merged-away persons left out); ``rule``: which orders make a
    customer (``BESTAND_CUSTOMER_RULE``)."""
    values: list[int] = []
    persons = 0
    pending: list[bytes | str] = []

    async def read(buckets: list[bytes | str]) -> None:
        nonlocal persons
        async with client.pipeline(transaction=False) as pipe:
            for bucket in buckets:
                pipe.hgetall(bucket)
            replies = await pipe.execute()
        for reply in replies:
            for person, value in reply.items():
                survivor, _, blob = person_value(value)
                if survivor is not None or not blob:
                    continue
                persons += 1
                name = person.decode() if isinstance(person, bytes) else person
                cents = lifetime_value(load_state(name, blob, rule))
                if cents is not None:
                    values.append(cents)
        await asyncio.sleep(0)  # decoding takes the thread: let lookups in between

    async for bucket in client.scan_iter(match=f"{keys.persons}*", count=1000):
        pending.append(bucket)
        if len(pending) >= _BUCKETS_PER_READ:
            await read(pending)
            pending = []
            if persons >= sample_persons:
                return values, persons
    if pending:
        await read(pending)
    return values, persons


def thresholds_of(values: list[int]) -> ValueThresholds:
    """The thresholds of a sample of customers' values."""
    ranks = threshold_ranks(len(values))
    if not ranks:
        return ValueThresholds()
    ordered = sorted(values, reverse=True)
    return thresholds_from_ranks(len(values), {rank: ordered[rank] for rank in ranks})


async def read_thresholds(
    client: Redis, keys: Keys, sample_persons: int = SAMPLE_PERSONS, rule: CustomerRule = "kept"
) -> ValueThresholds:
    """The thresholds of the customer base as it is now (of a sample of it in a large shop)."""
    values, _ = await sample_values(client, keys, sample_persons, rule)
    return thresholds_of(values)


class ThresholdCache:
    """Thresholds refreshed in the background at most every ``max_age`` seconds."""

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        max_age: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        sample_persons: int = SAMPLE_PERSONS,
        rule: CustomerRule = "kept",
    ) -> None:
        self._client = client
        self._keys = keys
        self._max_age = max_age
        self._clock = clock
        self._sample = sample_persons
        self._rule: CustomerRule = rule
        self._current = ValueThresholds()
        self._fetched_at: float | None = None
        self._refresh: asyncio.Task[None] | None = None

    async def refresh(self) -> ValueThresholds:
        """Read the thresholds now."""
        self._current = await read_thresholds(self._client, self._keys, self._sample, self._rule)
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
