"""The loop reads the next batch early only when there is a backlog.

Keeping up, a batch is read once the resolve step took the one before, so its records do
not wait a whole resolve step after they were read; with a backlog (a batch half full or
more) the loop reads ahead and decodes while the batch before waits for Redis. Real Kafka;
the error policy is replaced by one that records what the loop asks of it and holds the
resolve step until the test lets it go.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from support import make_deployment, run

from bestand.kafka.clients import worker_consumer, worker_producer
from bestand.kafka.topics import ensure_topics
from bestand.ops.metrics import WorkerMetrics
from bestand.settings import Settings
from bestand.stream.loop import BatchLoop
from bestand.stream.messages import Incoming, Outgoing


class _HeldPolicy:
    """Records the batches read; the resolve step waits for ``release`` on every batch."""

    def __init__(self) -> None:
        self.read: list[list[bytes]] = []
        self.resolving: list[list[bytes]] = []
        self.release = asyncio.Event()

    async def prepare(self, messages: Sequence[Incoming]) -> None:
        self.read.append([m.value or b"" for m in messages])

    async def resolve(self, messages: Sequence[Incoming], prepared: None) -> None:
        self.resolving.append([m.value or b"" for m in messages])
        await self.release.wait()

    async def apply(self, messages: Sequence[Incoming], resolved: None) -> list[Outgoing]:
        return []


async def _until(condition: Callable[[], object], seconds: float = 30) -> None:
    for _ in range(int(seconds * 20)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def _scenario(settings: Settings, send_at_once: int) -> tuple[_HeldPolicy, list[int]]:
    """Start the loop on a held resolve step, send ``send_at_once`` messages, then "second"
    and, once that was read, "third"; the sizes of the batches read while the first batch is
    still being resolved."""
    await ensure_topics(settings)
    policy = _HeldPolicy()
    metrics = WorkerMetrics()
    producer = worker_producer(settings)
    loop = BatchLoop(settings, policy, producer, metrics)  # type: ignore[arg-type]
    consumer = worker_consumer(settings, loop)
    loop.consumer = consumer
    feeder = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    stopping = asyncio.Event()
    topic = settings.topic_clickstream
    await feeder.start()
    # Sent before the loop starts, so that its first read finds them all.
    for n in range(send_at_once):
        await feeder.send_and_wait(topic, b"first-%d" % n, key=b"k")
    await producer.start()
    await consumer.start()
    running = asyncio.create_task(loop.run(stopping))
    try:
        await _until(lambda: policy.resolving)  # the first batch is held in resolve
        await feeder.send_and_wait(topic, b"second", key=b"k")
        await _until(lambda: any(b"second" in batch for batch in policy.read))
        await feeder.send_and_wait(topic, b"third", key=b"k")
        await asyncio.sleep(2)  # time enough to read it, were it read ahead
        held = [len(batch) for batch in policy.read]
        policy.release.set()
        await _until(lambda: any(b"third" in batch for batch in policy.read))
        return policy, held
    finally:
        stopping.set()
        policy.release.set()
        await asyncio.wait_for(running, 30)
        await consumer.stop()
        await producer.stop()
        await feeder.stop()


@pytest.fixture
def settings(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Settings:
    made = make_deployment(kafka_bootstrap, redis_url, tmp_path / "logs").settings
    return made.model_copy(update={"batch_max_events": 4, "topic_partitions": 1})


def test_keeping_up_the_next_batch_waits_until_the_one_before_is_taken(
    settings: Settings,
) -> None:
    policy, held = run(_scenario(settings, send_at_once=1))
    # One batch in resolve, one waiting for it; the third message was not read meanwhile.
    assert held == [1, 1]
    assert len(policy.read) >= 3
    assert b"third" in policy.read[2]


def test_with_a_backlog_the_loop_reads_ahead(settings: Settings) -> None:
    policy, held = run(_scenario(settings, send_at_once=8))
    # The first two batches are full: while the first is held in resolve and the second
    # waits for it, the loop reads on and has "second" in hand.
    assert held[:2] == [4, 4]
    assert b"second" in policy.read[2]
