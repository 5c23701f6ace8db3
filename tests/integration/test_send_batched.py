"""A batch's outputs sent as record batches land where ``send`` would put them, in order."""

from __future__ import annotations

import random
import uuid

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner
from support import run

from bestand.kafka.batches import KeyPartitions, send_batched

PARTITIONS = 5


async def _topic(bootstrap: str) -> str:
    name = f"t-batched-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()
    return name


async def _read(bootstrap: str, topic: str, expect: int) -> dict[int, list[dict[str, object]]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    found: dict[int, list[dict[str, object]]] = {}
    try:
        for _ in range(120):
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                found.setdefault(tp.partition, []).extend(orjson.loads(r.value) for r in records)
            if sum(len(v) for v in found.values()) >= expect:
                break
        # Anything more (a message sent twice) would show up now.
        for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
            found.setdefault(tp.partition, []).extend(orjson.loads(r.value) for r in records)
    finally:
        await consumer.stop()
    return found


def test_records_land_on_the_default_partitioners_partition_in_order(kafka_bootstrap: str) -> None:
    rng = random.Random(5)
    keys = [f"P{n:04d}".encode() for n in range(40)]
    messages: list[tuple[str, bytes | None, bytes]] = []

    async def scenario() -> dict[int, list[dict[str, object]]]:
        topic = await _topic(kafka_bootstrap)
        # Small record batches, so that a partition's records fill several of them.
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            max_batch_size=2048,
        )
        await producer.start()
        try:
            for n in range(900):
                key = None if n % 50 == 0 else rng.choice(keys)
                body = {
                    "n": n,
                    "key": key.decode() if key else None,
                    "pad": "x" * rng.randint(0, 300),
                }
                messages.append((topic, key, orjson.dumps(body)))
            partitions = KeyPartitions()
            await send_batched(producer, messages[:450], partitions)
            await send_batched(producer, messages[450:], partitions)
        finally:
            await producer.stop()
        return await _read(kafka_bootstrap, topic, len(messages))

    found = run(scenario())
    everything = [record["n"] for records in found.values() for record in records]
    assert sorted(everything) == list(range(900))  # each exactly once
    all_partitions = list(range(PARTITIONS))
    for partition, records in found.items():
        for record in records:
            if record["key"] is not None:
                key = str(record["key"]).encode()
                assert DefaultPartitioner()(key, all_partitions, all_partitions) == partition
        by_key: dict[object, list[int]] = {}
        for record in records:
            by_key.setdefault(record["key"], []).append(int(str(record["n"])))
        for numbers in by_key.values():
            assert numbers == sorted(numbers)  # a key's messages keep their order
    assert len(found) == PARTITIONS
