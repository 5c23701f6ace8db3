"""Create bestand's topics with the configured partitions, and read consumer lag."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from bestand.kafka.options import client_options
from bestand.settings import Settings

log = logging.getLogger(__name__)


def all_topics(settings: Settings) -> list[str]:
    """Every topic the workers read or write."""
    return [
        *settings.input_topics,
        settings.topic_dlq,
        settings.topic_profile_changes,
        settings.topic_explain,
    ]


def topic_configs(settings: Settings, name: str) -> dict[str, str]:
    """What a topic is created with besides its partitions: the explain topic is compacted
    (a key's last value stands, a tombstone takes it away: ``kafka/explain_topic.py``)."""
    return {"cleanup.policy": "compact"} if name == settings.topic_explain else {}


async def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics; return the names created (existing ones are left as they are)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in all_topics(settings) if name not in existing]
        if missing:
            # Another process may win the race to create them: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            name,
                            settings.topic_partitions,
                            settings.topic_replication,
                            topic_configs=topic_configs(settings, name),
                        )
                        for name in missing
                    ]
                )
            await _wait_for_leaders(admin, missing)
        return missing
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, topics: list[str]) -> None:
    """New topics take a moment to elect partition leaders; producing before gets retries."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        described = await admin.describe_topics(topics)
        if all(
            not topic.get("error_code")
            and topic["partitions"]
            and all(part["leader"] >= 0 for part in topic["partitions"])
            for topic in described
        ):
            return
        await asyncio.sleep(0.1)


async def delete_topics(settings: Settings, names: list[str], wait_s: float = 30.0) -> None:
    """Delete topics and wait until the broker no longer lists them."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        present = [name for name in names if name in set(await admin.list_topics())]
        if present:
            await admin.delete_topics(present)
        deadline = asyncio.get_running_loop().time() + wait_s
        while present and asyncio.get_running_loop().time() < deadline:
            present = [name for name in present if name in set(await admin.list_topics())]
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def partitions_of(settings: Settings, topics: list[str]) -> list[TopicPartition]:
    """Every partition of ``topics`` (missing topics have none), sorted."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return sorted(
        (
            TopicPartition(topic["topic"], part["partition"])
            for topic in described
            if not topic.get("error_code")
            for part in topic["partitions"]
        ),
        key=lambda tp: (tp.topic, tp.partition),
    )


async def end_offsets(settings: Settings, topics: list[str]) -> dict[TopicPartition, int]:
    """The end offset of every partition of ``topics`` (missing topics have none)."""
    partitions = await partitions_of(settings, topics)
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        # Assigning makes the client fetch these topics' metadata; pausing stops prefetching.
        consumer.assign(partitions)
        consumer.pause(*partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()


async def consumer_lag(settings: Settings, group: str, topics: list[str]) -> dict[str, int]:
    """Messages not yet committed by ``group`` per topic (end offset minus committed offset)."""
    ends = await end_offsets(settings, topics)
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    lag = dict.fromkeys(topics, 0)
    for tp, end in ends.items():
        meta = committed.get(tp)
        done = meta.offset if meta is not None and meta.offset >= 0 else 0
        lag[tp.topic] += max(end - done, 0)
    return lag
