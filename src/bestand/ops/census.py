"""How many persons and identifiers Redis holds, counted a little at a time.

Redis has no count per key pattern, and a full ``SCAN`` of millions of keys in one go would
stall a worker. :class:`Census` scans the identity graph's keys (``<p>:{g}:*``) a slice per
call (``BESTAND_OPS_INTERVAL_SECONDS``) and publishes the totals each time a pass completes:
the figures lag reality by one pass, about ``keys / slice × interval`` seconds. Identifiers
are fields of graph buckets, persons fields of facts buckets: a slice's buckets are counted
with one ``HLEN`` each, pipelined.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from bestand.store import Keys


@dataclass(frozen=True)
class Counts:
    """Persons (those with graph facts) and identifiers (graph entries); how many graph
    buckets hold them and the most one holds (past ``hash-max-listpack-entries``, 128 by
    default, Redis keeps a bucket as a hash table: about 30 bytes more an entry)."""

    persons: int
    identifiers: int
    buckets: int = 0
    fullest: int = 0


def kind_of(key: bytes | str, keys: Keys) -> str | None:
    """``person`` for a facts bucket (persons are its fields), ``identifier`` for a graph
    bucket, else None."""
    text = key.decode() if isinstance(key, bytes) else key
    rest = text.removeprefix(keys.graph + ":")
    if rest == text:
        return None
    if rest.startswith("k:"):
        return "person"
    if rest.startswith("i:"):
        return "identifier"
    return None


class Census:
    """Counts persons and identifiers over successive slices of one ``SCAN`` pass."""

    def __init__(self, client: Redis, keys: Keys, slice_keys: int = 5000) -> None:
        self._client = client
        self._keys = keys
        self._slice = slice_keys
        self._cursor = 0
        self._persons = 0
        self._identifiers = 0
        self._buckets = 0
        self._fullest = 0
        self.last: Counts | None = None  # the totals of the last complete pass

    async def step(self) -> Counts | None:
        """Scan the next slice; the totals when this slice completed a pass, else None."""
        cursor, found = await self._client.scan(
            self._cursor, match=f"{self._keys.graph}:[ki]:*", count=self._slice
        )
        counted = [(key, kind) for key in found if (kind := kind_of(key, self._keys))]
        if counted:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, _ in counted:
                    pipe.hlen(key)
                sizes = [int(n) for n in await pipe.execute()]
            graph = [size for (_, kind), size in zip(counted, sizes, strict=True)
                     if kind == "identifier"]  # fmt: skip
            self._persons += sum(sizes) - sum(graph)
            if graph:
                self._identifiers += sum(graph)
                self._buckets += len(graph)
                self._fullest = max(self._fullest, *graph)
        self._cursor = int(cursor)
        if self._cursor != 0:
            return None
        self.last = Counts(self._persons, self._identifiers, self._buckets, self._fullest)
        self._persons = self._identifiers = self._buckets = self._fullest = 0
        return self.last
