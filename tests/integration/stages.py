"""Drive the worker's batch processor by hand over real Redis, and read back what it wrote.

Tests of batching and redelivery feed the same messages through the processor in different
ways (one at a time, in batches, twice, stopped half way) and compare every key of the prefix
afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson

from bestand.ingest.producer import topic_for
from bestand.ops.metrics import WorkerMetrics
from bestand.profile import load_state
from bestand.settings import Settings
from bestand.simulate import simulate
from bestand.store import connect
from bestand.store.explain_log import LinkSink
from bestand.store.identity_graph import Answer
from bestand.store.keys import (
    ABSORBED_FIELD,
    LOG_FIELD,
    MET_FIELD,
    REDIRECT_FIELD,
    facts_pairs,
    person_value,
)
from bestand.stream.messages import Incoming, Outgoing
from bestand.stream.prepare import Prepared
from bestand.stream.worker import processor_for


def raw_messages(settings: Settings, events: Sequence[dict[str, Any]]) -> list[Incoming]:
    """Input messages as a worker reads them, one partition, offsets in order."""
    return [
        Incoming(topic_for(event, settings), 0, offset, None, orjson.dumps(event))
        for offset, event in enumerate(events)
    ]


async def worker_pass(
    settings: Settings, messages: Sequence[Incoming], batch: int, links: LinkSink | None = None
) -> list[Outgoing]:
    """Run the processor over ``messages`` in batches of ``batch`` (1: one by one);
    ``links``: where new persons' and links' explain entries go (the graph's logs without)."""
    client = connect(settings.redis_url)
    processor = processor_for(settings, client, WorkerMetrics(), links=links)
    out: list[Outgoing] = []
    try:
        for start in range(0, len(messages), batch):
            out += await processor.process(messages[start : start + batch])
    finally:
        await client.aclose()
    return out


async def graph_only(settings: Settings, messages: Sequence[Incoming]) -> list[Answer]:
    """The first half of a batch: its events resolved in the identity graph, and then the
    worker dies (nothing applied to persons, nothing sent, nothing committed)."""
    client = connect(settings.redis_url)
    processor = processor_for(settings, client, WorkerMetrics())
    try:
        prepared = processor.prepare(messages)
        steps = [step for step in prepared.steps if isinstance(step, Prepared)]
        return await processor.graph.resolve_answers([step.resolution for step in steps])
    finally:
        await client.aclose()


#: The fields a facts bucket and a graph bucket hold besides facts and graph entries, by the
#: name of the bucket layouts before 10 kept them in (``keys.py``).
_SHARED = (
    (":{g}:k:", LOG_FIELD, ":{g}:y:"),
    (":{g}:k:", REDIRECT_FIELD, ":{g}:r:"),
    (":{g}:k:", ABSORBED_FIELD, ":{g}:a:"),
    (":{g}:i:", MET_FIELD, ":{g}:m:"),
)


async def redis_state(settings: Settings, exact: bool = False) -> dict[str, Any]:
    """Every key of the prefix with its value, without version counters; ``exact``: every
    value as stored, versions included, with whether the key expires (a batch's stop flag,
    named after a random batch id, left out). The marked fields of facts and graph buckets
    (logs, redirects, absorbed persons, meetings) appear as the buckets of their own that
    layouts before 10 kept, so that a comparison can leave out one kind."""
    state = await _redis_state(settings, exact)
    for bucket, mark, own in _SHARED:
        for name in [n for n in state if n.startswith(bucket)]:
            value, expires = state[name] if exact else (state[name], False)
            if not isinstance(value, dict):
                continue
            marked = {f: v for f, v in value.items() if _text(f).startswith(mark)}
            if not marked:
                continue
            rest = {f: v for f, v in value.items() if f not in marked}
            moved = {_text(f)[len(mark) :].encode(): v for f, v in marked.items()}
            place = own + name[len(bucket) :]
            state[place] = (moved, False) if exact else moved
            if rest:
                state[name] = (rest, expires) if exact else rest
            else:
                del state[name]
    return state


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def unshare_buckets(settings: Settings) -> int:
    """Move the marked fields of facts and graph buckets back into buckets of their own, as
    layouts 5 to 9 kept them (for the tests of older layouts); how many moved."""
    client = connect(settings.redis_url)
    prefix = settings.redis_prefix
    moved = 0
    try:
        for bucket, mark, own in _SHARED:
            async for key in client.scan_iter(match=f"{prefix}{bucket}*"):
                name = key.decode()[len(prefix) + len(bucket) :]
                for field, value in (await client.hgetall(key)).items():
                    if field.decode().startswith(mark):
                        await client.hdel(key, field)
                        await client.hset(
                            f"{prefix}{own}{name}", field.decode()[len(mark) :], value
                        )
                        moved += 1
    finally:
        await client.aclose()
    return moved


async def _redis_state(settings: Settings, exact: bool = False) -> dict[str, Any]:
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
            if exact:
                if not name.startswith(":{g}:f:"):
                    out[name] = (await _value(client, key, kind), await client.ttl(key) > 0)
                continue
            if kind == "hash" and name.startswith(":l:"):
                records = await client.hgetall(key)
                out[name] = {  # lookup records without their versions
                    field: [person, *rest]
                    for field, (person, _version, *rest) in (
                        (f, r.split(b"\x1e")) for f, r in records.items()
                    )
                }
            elif kind == "string":
                out[name] = await client.get(key)
            elif kind == "set":
                out[name] = sorted(await client.smembers(key))
            elif kind == "list":
                out[name] = await client.lrange(key, 0, -1)
            elif kind == "zset":
                out[name] = await client.zrange(key, 0, -1, withscores=True)
            elif kind == "hash" and name.startswith(":p:"):
                out[name] = {}  # person states without their versions, or a redirect
                for person, value in (await client.hgetall(key)).items():
                    went, _, blob = person_value(value)
                    out[name][person] = went or replace(load_state("", blob), version=0)
            elif kind == "hash" and name.startswith(":{g}:k:"):
                out[name] = {  # persons' graph facts without their versions
                    person: facts
                    if person.decode().startswith((LOG_FIELD, REDIRECT_FIELD, ABSORBED_FIELD))
                    else [pair for pair in facts_pairs(facts) if pair[0] != "v"]
                    for person, facts in (await client.hgetall(key)).items()
                }
            elif kind == "hash":
                out[name] = await client.hgetall(key)
    finally:
        await client.aclose()
    return out


async def _value(client: Any, key: str, kind: str) -> Any:
    """A key's value as stored."""
    if kind == "string":
        return await client.get(key)
    if kind == "set":
        return sorted(await client.smembers(key))
    if kind == "list":
        return await client.lrange(key, 0, -1)
    if kind == "zset":
        return await client.zrange(key, 0, -1, withscores=True)
    return await client.hgetall(key)


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


def shuffled_shop(persons: int, seed: int) -> list[dict[str, Any]]:
    """A simulated shop, a tenth of it delivered twice, shuffled in blocks of 40: orders
    arrive before the visits that led to them, merges join persons late, redeliveries land
    within and across batches."""
    events = list(simulate(persons=persons, seed=seed).events)
    rng = random.Random(seed)
    stream = events + rng.sample(events, k=len(events) // 10)
    blocks = [stream[i : i + 40] for i in range(0, len(stream), 40)]
    rng.shuffle(blocks)
    return [event for block in blocks for event in block]


def sent(out: Sequence[Outgoing]) -> list[tuple[str, bytes | None, dict[str, Any]]]:
    """The messages a pass sent, the time they were made aside."""
    messages = []
    for message in out:
        body = orjson.loads(message.value)
        body.pop("changed_at", None)
        messages.append((message.destination, message.key, body))
    return messages


async def _pass_and_state(
    settings: Settings, stream: Sequence[dict[str, Any]], batch: int
) -> tuple[list[Outgoing], dict[str, Any]]:
    await clear(settings)
    try:
        out = await worker_pass(settings, raw_messages(settings, stream), batch=batch)
        return out, await redis_state(settings, exact=True)
    finally:
        await clear(settings)


async def two_passes(
    first: Settings, second: Settings, stream: Sequence[dict[str, Any]], batch: int
) -> tuple[dict[str, Any], dict[str, Any], list[Outgoing], list[Outgoing]]:
    """The same stream through the processor under two settings (two key prefixes): each
    one's exact Redis state and the messages it sent; both prefixes are removed after."""
    sent_first, state_first = await _pass_and_state(first, stream, batch)
    sent_second, state_second = await _pass_and_state(second, stream, batch)
    return state_first, state_second, sent_first, sent_second
