"""The worker's consumer and producer, configured for batches and at-least-once delivery."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import ConsumerRebalanceListener

from bestand.kafka.options import client_options
from bestand.settings import Settings

#: Bytes one fetch may bring per partition and in all: room for several full batches.
_PARTITION_FETCH_BYTES = 4 << 20
_FETCH_BYTES = 16 << 20
#: How long a batch may take before the group takes the worker for dead. A batch waits for
#: Redis while it is away (it is retried, never skipped): a long outage should not also cost
#: a rebalance storm.
_MAX_POLL_INTERVAL_MS = 15 * 60 * 1000


def worker_consumer(settings: Settings, listener: ConsumerRebalanceListener) -> AIOKafkaConsumer:
    """A consumer of the input topics in the workers' group, committing by hand."""
    options: dict[str, Any] = client_options(settings)
    session = settings.kafka_session_timeout_ms
    consumer = AIOKafkaConsumer(
        **options,
        group_id=settings.app_id,
        group_instance_id=settings.worker_instance_id,
        client_id=f"{settings.app_id}-worker",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session,
        heartbeat_interval_ms=max(session // 6, 100),
        max_poll_interval_ms=_MAX_POLL_INTERVAL_MS,
        rebalance_timeout_ms=_MAX_POLL_INTERVAL_MS,
        max_partition_fetch_bytes=_PARTITION_FETCH_BYTES,
        fetch_max_bytes=_FETCH_BYTES,
        max_poll_records=settings.batch_max_events,
    )
    consumer.subscribe(list(settings.input_topics), listener=listener)
    return consumer


def worker_producer(settings: Settings) -> AIOKafkaProducer:
    """A producer whose sends count once every in-sync replica has them (``acks=all``)."""
    return AIOKafkaProducer(
        **client_options(settings),
        client_id=f"{settings.app_id}-worker",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
