"""The lookup reader's coalescing: lookups in flight together share one pipeline."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from bestand.store import Keys, LookupReader

KEYS = Keys("t")


def record(person: str, orders: int = 1) -> bytes:
    return f"{person}\x1e1\x1e{orders}".encode()


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self._redis = redis
        self._keys: list[tuple[str, str]] = []

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def hget(self, key: str, field: str) -> FakePipeline:
        self._keys.append((key, field))
        return self

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        self._redis.pipelines.append(list(self._keys))
        self._redis.in_flight += 1
        self._redis.most_in_flight = max(self._redis.most_in_flight, self._redis.in_flight)
        try:
            await self._redis.round_trip()
        finally:
            self._redis.in_flight -= 1
        replies = [self._redis.reply(key) for key in self._keys]
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        return replies


class FakeRedis:
    """Answers HGET from a dict by (bucket, field); counts single commands and pipelines."""

    def __init__(self, data: dict[str, Any], delay: float = 0.0) -> None:
        self.data = data
        self.delay = delay
        self.singles: list[tuple[str, str]] = []
        self.pipelines: list[list[tuple[str, str]]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.down = False

    async def round_trip(self) -> None:
        await asyncio.sleep(self.delay)
        if self.down:
            raise RedisConnectionError("Redis went away")

    def reply(self, entry: tuple[str, str]) -> Any:
        return self.data.get(entry)

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        assert transaction is False
        return FakePipeline(self)

    async def hget(self, key: str, field: str) -> Any:
        self.singles.append((key, field))
        await self.round_trip()
        reply = self.reply((key, field))
        if isinstance(reply, Exception):
            raise reply
        return reply


def reader(fake: FakeRedis, **options: int) -> LookupReader:
    return LookupReader(cast(Redis, fake), KEYS, **options)


def shop(count: int) -> dict[tuple[str, str], Any]:
    return {KEYS.lookup_entry(f"email:{n}"): record(f"P{n}", n) for n in range(count)}


def test_lookups_in_flight_together_share_one_pipeline() -> None:
    fake = FakeRedis(shop(10))
    lookups = reader(fake)

    async def run() -> list[Any]:
        tokens = [f"email:{n}" for n in (3, 1, 99, 7)]
        return await asyncio.gather(*(lookups.get(t) for t in tokens))

    answers = asyncio.run(run())
    assert [a.person_id if a else None for a in answers] == ["P3", "P1", None, "P7"]
    assert [a.orders_count if a else None for a in answers] == [3, 1, None, 7]
    assert fake.pipelines == [[KEYS.lookup_entry(f"email:{n}") for n in (3, 1, 99, 7)]]
    assert fake.singles == []


def test_a_lone_lookup_is_one_command_without_waiting() -> None:
    fake = FakeRedis(shop(2))
    lookups = reader(fake)

    async def run() -> list[str | None]:
        out = []
        for n in (0, 1, 5):  # one after the other: nothing to coalesce with
            found = await lookups.get(f"email:{n}")
            out.append(found.person_id if found else None)
        return out

    assert asyncio.run(run()) == ["P0", "P1", None]
    assert fake.singles == [KEYS.lookup_entry(f"email:{n}") for n in (0, 1, 5)]
    assert fake.pipelines == []


def test_a_burst_is_cut_into_pipelines_of_max_batch() -> None:
    fake = FakeRedis(shop(10))
    lookups = reader(fake, max_batch=4)

    async def run() -> list[Any]:
        return await asyncio.gather(*(lookups.get(f"email:{n}") for n in range(10)))

    answers = asyncio.run(run())
    assert [a.person_id for a in answers] == [f"P{n}" for n in range(10)]
    assert [len(p) for p in fake.pipelines] == [4, 4, 2]
    assert fake.most_in_flight == 3  # sent at once, not one after the other


def test_lookups_wait_for_a_free_pipeline_and_then_go_together() -> None:
    fake = FakeRedis(shop(20), delay=0.01)
    lookups = reader(fake, max_pipelines=1)

    async def run() -> list[Any]:
        first = asyncio.gather(*(lookups.get(f"email:{n}") for n in range(3)))
        await asyncio.sleep(0.002)  # the first pipeline is in flight now
        later = [asyncio.ensure_future(lookups.get(f"email:{n}")) for n in range(3, 20)]
        await asyncio.sleep(0)
        return [*(await first), *(await asyncio.gather(*later))]

    answers = asyncio.run(run())
    assert [a.person_id for a in answers] == [f"P{n}" for n in range(20)]
    assert fake.most_in_flight == 1
    assert [len(p) for p in fake.pipelines] == [3, 17]


def test_a_redis_failure_reaches_every_waiting_lookup() -> None:
    fake = FakeRedis(shop(5))
    fake.down = True
    lookups = reader(fake)

    async def run() -> list[Any]:
        return await asyncio.gather(
            *(lookups.get(f"email:{n}") for n in range(5)), return_exceptions=True
        )

    outcomes = asyncio.run(run())
    assert all(isinstance(o, RedisConnectionError) for o in outcomes)

    fake.down = False

    async def again() -> Any:
        return await lookups.get("email:2")

    assert asyncio.run(again()).person_id == "P2"  # the reader recovers with Redis


def test_an_error_reply_fails_only_its_own_lookup() -> None:
    data = shop(3)
    data[KEYS.lookup_entry("email:1")] = ResponseError("WRONGTYPE")
    fake = FakeRedis(data)
    lookups = reader(fake)

    async def run() -> list[Any]:
        return await asyncio.gather(
            *(lookups.get(f"email:{n}") for n in range(3)), return_exceptions=True
        )

    first, second, third = asyncio.run(run())
    assert isinstance(second, ResponseError)
    assert (first.person_id, third.person_id) == ("P0", "P2")


def test_a_cancelled_lookup_leaves_the_others_answered() -> None:
    fake = FakeRedis(shop(4), delay=0.01)
    lookups = reader(fake)

    async def run() -> list[Any]:
        tasks = [asyncio.ensure_future(lookups.get(f"email:{n}")) for n in range(4)]
        await asyncio.sleep(0.002)
        tasks[1].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    answers = asyncio.run(run())
    assert isinstance(answers[1], asyncio.CancelledError)
    assert [answers[n].person_id for n in (0, 2, 3)] == ["P0", "P2", "P3"]


@pytest.mark.parametrize("count", [0, 1, 3])
def test_get_many_is_one_pipeline_in_order(count: int) -> None:
    fake = FakeRedis(shop(3))
    lookups = reader(fake)
    tokens = [f"email:{n}" for n in reversed(range(count))]
    answers = asyncio.run(lookups.get_many(tokens))
    assert [a.person_id if a else None for a in answers] == [
        f"P{n}" for n in reversed(range(count))
    ]
    assert fake.pipelines == ([[KEYS.lookup_entry(t) for t in tokens]] if count else [])
