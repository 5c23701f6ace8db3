"""What each stream stage does with one message, separate from the faust loop around it.

A handler takes the bytes of one message and returns the messages to send; the agent loop
only receives, calls, sends. Handlers talk to Redis but not to Kafka, so integration tests
can drive them directly against a real Redis as well as through the whole pipeline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from pydantic import ValidationError

from bestand.events import DeadLetter, InvalidEvent, ResolvedEvent, TopicKind, decode_event
from bestand.events.customer import ErasureRequested
from bestand.identity import IdentityKeyer, KeyedId, person_id_for, raw_identifiers, resolved_event
from bestand.ops.metrics import WorkerMetrics
from bestand.settings import Settings
from bestand.store import IdentityGraph, ProfileStore

log = logging.getLogger(__name__)

_DLQ_PAYLOAD_CHARS = 16384


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send: to the resolved topic (keyed by person) or the dead-letter topic."""

    destination: str  # "resolved" | "dlq"
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class Incoming:
    """One consumed message and where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def dead_letter(message: Incoming, reason: str, error: str) -> Outgoing:
    """The dead-letter record of a message that could not be processed."""
    value = message.value or b""
    record = DeadLetter(
        reason=reason,
        error=error,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=None if message.key is None else message.key.decode("utf-8", "replace"),
        payload=value[:_DLQ_PAYLOAD_CHARS].decode("utf-8", "replace"),
        payload_bytes=len(value),
        failed_at=datetime.now(UTC),
    )
    return Outgoing("dlq", message.key, orjson.dumps(record.model_dump(mode="json")))


@dataclass
class IdentityHandler:
    """Stage one: validate, normalize and key identifiers, resolve the person, re-key by it."""

    settings: Settings
    graph: IdentityGraph
    metrics: WorkerMetrics
    keyer: IdentityKeyer = field(init=False)
    kinds: dict[str, TopicKind] = field(init=False)

    def __post_init__(self) -> None:
        self.keyer = IdentityKeyer(
            self.settings.hmac_secret.get_secret_value().encode(),
            self.settings.default_phone_region,
        )
        s = self.settings
        self.kinds = {
            s.topic_clickstream: "clickstream",
            s.topic_orders: "orders",
            s.topic_email: "email",
            s.topic_customer: "customer",
        }

    def _reject(self, message: Incoming, reason: str, error: str) -> list[Outgoing]:
        self.metrics.events.labels("identity", message.topic, "dead_lettered").inc()
        self.metrics.dead_letters.labels(message.topic, reason).inc()
        log.warning(
            "dead-lettered %s[%d]@%d: %s: %s",
            message.topic,
            message.partition,
            message.offset,
            reason,
            error,
        )
        return [dead_letter(message, reason, error)]

    async def handle(self, message: Incoming) -> list[Outgoing]:
        """Process one input message; bad input becomes a dead letter, never an exception."""
        kind = self.kinds.get(message.topic)
        if kind is None:
            return self._reject(message, "unknown_topic", f"no contract for {message.topic}")
        try:
            event = decode_event(kind, message.value, max_bytes=self.settings.max_event_bytes)
        except InvalidEvent as exc:
            return self._reject(message, exc.reason, exc.detail)
        ids, rejected = self.keyer.key_all(raw_identifiers(event))
        for id_kind, _ in rejected:
            self.metrics.rejected_identifiers.labels(id_kind.name.lower()).inc()
        if not ids:
            detail = "; ".join(f"{k.name.lower()}: {why}" for k, why in rejected)
            return self._reject(message, "no_identifier", detail or "event names no identifier")
        at = int(event.event_time.timestamp())
        if isinstance(event, ErasureRequested):
            return await self._erase(message, event, ids)
        candidate = person_id_for(
            self.settings.hmac_secret.get_secret_value().encode(),
            f"{ids[0].token}|{event.event_id}",
        )
        person_id, absorbed = await self.graph.resolve(ids, candidate, event.event_id, at)
        if absorbed:
            self.metrics.merges.inc(len(absorbed))
        resolved = resolved_event(
            event, topic=message.topic, person_id=person_id, absorbed=absorbed, identifiers=ids
        )
        self.metrics.events.labels("identity", message.topic, "processed").inc()
        return [Outgoing("resolved", person_id.encode(), resolved.model_dump_json().encode())]

    async def _erase(
        self, message: Incoming, event: ErasureRequested, ids: list[KeyedId]
    ) -> list[Outgoing]:
        """Remove the persons from the graph here; the profile stage removes their state."""
        erased = await self.graph.erase(ids)
        out = []
        for person_id, tokens in erased:
            resolved = ResolvedEvent(
                event_id=event.event_id,
                event_time=event.event_time,
                kind="erasure",
                type=event.type,
                topic=message.topic,
                person_id=person_id,
                identifiers=tokens,
            )
            out.append(
                Outgoing("resolved", person_id.encode(), resolved.model_dump_json().encode())
            )
        self.metrics.events.labels("identity", message.topic, "processed").inc()
        return out


@dataclass
class ProfileHandler:
    """Stage two: apply a resolved event to its person and refresh the lookup records."""

    profiles: ProfileStore
    metrics: WorkerMetrics

    async def handle(self, message: Incoming) -> list[Outgoing]:
        """Apply one resolved event; a malformed one (a bug upstream) becomes a dead letter."""
        try:
            event = ResolvedEvent.model_validate_json(message.value or b"")
        except ValidationError as exc:
            self.metrics.events.labels("profile", message.topic, "dead_lettered").inc()
            self.metrics.dead_letters.labels(message.topic, "schema").inc()
            return [dead_letter(message, "schema", str(exc)[:2000])]
        if event.kind == "erasure":
            await self.profiles.forget(event.person_id, event.identifiers)
            self.metrics.events.labels("profile", message.topic, "processed").inc()
            return []
        outcome = await self.profiles.apply(event)
        outcome_label = "duplicate" if outcome.status == "duplicate" else "processed"
        self.metrics.events.labels("profile", message.topic, outcome_label).inc()
        return []
