"""Value bands rank a sample of the persons' states: every person of a small shop, a share of a
larger one, on one Redis and on a cluster."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest
from redis.asyncio.cluster import RedisCluster
from support import run

from bestand.ops.metrics import WorkerMetrics
from bestand.profile.value import threshold_ranks, thresholds_from_ranks
from bestand.settings import Settings
from bestand.store import Keys
from bestand.store.router import Router, connect_store
from bestand.store.values import lifetime_value, read_thresholds, sample_values
from bestand.stream.worker import processor_for
from stages import raw_messages, shuffled_shop

pytestmark = pytest.mark.integration


async def _feed(settings: Settings, client: Any) -> None:
    """The worker's processor over a 300-person shop, batches of 200."""
    router = None
    if settings.redis_cluster:
        router = Router(cast(RedisCluster, client), settings.redis_url)
        await router.start()
    processor = processor_for(settings, client, WorkerMetrics(), router=router)
    messages = raw_messages(settings, shuffled_shop(300, 5))
    try:
        for start in range(0, len(messages), 200):
            await processor.process(messages[start : start + 200])
    finally:
        if router is not None:
            await router.aclose()


async def _exact(client: Any, keys: Keys, settings: Settings) -> tuple[list[int], int]:
    """Every customer's value, read person by person (what the sample must equal when it
    covers the shop), and how many persons live."""
    processor = processor_for(settings, client, WorkerMetrics())
    values, persons = [], 0
    async for bucket in client.scan_iter(match=f"{keys.persons}*"):
        for person in await client.hkeys(bucket):
            state = await processor.profiles.load(person.decode())
            if state.person_id != person.decode():
                continue  # merged away: its survivor counts
            persons += 1
            if (cents := lifetime_value(state)) is not None:
                values.append(cents)
    return values, persons


@pytest.mark.parametrize("cluster", [False, True], ids=["one-redis", "cluster"])
def test_thresholds_of_a_small_shop_are_exact_and_a_sample_stops_early(
    redis_url: str, redis_cluster_url: str, cluster: bool
) -> None:
    url = redis_cluster_url if cluster else redis_url
    prefix = f"vs{uuid.uuid4().hex[:6]}"
    settings = Settings(_env_file=None, redis_url=url, redis_cluster=cluster, redis_prefix=prefix)
    keys = Keys(prefix)

    async def go() -> None:
        client = connect_store(url, cluster)
        try:
            await _feed(settings, client)
            values, persons = await _exact(client, keys, settings)
            assert len(values) > 50  # the shop has customers
            whole, read = await sample_values(client, keys)
            assert (sorted(whole), read) == (sorted(values), persons)
            ordered = sorted(values, reverse=True)
            ranks = threshold_ranks(len(values))
            exact = thresholds_from_ranks(len(values), {r: ordered[r] for r in ranks})
            assert await read_thresholds(client, keys) == exact
            # A sample stops after the round trip that passed its size.
            part, read = await sample_values(client, keys, 40)
            assert 40 <= read < persons
            assert len(part) < len(values)
        finally:
            async for key in client.scan_iter(match=f"{prefix}:*"):
                await client.delete(key)
            await client.aclose()

    run(go())
