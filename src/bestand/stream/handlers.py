"""What each stream stage does with one message, separate from the faust loop around it.

A handler takes the bytes of one message and returns the messages to send; the agent loop
only receives, calls, sends. Handlers talk to Redis but not to Kafka, so integration tests
can drive them directly against a real Redis as well as through the whole pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from pydantic import ValidationError

from bestand.events import (
    DeadLetter,
    InputEvent,
    InvalidEvent,
    ResolvedEvent,
    TopicKind,
    decode_event,
)
from bestand.events.changes import ProfileChange
from bestand.events.customer import ErasureRequested
from bestand.identity import IdentityKeyer, person_id_for, raw_identifiers, resolved_event
from bestand.identity.junk import JunkRules
from bestand.identity.kinds import KIND_NAMES, kind_of
from bestand.identity.rules import Unattributable
from bestand.ops.metrics import WorkerMetrics
from bestand.profile.changes import Change, profile_changes
from bestand.profile.lifecycle import LifecycleRules
from bestand.settings import Settings
from bestand.store import IdentityGraph, ProfileStore

log = logging.getLogger(__name__)

_DLQ_PAYLOAD_CHARS = 16384


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send: to the resolved topic (keyed by person) or the dead-letter topic."""

    destination: str  # "resolved" | "dlq" | "changes"
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
        s = self.settings
        self.keyer = IdentityKeyer(
            s.hmac_secret.get_secret_value().encode(),
            s.default_phone_region,
            JunkRules.default(s.junk_email_patterns),
        )
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
        keyed = self.keyer.key_all(raw_identifiers(event, self.settings.default_country))
        for id_kind, _ in keyed.rejected:
            self.metrics.rejected_identifiers.labels(KIND_NAMES[id_kind]).inc()
        for kid, _ in keyed.junk:
            self.metrics.junk_identifiers.labels(KIND_NAMES[kid.kind], "pattern").inc()
        if not keyed.ids:
            problems = [f"{KIND_NAMES[k]}: {why}" for k, why in keyed.rejected]
            problems += [f"{KIND_NAMES[kid.kind]}: {why}" for kid, why in keyed.junk]
            detail = "; ".join(problems) or "event names no identifier"
            return self._reject(message, "no_identifier", detail)
        tokens = [kid.token for kid in keyed.ids]
        if isinstance(event, ErasureRequested):
            return await self._erase(message, event, tokens)
        at = int(event.event_time.timestamp())
        secret = self.settings.hmac_secret.get_secret_value().encode()
        candidate = person_id_for(secret, f"{tokens[0]}|{event.event_id}")
        pattern_junk = [(kid.token, why) for kid, why in keyed.junk]
        try:
            decision, view = await self.graph.resolve(
                tokens, candidate, event.event_id, at, pattern_junk
            )
        except Unattributable as exc:
            detach = self._detach(event, message.topic, exc.junk, exc.owners)
            return self._reject(message, "unattributable", str(exc)) + detach
        if decision.absorbed:
            self.metrics.merges.inc(len(decision.absorbed))
        for token, _ in decision.junk:
            self.metrics.junk_identifiers.labels(KIND_NAMES[kind_of(token)], "cardinality").inc()
        resolved = resolved_event(
            event,
            topic=message.topic,
            person_id=decision.person,
            absorbed=decision.absorbed,
            identifiers=decision.identifiers,
        )
        out = [Outgoing("resolved", decision.person.encode(), resolved.model_dump_json().encode())]
        out += self._detach(event, message.topic, decision.junk, view.owners)
        self.metrics.events.labels("identity", message.topic, "processed").inc()
        return out

    def _detach(
        self,
        event: InputEvent,
        topic: str,
        flagged: Sequence[tuple[str, str]],
        owners: Mapping[str, str],
    ) -> list[Outgoing]:
        """Tell the former owners of newly flagged junk identifiers to drop them."""
        by_owner: dict[str, list[str]] = {}
        for token, _ in flagged:
            if token in owners:
                by_owner.setdefault(owners[token], []).append(token)
        out = []
        for owner, tokens in sorted(by_owner.items()):
            detach = ResolvedEvent(
                event_id=f"{event.event_id}#detach:{owner}",
                event_time=event.event_time,
                kind="detach",
                type=event.type,
                topic=topic,
                person_id=owner,
                identifiers=tokens,
            )
            out.append(Outgoing("resolved", owner.encode(), detach.model_dump_json().encode()))
        return out

    async def _erase(
        self, message: Incoming, event: ErasureRequested, tokens: list[str]
    ) -> list[Outgoing]:
        """Remove the persons from the graph here; the profile stage removes their state."""
        erased = await self.graph.erase(tokens)
        out = []
        for person_id, person_tokens in erased:
            resolved = ResolvedEvent(
                event_id=event.event_id,
                event_time=event.event_time,
                kind="erasure",
                type=event.type,
                topic=message.topic,
                person_id=person_id,
                identifiers=person_tokens,
            )
            out.append(
                Outgoing("resolved", person_id.encode(), resolved.model_dump_json().encode())
            )
        self.metrics.events.labels("identity", message.topic, "processed").inc()
        return out


@dataclass
class ProfileHandler:
    """Stage two: apply a resolved event to its person, refresh the lookup records, and tell
    downstream systems what changed."""

    profiles: ProfileStore
    metrics: WorkerMetrics
    lifecycle: LifecycleRules = field(default_factory=LifecycleRules)

    def _changes(
        self, event: ResolvedEvent, person_id: str, changes: list[Change]
    ) -> list[Outgoing]:
        now = datetime.now(UTC)
        out = []
        for change in changes:
            record = ProfileChange(
                change=change.change,
                person_id=person_id,
                event_id=event.event_id,
                event_time=event.event_time,
                changed_at=now,
                existing_customer=change.existing_customer,
                orders_count=change.orders_count,
                stage_before=change.stage_before,
                stage_after=change.stage_after,
                absorbed=list(change.absorbed),
            )
            self.metrics.profile_changes.labels(change.change).inc()
            out.append(Outgoing("changes", person_id.encode(), record.model_dump_json().encode()))
        return out

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
            return self._changes(event, event.person_id, [Change("erased")])
        outcome = await self.profiles.apply(event)
        outcome_label = "duplicate" if outcome.status == "duplicate" else "processed"
        self.metrics.events.labels("profile", message.topic, outcome_label).inc()
        if outcome.status != "applied" or outcome.after is None:
            return []
        now = int(datetime.now(UTC).timestamp())
        changes = profile_changes(
            outcome.before, outcome.after, now, self.lifecycle, event.absorbed
        )
        return self._changes(event, outcome.person_id, changes)
