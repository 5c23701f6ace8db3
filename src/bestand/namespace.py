"""Isolated namespaces on a shared Kafka and Redis: own topics, consumer group and key prefix.

The demo and the evaluation run in namespaces of their own, reset at each start, so they never
touch a deployment's real topics or keys.
"""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from bestand.kafka.options import client_options
from bestand.kafka.topics import all_topics, delete_topics, ensure_topics
from bestand.settings import Settings
from bestand.store import Keys
from bestand.store.router import connect_store

TOPIC_KINDS = (
    "clickstream",
    "orders",
    "email",
    "customer",
    "dlq",
    "profile_changes",
    "explain",
)


def namespaced(settings: Settings, name: str, redis_prefix: str) -> Settings:
    """``settings`` moved into namespace ``name`` (topics ``name.*``, group ``name``)."""
    update: dict[str, str] = {"app_id": name, "redis_prefix": redis_prefix}
    update |= {f"topic_{kind}": f"{name}.{kind.replace('_', '-')}" for kind in TOPIC_KINDS}
    return settings.model_copy(update=update)


def environment(settings: Settings) -> dict[str, str]:
    """Environment variables that give child processes the same namespace and servers."""
    names = ["app_id", "redis_prefix", "kafka_bootstrap", "redis_url", "redis_cluster"]
    names += [f"topic_{kind}" for kind in TOPIC_KINDS]
    return {f"BESTAND_{name.upper()}": str(getattr(settings, name)) for name in names}


class NamespaceBusy(RuntimeError):
    """Workers of an earlier run still consume in the namespace; resetting under them would
    mix their results into this run's."""


async def active_members(settings: Settings) -> int:
    """Members of the settings' consumer group (running workers)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        # A fresh broker creates its offsets topic on the first group request and answers
        # "coordinator not available" for a few seconds meanwhile.
        for attempt in range(60):
            try:
                (response,) = await admin.describe_consumer_groups([settings.app_id])
            except GroupCoordinatorNotAvailableError:
                if attempt == 59:
                    raise
                await asyncio.sleep(0.5)
                continue
            return sum(len(group[5]) for group in response.groups)
        return 0  # pragma: no cover - the loop returns or raises
    finally:
        await admin.close()


async def reset(settings: Settings) -> None:
    """Start from nothing: delete the namespace's topics and Redis keys, then create topics.

    Refuses (:class:`NamespaceBusy`) while the namespace's consumer group has members.
    """
    members = await active_members(settings)
    if members:
        raise NamespaceBusy(
            f"{members} worker(s) still consume as group {settings.app_id!r} (an earlier run "
            "that was not stopped?); stop them, or wait for their session to time out"
        )
    await delete_topics(settings, all_topics(settings))
    client = connect_store(settings.redis_url, settings.redis_cluster)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=Keys(settings.redis_prefix).pattern(), count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await client.unlink(*batch)
                batch.clear()
        if batch:
            await client.unlink(*batch)
    finally:
        await client.aclose()
    await ensure_topics(settings)
