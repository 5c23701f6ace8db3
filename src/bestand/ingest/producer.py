"""Produce events to their topics, routed by ``type``: the backfill and demo path into Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bestand.events.decode import TYPE_TOPIC_KIND
from bestand.kafka.batches import KeyPartitions, send_batched
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
    """A partition key that keeps related events in order within their topic.

    An order's events go by its order id (a cancellation finds its order); every other event
    by the visitor's anonymous id wherever it sits (on the event, in ``identifiers``), so
    that a visitor's sign-up, login and registration are resolved in the order they
    happened; then by the customer id; else by message or event id.
    """
    order = event.get("order_id")
    if isinstance(order, str) and order:
        return order.encode()
    identifiers = event.get("identifiers")
    holders = (event, identifiers) if isinstance(identifiers, dict) else (event,)
    for field in ("anonymous_id", "customer_id"):
        for holder in holders:
            value = holder.get(field)
            if isinstance(value, str) and value:
                return value.encode()
    for field in ("message_id", "event_id"):
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
        self._partitions = KeyPartitions()

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

    async def send_acknowledged(self, messages: Sequence[tuple[str, bytes | None, bytes]]) -> None:
        """Send ``(topic, key, value)`` messages as record batches (a key's on its partition,
        in order) and wait until Kafka acknowledged every one."""
        await send_batched(self._producer, messages, self._partitions)

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
