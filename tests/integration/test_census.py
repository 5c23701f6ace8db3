"""The census counts persons, graph entries, their buckets and the fullest bucket."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from bestand.ops.census import Census, Counts
from bestand.store import Keys, connect
from bestand.store.keys import bucket_field

pytestmark = pytest.mark.integration


def test_the_census_counts_entries_and_the_fullest_bucket(redis_url: str) -> None:
    keys = Keys(f"cn{uuid.uuid4().hex[:6]}")
    # Three persons; the first graph bucket holds five entries, two others one each.
    tokens = [f"e:AAA{n}xyz" for n in range(5)] + ["e:BBB0xyz", "p:CCC0xyz"]

    async def go() -> list[Counts]:
        client = connect(redis_url)
        try:
            for n, token in enumerate(tokens):
                await client.hset(keys.identifier(token), bucket_field(token), f"P{n % 3}")
            # Persons are fields of facts buckets: two share one here.
            for person in ("PPP0", "PPP1", "QQQ2"):
                await client.hset(keys.facts(person), person, "v\x1f1")
            await client.set(keys.junk("e:DDD0xyz"), "why")  # not counted
            census = Census(client, keys, slice_keys=2)
            passes: list[Counts] = []
            while len(passes) < 2:  # a second pass counts afresh
                counted = await census.step()
                if counted is not None:
                    passes.append(counted)
            return passes
        finally:
            await client.delete(*[k async for k in client.scan_iter(match=keys.pattern())])
            await client.aclose()

    first, second = asyncio.run(go())
    assert first == Counts(persons=3, identifiers=7, buckets=3, fullest=5)
    assert second == first
