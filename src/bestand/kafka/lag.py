"""Consumer lag the way Kafka's own tools see it: end offset minus the group's committed offset.

The worker commits through the ordinary consumer group protocol, so ``kafka-consumer-groups
--describe``, kcat and Burrow show the same figures. :class:`LagProbe` reads them with two
long-lived clients (an admin client for the group's offsets, an unsubscribed consumer for end
offsets and for the timestamp of the oldest uncommitted message, which gives the lag's age).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


@dataclass(frozen=True)
class PartitionLag:
    """One topic-partition of a consumer group."""

    topic: str
    partition: int
    end: int
    committed: int | None  # None: the group never committed here
    oldest_at: float | None = None  # Kafka timestamp (s) of the oldest uncommitted message

    @property
    def lag(self) -> int:
        """Messages not yet committed."""
        return max(self.end - (self.committed or 0), 0)

    def age(self, now: float) -> float:
        """Seconds the oldest uncommitted message has waited; 0 when caught up."""
        if self.lag == 0 or self.oldest_at is None:
            return 0.0
        return max(now - self.oldest_at, 0.0)


def partition_lags(
    ends: Mapping[TopicPartition, int], committed: Mapping[TopicPartition, int | None]
) -> list[PartitionLag]:
    """Lag of every partition with an end offset, sorted by topic and partition."""
    rows = []
    for tp, end in ends.items():
        done = committed.get(tp)
        known = done if done is not None and done >= 0 else None
        rows.append(PartitionLag(tp.topic, tp.partition, end, known))
    return sorted(rows, key=lambda r: (r.topic, r.partition))


class LagProbe:
    """Reads a consumer group's lag per partition, again and again, over two connections."""

    def __init__(
        self, connection: str | Mapping[str, Any], group: str, topics: Sequence[str]
    ) -> None:
        """``connection``: bootstrap servers, or aiokafka client options (``client_options``)."""
        self._options: dict[str, Any] = (
            {"bootstrap_servers": connection} if isinstance(connection, str) else dict(connection)
        )
        self._group = group
        self._topics = list(topics)
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._assigned: set[TopicPartition] = set()

    async def start(self) -> None:
        """Connect both clients."""
        self._admin = AIOKafkaAdminClient(**self._options)
        await self._admin.start()
        self._consumer = AIOKafkaConsumer(**self._options, group_id=None, enable_auto_commit=False)
        await self._consumer.start()

    async def stop(self) -> None:
        """Close both clients."""
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
        self._admin = self._consumer = None

    async def __aenter__(self) -> LagProbe:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _partitions(self) -> set[TopicPartition]:
        assert self._admin is not None
        described = await self._admin.describe_topics(self._topics)
        return {
            TopicPartition(topic["topic"], part["partition"])
            for topic in described
            if not topic.get("error_code")
            for part in topic["partitions"]
        }

    async def _oldest_at(self, tp: TopicPartition, offset: int) -> float | None:
        """Kafka timestamp (seconds) of the message at ``offset``, if it can be read."""
        assert self._consumer is not None
        self._consumer.seek(tp, offset)
        self._consumer.resume(tp)
        try:
            records = await self._consumer.getmany(tp, timeout_ms=500, max_records=1)
        finally:
            self._consumer.pause(tp)
        for record in records.get(tp, []):
            if record.timestamp is not None and record.timestamp >= 0:
                return float(record.timestamp) / 1000
        return None

    async def read(self, *, ages: bool = True) -> list[PartitionLag]:
        """Every partition's lag (and, with ``ages``, the age of its oldest waiting message)."""
        if self._admin is None or self._consumer is None:
            await self.start()
        assert self._admin is not None
        assert self._consumer is not None
        partitions = await self._partitions()
        if not partitions:
            return []
        if partitions != self._assigned:
            self._consumer.assign(list(partitions))
            self._consumer.pause(*partitions)
            self._assigned = partitions
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(list(partitions))
        offsets = await self._admin.list_consumer_group_offsets(self._group)
        committed = {tp: meta.offset for tp, meta in offsets.items()}
        rows = partition_lags(ends, committed)
        if not ages:
            return rows
        out = []
        for row in rows:
            if row.lag:
                tp = TopicPartition(row.topic, row.partition)
                oldest = await self._oldest_at(tp, row.committed or 0)
                row = PartitionLag(row.topic, row.partition, row.end, row.committed, oldest)
            out.append(row)
        return out


def total_lag(rows: Sequence[PartitionLag]) -> int:
    """All messages the group has not committed."""
    return sum(row.lag for row in rows)


def max_age(rows: Sequence[PartitionLag], now: float | None = None) -> float:
    """The oldest uncommitted message's wait over all partitions, in seconds."""
    at = time.time() if now is None else now
    return max((row.age(at) for row in rows), default=0.0)
