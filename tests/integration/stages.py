"""Drive the two worker stages by hand over real Redis, and read back everything they wrote.

Tests of batching and redelivery feed the same messages through the handlers in different
ways and compare every key of the prefix afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from bestand.ingest.producer import topic_for
from bestand.ops.metrics import WorkerMetrics
from bestand.settings import Settings
from bestand.store import IdentityGraph, Keys, ProfileStore, connect
from bestand.stream.handlers import IdentityHandler, Incoming, Outgoing, ProfileHandler


def raw_messages(settings: Settings, events: Sequence[dict[str, Any]]) -> list[Incoming]:
    """Input messages as the identity stage reads them, one partition, offsets in order."""
    return [
        Incoming(topic_for(event, settings), 0, offset, None, orjson.dumps(event))
        for offset, event in enumerate(events)
    ]


def resolved_messages(settings: Settings, outgoing: Sequence[Outgoing]) -> list[Incoming]:
    """The identity stage's resolved events as the profile stage reads them."""
    resolved = [o for o in outgoing if o.destination == "resolved"]
    return [
        Incoming(settings.topic_resolved, 0, offset, o.key, o.value)
        for offset, o in enumerate(resolved)
    ]


async def identity_pass(
    settings: Settings, messages: Sequence[Incoming], batch: int
) -> list[Outgoing]:
    """Run the identity stage over ``messages`` in batches of ``batch`` (1: one by one)."""
    client = connect(settings.redis_url)
    graph = IdentityGraph(client, Keys(settings.redis_prefix), policy=settings.policy)
    try:
        return await _feed(IdentityHandler(settings, graph, WorkerMetrics()), messages, batch)
    finally:
        await client.aclose()


async def profile_pass(
    settings: Settings, messages: Sequence[Incoming], batch: int
) -> list[Outgoing]:
    """Run the profile stage over resolved ``messages`` in batches of ``batch``."""
    client = connect(settings.redis_url)
    store = ProfileStore(client, Keys(settings.redis_prefix), 3600)
    try:
        return await _feed(ProfileHandler(store, WorkerMetrics()), messages, batch)
    finally:
        await client.aclose()


async def _feed(
    handler: IdentityHandler | ProfileHandler, messages: Sequence[Incoming], batch: int
) -> list[Outgoing]:
    out: list[Outgoing] = []
    for start in range(0, len(messages), batch):
        chunk = messages[start : start + batch]
        out += await handler.handle_batch(chunk) if batch > 1 else await handler.handle(chunk[0])
    return out


async def redis_state(settings: Settings) -> dict[str, Any]:
    """Every key of the prefix with its value, without version counters."""
    client = connect(settings.redis_url)
    prefix = settings.redis_prefix
    out: dict[str, Any] = {}
    try:
        async for raw in client.scan_iter(match=f"{prefix}:*", count=1000):
            key = raw.decode()
            name = key.removeprefix(prefix)
            if name.startswith(":{g}:v:"):
                continue  # graph versions: guards only
            kind = (await client.type(key)).decode()
            if kind == "string":
                out[name] = await client.get(key)
            elif kind == "set":
                out[name] = sorted(await client.smembers(key))
            elif kind == "list":
                out[name] = await client.lrange(key, 0, -1)
            elif kind == "zset":
                out[name] = await client.zrange(key, 0, -1, withscores=True)
            elif kind == "hash":
                fields = await client.hgetall(key)
                fields.pop(b"v", None)
                if b"s" in fields:
                    state = orjson.loads(fields[b"s"])
                    state.pop("v", None)
                    fields[b"s"] = state
                out[name] = fields
    finally:
        await client.aclose()
    return out


async def clear(settings: Settings, match: str = "*") -> int:
    """Delete the keys of the prefix (those matching ``match`` after it); how many went."""
    client = connect(settings.redis_url)
    try:
        pattern = f"{settings.redis_prefix}:{match}"
        keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(keys), 500):
            await client.unlink(*keys[start : start + 500])
    finally:
        await client.aclose()
    return len(keys)
