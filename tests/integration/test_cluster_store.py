"""The worker's processor on a local Redis Cluster of three masters: the same answers as on
one Redis, every key where the cluster keeps it, and merges across slots that survive a
worker dying between their steps."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

import pytest
from redis.asyncio.cluster import RedisCluster
from test_store import SCENARIO, Pipeline, identify, order

from bestand.ops.metrics import WorkerMetrics
from bestand.settings import Settings
from bestand.stack.cluster import LocalRedisCluster
from bestand.store import Keys
from bestand.store.cluster_profiles import ClusterProfileStore
from bestand.store.router import Router, connect_store
from bestand.stream.worker import processor_for

pytestmark = pytest.mark.integration


class ClusterPipeline(Pipeline):
    """``test_store.Pipeline`` (feed, answer, snapshot) with the worker's processor on the
    cluster, with a key prefix of its own."""

    def __init__(self, port: int, prefix: str | None = None) -> None:
        prefix = prefix or f"c{uuid.uuid4().hex[:8]}"
        url = f"redis://127.0.0.1:{port}/0"
        self.settings = Settings(
            _env_file=None, redis_url=url, redis_prefix=prefix, redis_cluster=True
        )
        self.keys = Keys(prefix)
        self.client = connect_store(url, cluster=True)
        self.router = Router(cast(RedisCluster, self.client), url)

    async def start(self) -> None:
        await self.router.start()
        self.processor = processor_for(
            self.settings, self.client, WorkerMetrics(), router=self.router
        )
        self.profiles = cast(ClusterProfileStore, self.processor.profiles)

    async def keys_by_node(self) -> dict[int, list[bytes]]:
        out: dict[int, list[bytes]] = {}
        for node in self.router.cluster.get_primaries():
            found = await node.execute_command("KEYS", f"{self.keys.prefix}:*")
            out[int(node.port)] = sorted(found)
        return out

    async def close(self) -> None:
        await self.router.aclose()


def test_the_scenario_answers_on_the_cluster_as_on_one_redis(
    redis_cluster: LocalRedisCluster, redis_url: str
) -> None:
    async def go() -> tuple[dict[str, Any], dict[str, Any], dict[int, list[bytes]], str]:
        single = Pipeline(redis_url)
        spread = ClusterPipeline(redis_cluster.ports[0])
        await spread.start()
        try:
            await single.feed(SCENARIO)
            await spread.feed(SCENARIO)
            by_node = await spread.keys_by_node()
            return await single.snapshot(), await spread.snapshot(), by_node, spread.keys.graph
        finally:
            await single.client.aclose()
            await spread.close()

    one, many, by_node, graph = asyncio.run(go())
    assert many == one
    assert many["same"] == 1  # the scenario's identifiers end as one person
    assert sum(1 for keys in by_node.values() if keys) >= 2, by_node  # the store spreads
    graph_nodes = [port for port, keys in by_node.items() if any(graph.encode() in k for k in keys)]
    assert len(graph_nodes) == 1  # the identity graph on one master, under its hash tag


class _Died(Exception):
    """The worker died here."""


def _opened(n: int, email: str) -> tuple[str, dict[str, Any]]:
    return "email", {
        "type": "email_opened",
        "event_id": f"st-{n}",
        "event_time": "2026-10-15T08:00:00Z",
        "email": email,
    }


async def _merge_across_masters(port: int) -> list[tuple[str, dict[str, Any]]]:
    """Two customers whose persons lie on different masters, and an event that merges them
    (person ids come from the events, whatever the prefix)."""
    scratch = ClusterPipeline(port)
    await scratch.start()
    try:
        for n in range(1, 80, 2):
            events = [
                order(n, email=f"p{n}@example.com"),
                order(n + 1, email=f"p{n + 1}@example.com", phone=f"0151 2222{n:04d}"),
                _opened(n + 200, f"p{n}@example.com"),  # counted: folded twice, counted twice
                _opened(n + 300, f"p{n + 1}@example.com"),
                identify(n + 100, email=f"p{n}@example.com", phone=f"+49 151 2222{n:04d}"),
            ]
            await scratch.feed(events[:2])
            persons = [
                (await scratch.answer("email", f"p{m}@example.com"))["person_id"]
                for m in (n, n + 1)
            ]
            nodes = {scratch.router.node_of(scratch.keys.person(p)) for p in persons}
            if len(nodes) == 2:
                return events
    finally:
        await scratch.close()
    raise AssertionError("no two persons on different masters in 40 tries")


async def _answers(spread: ClusterPipeline, emails: list[str]) -> list[dict[str, Any]]:
    return [await spread.answer("email", e) for e in emails]


async def _person_values(spread: ClusterPipeline) -> dict[str, bytes]:
    """Every person's field of its bucket (redirects, states, kept states)."""
    out: dict[str, bytes] = {}
    async for key in spread.client.scan_iter(match=f"{spread.keys.prefix}:p:*"):
        for person, value in (await spread.client.hgetall(key)).items():
            out[person.decode()] = value
    return out


@pytest.mark.parametrize("dies_before", ["write", "drop"])
def test_a_merge_across_masters_ends_as_the_clean_run_after_a_worker_died_between_its_steps(
    redis_cluster: LocalRedisCluster, dies_before: str
) -> None:
    """The absorbed person became a redirect that keeps its state, and the worker died before
    the survivor was written (or before the kept state was dropped): the batch delivered
    again ends where the clean run ends, with no kept state left and nothing counted twice."""

    async def go() -> tuple[Any, ...]:
        events = await _merge_across_masters(redis_cluster.ports[0])
        emails = [events[0][1]["customer"]["email"], events[1][1]["customer"]["email"]]
        clean, dying = (
            ClusterPipeline(redis_cluster.ports[0]),
            ClusterPipeline(redis_cluster.ports[1]),
        )
        for p in (clean, dying):
            await p.start()
        try:
            await clean.feed(events)
            await dying.feed(events[:-1])
            steps = dying.profiles._run_items
            seen: list[str] = []

            async def dies(step: str, items: Any) -> Any:
                seen.append(step)
                if step == dies_before and items:
                    raise _Died(step)
                return await steps(step, items)

            dying.profiles._run_items = dies  # type: ignore[method-assign]
            with pytest.raises(_Died):
                await dying.one(*events[-1])
            between = await _person_values(dying)
            dying.profiles._run_items = steps  # type: ignore[method-assign]
            await dying.one(*events[-1], offset=1)  # delivered again
            return (
                await _answers(clean, emails),
                await _answers(dying, emails),
                between,
                await _person_values(clean),
                await _person_values(dying),
                seen,
            )
        finally:
            for p in (clean, dying):
                await p.close()

    clean, after, between, clean_values, after_values, seen = asyncio.run(go())
    assert seen[:2] == ["keep", "write"]
    kept = [v for v in between.values() if v[:1] == b"r" and b"\x1f" in v]
    assert len(kept) == 1, between  # the absorbed person kept its state beside its redirect
    assert after == clean
    assert after[0]["orders_count"] == 2
    assert after[0]["person_id"] == after[1]["person_id"]
    assert after_values == clean_values  # no kept state left, the same redirect and state
    assert not [v for v in after_values.values() if v[:1] == b"r" and b"\x1f" in v]
