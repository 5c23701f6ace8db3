"""The ingest benchmark first removes what runs stopped before their cleanup left behind.

A million-event run that is killed leaves millions of Redis keys under its own prefix; every
later run would measure a Redis that much larger.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from support import run

from bestand.kafka.options import client_options
from bestand.kafka.topics import ensure_topics
from bestand.settings import Settings
from bestand.store import connect

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import ingest  # noqa: E402


async def _topics(settings: Settings) -> set[str]:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _keys(settings: Settings, pattern: str) -> list[bytes]:
    client = connect(settings.redis_url)
    try:
        return [key async for key in client.scan_iter(match=pattern)]
    finally:
        await client.aclose()


async def _leave_a_stopped_run(settings: Settings, stopped: Settings, other: str) -> None:
    client = connect(settings.redis_url)
    try:
        for n in range(30):
            await client.set(f"{stopped.redis_prefix}:{{g}}:i:e:{n}", "p")
            await client.hset(f"{ingest.CEILING_PREFIX}stopped1:p:{n}", "n", 1)
        await client.set(f"{other}:kept", "1")
    finally:
        await client.aclose()
    await ensure_topics(stopped)


def test_leftovers_of_stopped_runs_are_removed(kafka_bootstrap: str, redis_url: str) -> None:
    here = {"kafka_bootstrap": kafka_bootstrap, "redis_url": redis_url}
    settings = ingest.bench_settings().model_copy(update=here)
    stopped = ingest.bench_settings("stopped1").model_copy(update=here)
    other = "bench-ingestion-of-someone-else"  # a prefix the patterns must not reach
    run(_leave_a_stopped_run(settings, stopped, other))
    assert stopped.topic_dlq in run(_topics(settings))

    removed = run(ingest.clear_stopped_runs(settings))

    assert removed == "60 Redis keys and 2 topics of runs that were stopped"
    assert run(_keys(settings, "bench-*ingest*")) == [f"{other}:kept".encode()]
    assert run(_keys(settings, f"{ingest.CEILING_PREFIX}*")) == []
    left = run(_topics(settings))
    assert stopped.topic_dlq not in left
    assert stopped.topic_profile_changes not in left
    assert run(ingest.clear_stopped_runs(settings)) is None
    run(_unlink(settings, f"{other}:kept"))


async def _unlink(settings: Settings, key: str) -> None:
    client = connect(settings.redis_url)
    try:
        await client.unlink(key)
    finally:
        await client.aclose()
