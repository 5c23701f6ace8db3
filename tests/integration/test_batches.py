"""Batches change how often Redis is asked, never the answer.

The same shuffled stream, with a tenth of it delivered twice, goes through both stages once
event by event and once in batches; the identity graph, person states and lookup records
must come out identical (version counters aside, which only guard concurrent writers).
"""

from __future__ import annotations

import random
from typing import Any

import orjson
from support import run

from bestand.ingest.producer import topic_for
from bestand.ops.metrics import WorkerMetrics
from bestand.settings import Settings
from bestand.simulate import simulate
from bestand.store import IdentityGraph, Keys, ProfileStore, connect
from bestand.stream.handlers import IdentityHandler, Incoming, Outgoing, ProfileHandler


def _stream() -> list[dict[str, Any]]:
    events = list(simulate(persons=120, seed=21).events)
    rng = random.Random(8)
    stream = events + rng.sample(events, k=len(events) // 10)
    rng.shuffle(stream)
    return stream


async def _replay(settings: Settings, stream: list[dict[str, Any]], batch: int) -> None:
    client = connect(settings.redis_url)
    keys = Keys(settings.redis_prefix)
    metrics = WorkerMetrics()
    identity = IdentityHandler(
        settings, IdentityGraph(client, keys, policy=settings.policy), metrics
    )
    profile = ProfileHandler(ProfileStore(client, keys, 3600), metrics)
    try:
        messages = [
            Incoming(topic_for(event, settings), 0, offset, None, orjson.dumps(event))
            for offset, event in enumerate(stream)
        ]
        resolved: list[Outgoing] = []
        for start in range(0, len(messages), batch):
            chunk = messages[start : start + batch]
            out = (
                await identity.handle_batch(chunk) if batch > 1 else await identity.handle(chunk[0])
            )
            resolved += [o for o in out if o.destination == "resolved"]
        second = [
            Incoming(settings.topic_resolved, 0, offset, o.key, o.value)
            for offset, o in enumerate(resolved)
        ]
        for start in range(0, len(second), batch):
            chunk = second[start : start + batch]
            if batch > 1:
                await profile.handle_batch(chunk)
            else:
                await profile.handle(chunk[0])
    finally:
        await client.aclose()


async def _snapshot(settings: Settings) -> dict[str, Any]:
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


def test_batches_leave_the_same_state_as_single_events(redis_url: str) -> None:
    stream = _stream()
    single = Settings(_env_file=None, redis_url=redis_url, redis_prefix="batch-one")
    batched = Settings(_env_file=None, redis_url=redis_url, redis_prefix="batch-many")
    for settings in (single, batched):
        run(_clear(settings))
    try:
        run(_replay(single, stream, batch=1))
        run(_replay(batched, stream, batch=97))
        one, many = run(_snapshot(single)), run(_snapshot(batched))
        assert len(one) > 1000
        assert one.keys() == many.keys()
        different = [key for key in one if one[key] != many[key]]
        assert different == []
    finally:
        for settings in (single, batched):
            run(_clear(settings))


async def _clear(settings: Settings) -> None:
    client = connect(settings.redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{settings.redis_prefix}:*")]
        for start in range(0, len(keys), 500):
            await client.unlink(*keys[start : start + 500])
    finally:
        await client.aclose()
