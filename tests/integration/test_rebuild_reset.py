"""``bestand rebuild`` empties its key prefix in Redis, a SCAN step at a time, and keeps the
erasure tombstones and every other prefix."""

from __future__ import annotations

import uuid

import pytest
from support import run

from bestand.ops.rebuild import rebuild
from bestand.settings import Settings
from bestand.store import Keys
from bestand.store.router import connect_store

pytestmark = pytest.mark.integration


async def _fill(settings: Settings, other: str) -> None:
    keys = Keys(settings.redis_prefix)
    client = connect_store(settings.redis_url, settings.redis_cluster)
    try:
        async with client.pipeline(transaction=False) as pipe:
            for n in range(12_000):  # several SCAN steps of the reset
                pipe.hset(f"{keys.lookups}{n}", "e:x", "r")  # a bucket each
            for n in range(3):
                pipe.hset(keys.person(f"p{n}"), "v", 1)
                pipe.set(keys.tombstone(f"e:gone{n}"), 1_700_000_000)
            pipe.set(f"{other}:l:e:1", "r")
            pipe.set(f"{settings.redis_prefix}x:l:e:1", "r")  # a longer prefix, not this one
            await pipe.execute()
    finally:
        await client.aclose()


async def _left(settings: Settings, pattern: str) -> list[str]:
    client = connect_store(settings.redis_url, settings.redis_cluster)
    try:
        return sorted([key.decode() async for key in client.scan_iter(match=pattern)])
    finally:
        await client.aclose()


async def _clear(settings: Settings, *patterns: str) -> None:
    client = connect_store(settings.redis_url, settings.redis_cluster)
    try:
        for pattern in patterns:
            keys = [key async for key in client.scan_iter(match=pattern)]
            if keys:
                await client.unlink(*keys)
    finally:
        await client.aclose()


@pytest.mark.parametrize("store", ["one Redis", "a cluster"])
def test_rebuild_deletes_the_prefix_but_tombstones_and_other_prefixes(
    kafka_bootstrap: str, store: str, request: pytest.FixtureRequest
) -> None:
    cluster = store == "a cluster"
    prefix = f"rr{uuid.uuid4().hex[:6]}"
    other = f"{prefix}-other"
    settings = Settings(
        _env_file=None,
        kafka_bootstrap=kafka_bootstrap,
        redis_url=request.getfixturevalue("redis_cluster_url" if cluster else "redis_url"),
        redis_cluster=cluster,
        redis_prefix=prefix,
        app_id=f"bestand-{prefix}",
    )
    lines: list[str] = []
    run(_fill(settings, other))
    try:
        done = run(rebuild(settings, report=lines.append))
        left = run(_left(settings, f"{prefix}*"))
    finally:
        run(_clear(settings, f"{prefix}*"))
    assert done.keys_deleted == 12_003
    tombstones = [Keys(prefix).tombstone(f"e:gone{n}") for n in range(3)]
    assert left == sorted([*tombstones, f"{other}:l:e:1", f"{prefix}x:l:e:1"])
    assert lines[0] == f"deleting the keys of prefix {prefix!r} in Redis …"
