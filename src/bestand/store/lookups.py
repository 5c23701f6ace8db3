"""The read path: one Redis round trip per identifier, no worker needed.

A lookup record is a field of its identifier's lookup bucket (``store/keys.py``): one
``HGET``.

Lookups that are in flight at the same moment share a round trip: :meth:`LookupReader.get`
queues its key and the reader sends everything queued during one pass of the event loop as
one pipeline. The asyncio client spends several times more CPU per command than Redis
does; a pipeline pays that overhead once per batch (see the README's performance notes).
A lone lookup still goes out on the next pass of the loop, so nothing waits for company.
At most a few pipelines are in flight; while they are, new lookups gather for the next one,
so a slow Redis gets larger batches instead of more connections than the pool holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis

from bestand.profile import LookupSummary
from bestand.store.keys import Keys

Reply = bytes | str | None

#: Most commands in one pipeline.
MAX_BATCH = 128
#: Most pipelines of lookups in flight at once (each holds one pooled connection).
MAX_PIPELINES = 8


class Overloaded(Exception):
    """Too many lookups wait for Redis already: answer at once rather than queue without
    bound (an ad server would give up on the answer anyway)."""


class LookupReader:
    """Reads lookup records by identifier token (``kind:hash``)."""

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        *,
        max_batch: int = MAX_BATCH,
        max_pipelines: int = MAX_PIPELINES,
        max_waiting: int | None = None,
        timeout: float | None = None,
    ) -> None:
        self._client = client
        self._keys = keys
        self._max_batch = max_batch
        self._max_pipelines = max_pipelines
        self._queued: list[tuple[tuple[str, str], asyncio.Future[Reply]]] = []
        self._flush_on: asyncio.AbstractEventLoop | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._max_waiting = max_waiting
        self._timeout = timeout
        self._waiting = 0

    async def get(self, token: str) -> LookupSummary | None:
        """The summary stored for one identifier, or ``None`` when it is unknown.

        Raises :class:`Overloaded` when ``max_waiting`` lookups wait already, and
        ``TimeoutError`` when Redis has not answered within ``timeout`` seconds.
        """
        if self._max_waiting is not None and self._waiting >= self._max_waiting:
            raise Overloaded(f"{self._waiting} lookups are waiting for Redis")
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Reply] = loop.create_future()
        self._queued.append((self._keys.lookup_entry(token), reply))
        if self._flush_on is not loop:
            self._flush_on = loop
            loop.call_soon(self._flush)
        self._waiting += 1
        try:
            if self._timeout is None:
                raw = await reply
            else:
                # shield: a timed-out lookup leaves its place in the pipeline to be answered.
                raw = await asyncio.wait_for(asyncio.shield(reply), self._timeout)
        finally:
            self._waiting -= 1
        return LookupSummary.from_packed(raw) if raw else None

    def _flush(self) -> None:
        """Send what the lookups of this loop pass queued (runs after them, on the loop)."""
        self._flush_on = None
        while self._queued and len(self._sending) < self._max_pipelines:
            batch = self._queued[: self._max_batch]
            del self._queued[: self._max_batch]
            task = asyncio.ensure_future(self._send(batch))
            self._sending.add(task)  # keep a reference until it is done
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        """A pipeline is done: send what gathered meanwhile."""
        self._sending.discard(task)
        if self._queued and self._flush_on is None:
            self._flush()

    async def _send(self, batch: list[tuple[tuple[str, str], asyncio.Future[Reply]]]) -> None:
        try:
            if len(batch) == 1:
                replies: list[Reply | Exception] = [await self._client.hget(*batch[0][0])]
            else:
                async with self._client.pipeline(transaction=False) as pipe:
                    for entry, _ in batch:
                        pipe.hget(*entry)
                    replies = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            for _, waiter in batch:
                waiter.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - every waiter gets the failure
            for _, waiter in batch:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        for (_, waiter), reply in zip(batch, replies, strict=True):
            if waiter.done():  # its lookup was cancelled meanwhile
                continue
            if isinstance(reply, Exception):
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)

    async def get_many(self, tokens: Sequence[str]) -> list[LookupSummary | None]:
        """Summaries for many identifiers in one pipelined round trip."""
        if not tokens:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for token in tokens:
                pipe.hget(*self._keys.lookup_entry(token))
            if self._timeout is None:
                replies = await pipe.execute()
            else:
                replies = await asyncio.wait_for(pipe.execute(), self._timeout)
        return [LookupSummary.from_packed(raw) if raw else None for raw in replies]
