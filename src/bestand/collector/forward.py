"""The collector's way into Kafka: every event of a request acknowledged (``acks=all``) before
the request is answered, or the request refused with a 503.

The producer connects at the first request, not at start: a collector started before Kafka
answers 503 with ``Retry-After`` until Kafka is there, and Segment's libraries send again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from bestand.kafka.options import client_options
from bestand.settings import Settings

log = logging.getLogger(__name__)

#: (topic, key, value) of one event to send.
Record = tuple[str, bytes | None, bytes]


class KafkaUnavailable(RuntimeError):
    """Kafka did not take a request's events in time; nothing of it is acknowledged."""


class Forwarder:
    """An idempotent ``acks=all`` producer, started on demand."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._timeout = settings.collector_kafka_timeout_seconds
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    @property
    def connected(self) -> bool:
        """Whether the producer is started (it reconnects by itself after that)."""
        return self._producer is not None

    async def ensure(self) -> None:
        """Start the producer if it is not (``/ready``); :class:`KafkaUnavailable` if Kafka
        does not answer in time."""
        try:
            await asyncio.wait_for(self._started(), timeout=self._timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise KafkaUnavailable(str(exc) or "Kafka did not answer in time") from None

    async def send(self, records: Sequence[Record]) -> None:
        """Send every record and wait until Kafka acknowledged all of them.

        Raises :class:`KafkaUnavailable` when the producer cannot start or a record is not
        acknowledged within ``BESTAND_COLLECTOR_KAFKA_TIMEOUT_SECONDS``. Some records may
        then be in Kafka already: the client sends the request again, and the worker takes
        the events it finds twice for redeliveries (same event ids).
        """
        if not records:
            return
        try:
            await asyncio.wait_for(self._send(records), timeout=self._timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("Kafka did not take %d events: %s", len(records), exc or "timed out")
            raise KafkaUnavailable(str(exc) or "Kafka did not acknowledge in time") from None

    async def _send(self, records: Sequence[Record]) -> None:
        producer = await self._started()
        sent = [await producer.send(topic, value, key=key) for topic, key, value in records]
        await asyncio.gather(*sent)

    async def _started(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    **client_options(self._settings),
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=2,
                    request_timeout_ms=int(self._timeout * 1000),
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def close(self) -> None:
        """Flush and stop the producer."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
