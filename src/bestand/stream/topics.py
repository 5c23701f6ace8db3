"""Create bestand's topics with the configured partitions, and read consumer lag."""

from __future__ import annotations

import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from bestand.settings import Settings

log = logging.getLogger(__name__)


def all_topics(settings: Settings) -> list[str]:
    """Every topic the workers read or write."""
    return [*settings.input_topics, settings.topic_resolved, settings.topic_dlq]


async def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics; return the names created (existing ones are left as they are)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in all_topics(settings) if name not in existing]
        if missing:
            # Another process may win the race to create them: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(name, settings.topic_partitions, settings.topic_replication)
                        for name in missing
                    ]
                )
        return missing
    finally:
        await admin.close()


async def consumer_lag(settings: Settings, group: str, topics: list[str]) -> dict[str, int]:
    """Messages not yet committed by ``group`` per topic (end offset minus committed offset)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or set())
        ]
        ends = await consumer.end_offsets(partitions) if partitions else {}
        lag: dict[str, int] = dict.fromkeys(topics, 0)
        for tp, end in ends.items():
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag[tp.topic] += max(end - done, 0)
        return lag
    finally:
        await consumer.stop()
        await admin.close()
