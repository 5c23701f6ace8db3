"""The read path: one Redis round trip per identifier, no worker needed."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from bestand.profile import LookupSummary
from bestand.store.keys import Keys


class LookupReader:
    """Reads lookup records by identifier token (``kind:hash``)."""

    def __init__(self, client: Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def get(self, token: str) -> LookupSummary | None:
        """The summary stored for one identifier, or ``None`` when it is unknown."""
        raw = await self._client.hgetall(self._keys.lookup(token))
        return LookupSummary.from_fields(raw) if raw else None

    async def get_many(self, tokens: Sequence[str]) -> list[LookupSummary | None]:
        """Summaries for many identifiers in one pipelined round trip."""
        if not tokens:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for token in tokens:
                pipe.hgetall(self._keys.lookup(token))
            replies = await pipe.execute()
        return [LookupSummary.from_fields(raw) if raw else None for raw in replies]
