"""Produce events to their topics, routed by ``type``: the backfill and demo path into Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bestand.events.decode import TYPE_TOPIC_KIND
from bestand.kafka.options import client_options
from bestand.settings import Settings


class UnroutableEvent(ValueError):
    """An event whose ``type`` names no topic; it is reported, not sent."""


def topic_for(event: dict[str, Any], settings: Settings) -> str:
    """The input topic of an event, by its ``type``."""
    kind = TYPE_TOPIC_KIND.get(str(event.get("type")))
    if kind is None:
        raise UnroutableEvent(f"unknown event type {event.get('type')!r}")
    return {
        "clickstream": settings.topic_clickstream,
        "orders": settings.topic_orders,
        "email": settings.topic_email,
        "customer": settings.topic_customer,
    }[kind]


def key_for(event: dict[str, Any]) -> bytes | None:
    """A partition key that keeps related events in order: order id, visitor, else event id."""
    for field in ("order_id", "anonymous_id", "message_id", "event_id"):
        value = event.get(field)
        if isinstance(value, str) and value:
            return value.encode()
    return None


@dataclass
class ProduceReport:
    """What a produce run did."""

    sent: int = 0
    unroutable: int = 0


class EventProducer:
    """An idempotent, acks=all producer for input events."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer = AIOKafkaProducer(
            **client_options(settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
        )

    async def __aenter__(self) -> EventProducer:
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()  # no half-started client left behind
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def send(self, event: dict[str, Any]) -> None:
        """Send one event (as JSON) to its topic; raises :class:`UnroutableEvent`."""
        await self._producer.send(
            topic_for(event, self._settings), orjson.dumps(event), key=key_for(event)
        )

    async def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Send bytes as they are (for tests of bad input and for replays)."""
        await self._producer.send(topic, value, key=key)

    async def send_all(
        self, events: Iterable[dict[str, Any]] | AsyncIterator[dict[str, Any]]
    ) -> ProduceReport:
        """Send many events; unroutable ones are counted and skipped."""
        report = ProduceReport()
        if isinstance(events, AsyncIterator):
            async for event in events:
                await self._send_counted(event, report)
        else:
            for event in events:
                await self._send_counted(event, report)
        await self._producer.flush()
        return report

    async def _send_counted(self, event: dict[str, Any], report: ProduceReport) -> None:
        try:
            await self.send(event)
        except UnroutableEvent:
            report.unroutable += 1
        else:
            report.sent += 1
