"""Send a batch's outputs to Kafka as record batches, one per topic partition.

``AIOKafkaProducer.send`` costs 20–30 µs of Python per message (a coroutine, a future, a log
call and a pure-Python murmur2 hash of the key each); the worker sends about one message per
three events. Here the messages of a batch are sorted into record batches by the partition
the producer's default partitioner would pick (murmur2 of the key, as the Java client does;
the partition of a key is remembered), appended in order and sent with ``send_batch``: the
same records on the same partitions in the same order, and one future per record batch.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

#: Partitions remembered per topic (keys are person ids: the same ones come back).
_REMEMBERED = 100_000


class KeyPartitions:
    """The partition the default partitioner picks for a key, remembered per topic."""

    def __init__(self, remembered: int = _REMEMBERED) -> None:
        self._remembered = remembered
        self._chosen: dict[tuple[str, int], dict[bytes, int]] = {}

    def partition(self, topic: str, key: bytes | None, partitions: Sequence[int]) -> int:
        """``DefaultPartitioner``'s choice among ``partitions`` (all of the topic's, sorted)."""
        if key is None:
            return random.choice(partitions)
        chosen = self._chosen.setdefault((topic, len(partitions)), {})
        found = chosen.get(key)
        if found is None:
            found = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
            if len(chosen) >= self._remembered:
                chosen.clear()
            chosen[key] = found
        return found


async def send_batched(
    producer: AIOKafkaProducer,
    messages: Sequence[tuple[str, bytes | None, bytes | None]],
    partitions: KeyPartitions,
    routes: Sequence[bytes | None] | None = None,
) -> None:
    """Send ``(topic, key, value)`` messages and wait until Kafka acknowledged all of them
    (a value of ``None`` is a tombstone, for a compacted topic).

    Messages of one key keep their order (they share a partition, and its record batches are
    queued in order). ``routes``, one per message where given, picks the partition in the
    key's place (the explain topic's keys are ``<person>/<event>``, its partitions the
    person's). Raises what the producer raises; a caller that sends again after an error may
    send some messages twice, as with ``send``.
    """
    by_partition: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = {}
    known: dict[str, list[int]] = {}
    for i, (topic, key, value) in enumerate(messages):
        all_partitions = known.get(topic)
        if all_partitions is None:
            all_partitions = known[topic] = sorted(await producer.partitions_for(topic))
        route = key if routes is None or routes[i] is None else routes[i]
        where = (topic, partitions.partition(topic, route, all_partitions))
        by_partition.setdefault(where, []).append((key, value))
    pending: list[asyncio.Future[object]] = []
    for (topic, partition), records in by_partition.items():
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(timestamp=None, key=key, value=value) is None:
                # Full: send it and start the next one (an empty batch takes any record
                # the producer accepts at all).
                pending.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(timestamp=None, key=key, value=value) is None:
                    size = len(value or b"")
                    raise ValueError(f"a message of {size} bytes does not fit a batch")
        pending.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*pending)
