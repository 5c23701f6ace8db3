"""How many persons and identifiers Redis holds, counted a little at a time.

Redis has no count per key pattern, and a full ``SCAN`` of millions of keys in one go would
stall a worker. :class:`Census` scans the identity graph's keys (``<p>:{g}:*``) a slice per
call (``BESTAND_OPS_INTERVAL_SECONDS``) and publishes the totals each time a pass completes:
the figures lag reality by one pass, about ``keys / slice × interval`` seconds. Identifiers
are fields of graph buckets, persons fields of facts buckets, beside the fields those buckets
hold marked as meetings, logs, redirects and absorbed persons (``keys.py``): a slice's buckets
are counted with one ``HKEYS`` each, pipelined, their marked fields left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from bestand.store import Keys
from bestand.store.keys import ABSORBED_FIELD, LOG_FIELD, MET_FIELD, REDIRECT_FIELD


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


_MARKS = {
    "identifier": (MET_FIELD.encode(),),
    "person": tuple(m.encode() for m in (LOG_FIELD, REDIRECT_FIELD, ABSORBED_FIELD)),
}


def _marked(field: bytes | str, kind: str) -> bool:
    """A field of a graph bucket (``identifier``) that is no identifier's entry, or of a
    facts bucket (``person``) that holds no person's facts."""
    raw = field.encode() if isinstance(field, str) else field
    return raw.startswith(_MARKS[kind])


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
                    pipe.hkeys(key)
                replies = await pipe.execute()
            sizes = [
                sum(1 for field in fields if not _marked(field, kind))
                for (_, kind), fields in zip(counted, replies, strict=True)
            ]
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
