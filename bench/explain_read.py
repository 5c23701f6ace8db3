"""How long the explain API waits for a person's history: one read of its explain-topic partition.

    python bench/explain_read.py [--messages 500000] [--per-person 2.3]

The history of a person is the messages of its partition under its key (``kafka/explain_topic.py``):
a read scans the whole partition from its start. This fills a one-partition topic of the stack's
Kafka with ``--messages`` messages shaped as the worker sends them (``<person>/<event>`` keys, a new
person's or link entry each, 90 bytes or so, as the simulated shop's: ``bench/memory.py`` prints
204 bytes of keys and values a person in 2.3 messages), then times ``read_history`` for one person
three times and prints messages and megabytes a second, and what that makes of a partition
holding a million persons' histories. The topic is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bestand.kafka.explain_topic import read_history, topic_key
from bestand.kafka.options import client_options
from bestand.kafka.topics import delete_topics
from bestand.settings import Settings

#: A link entry as the explain topic holds it (``identity/entries.py``), about 90 bytes.
ENTRY = "l\x1f1788861861\x1fev-{n:07d}\x1f\x1fe:EUjCWi6LADWk7KP5\x1f\x1fn:vIEb3i4iyD4AeQPu"


async def fill(settings: Settings, messages: int) -> tuple[str, int]:
    """Create the one-partition topic and send the messages; the last person and the bytes."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        configs = {"cleanup.policy": "compact"}
        await admin.create_topics([NewTopic(settings.topic_explain, 1, 1, topic_configs=configs)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**client_options(settings), linger_ms=20)
    await producer.start()
    sent, person = 0, ""
    try:
        batch = []
        for n in range(messages):
            person = f"P{n // 2:011d}"  # two messages a person, 12 characters as ids are
            key = topic_key(person, f"ev-{n:07d}")
            value = ENTRY.format(n=n).encode()
            sent += len(key) + len(value)
            batch.append(producer.send(settings.topic_explain, value, key=key, partition=0))
            if len(batch) >= 5000:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)
    finally:
        await producer.stop()
    return person, sent


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500_000)
    parser.add_argument("--per-person", type=float, default=2.3, help="messages a person")
    args = parser.parse_args()
    base = Settings()
    settings = base.model_copy(
        update={
            "topic_explain": f"bench-explain-{uuid.uuid4().hex[:8]}",
            "explain_read_seconds": 600,
        }
    )
    started = time.perf_counter()
    person, sent = await fill(settings, args.messages)
    print(f"filled {settings.topic_explain}: {args.messages:,} messages, {sent / 1e6:.1f} MB of "
          f"keys and values in {time.perf_counter() - started:.1f} s")  # fmt: skip
    try:
        seconds = []
        for _ in range(3):
            began = time.perf_counter()
            history = await read_history(settings, [person])
            seconds.append(time.perf_counter() - began)
            if not (history.complete and history.entries.get(person)):
                raise SystemExit(f"the read did not find {person}'s entries")
        median = statistics.median(seconds)
        rate = args.messages / median
        per_million = 1e6 * args.per_person / rate
        print(
            f"read_history of one person: {', '.join(f'{s:.2f}' for s in seconds)} s "
            f"(median {median:.2f} s): {rate:,.0f} messages/s, {sent / median / 1e6:.1f} MB/s"
        )
        print(f"a partition of a million persons' histories ({args.per_person} messages a "
              f"person): about {per_million:.1f} s a read")  # fmt: skip
    finally:
        await delete_topics(settings, [settings.topic_explain])


if __name__ == "__main__":
    asyncio.run(main())
