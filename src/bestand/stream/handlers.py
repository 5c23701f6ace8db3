"""What each stream stage does with one message, separate from the faust loop around it.

A handler takes the bytes of one message and returns the messages to send; the agent loop
only receives, calls, sends. Handlers talk to Redis but not to Kafka, so integration tests
can drive them directly against a real Redis as well as through the whole pipeline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
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
from bestand.profile.summary import LookupSummary
from bestand.settings import Settings
from bestand.store import ApplyOutcome, IdentityGraph, ProfileStore
from bestand.store.identity_graph import Resolution, Resolved

log = logging.getLogger(__name__)

_DLQ_PAYLOAD_CHARS = 4000  # of the original value, kept in the dead letter
_DLQ_TEXT_CHARS = 4096  # the most any text field of a record holds (Contract str_max_length)


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


def _clip(text: str, limit: int = _DLQ_TEXT_CHARS) -> str:
    """Text cut to what a dead-letter field holds, marked when cut."""
    return text if len(text) <= limit else text[: limit - 12] + " …(clipped)"


def dead_letter(message: Incoming, reason: str, error: str) -> Outgoing:
    """The dead-letter record of a message that could not be processed.

    Never fails: every text is clipped to the record's limits, whatever the input was (a
    dead letter that could not be written would stop the stream it protects).
    """
    value = message.value or b""
    record = DeadLetter(
        reason=_clip(reason, 64),
        error=_clip(error),
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=None if message.key is None else _clip(message.key.decode("utf-8", "replace")),
        payload=_clip(value[:_DLQ_PAYLOAD_CHARS].decode("utf-8", "replace")),
        payload_bytes=len(value),
        failed_at=datetime.now(UTC),
    )
    return Outgoing("dlq", message.key, orjson.dumps(record.model_dump(mode="json")))


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A decoded, keyed input event waiting for its person."""

    message: Incoming
    event: InputEvent
    resolution: Resolution


@dataclass
class IdentityHandler:
    """Stage one: validate, normalize and key identifiers, resolve the person, re-key by it."""

    settings: Settings
    graph: IdentityGraph
    metrics: WorkerMetrics
    keyer: IdentityKeyer = field(init=False)
    kinds: dict[str, TopicKind] = field(init=False)
    _secret: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s = self.settings
        self._secret = s.hmac_secret.get_secret_value().encode()
        self.keyer = IdentityKeyer(
            self._secret,
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
            extra={
                "fields": {
                    "topic": message.topic,
                    "partition": message.partition,
                    "offset": message.offset,
                    "reason": reason,
                }
            },
        )
        return [dead_letter(message, reason, error)]

    def _prepare(self, message: Incoming) -> list[Outgoing] | _Prepared:
        """Decode and key one message: dead letters for bad input, else what to resolve."""
        kind = self.kinds.get(message.topic)
        if kind is None:
            return self._reject(message, "unknown_topic", f"no contract for {message.topic}")
        try:
            event = decode_event(
                kind,
                message.value,
                max_bytes=self.settings.max_event_bytes,
                now=time.time(),
                max_future_seconds=self.settings.max_event_future_seconds,
            )
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
        candidate = person_id_for(self._secret, f"{tokens[0]}|{event.event_id}")
        resolution = Resolution(
            tokens=tokens,
            candidate=candidate,
            event_id=event.event_id,
            at=int(event.event_time.timestamp()),
            pattern_junk=[(kid.token, why) for kid, why in keyed.junk],
        )
        return _Prepared(message, event, resolution)

    async def handle(self, message: Incoming) -> list[Outgoing]:
        """Process one input message; bad input becomes a dead letter, never an exception."""
        return await self.handle_batch([message])

    async def handle_batch(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        """Process messages in order, resolving them together (an erasure waits its turn)."""
        out: list[Outgoing] = []
        run: list[_Prepared] = []

        async def flush() -> None:
            if run:
                live = await self._without_erased(run)
                results = await self.graph.resolve_many([p.resolution for p in live])
                for prepared, result in zip(live, results, strict=True):
                    out.extend(self._finish(prepared, result))
                run.clear()

        for message in messages:
            prepared = self._prepare(message)
            if isinstance(prepared, list):
                out.extend(prepared)
            elif isinstance(prepared.event, ErasureRequested):
                await flush()
                out.extend(
                    await self._erase(message, prepared.event, list(prepared.resolution.tokens))
                )
            else:
                run.append(prepared)
        await flush()
        return out

    def _finish(self, prepared: _Prepared, result: Resolved) -> list[Outgoing]:
        """The messages to send for one resolved (or unattributable) event."""
        message, event = prepared.message, prepared.event
        if isinstance(result, Unattributable):
            detach = self._detach(event, message.topic, result.junk, result.owners)
            return self._reject(message, "unattributable", str(result)) + detach
        decision, view = result
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

    async def _without_erased(self, run: list[_Prepared]) -> list[_Prepared]:
        """Events with the identifiers of erased persons dropped where the event is older
        than the erasure (a replay must not bring them back); events left with no identifier
        are skipped and counted as ``erased``."""
        erased = await self.graph.erased_at([t for p in run for t in p.resolution.tokens])
        if not erased:
            return run
        live = []
        for prepared in run:
            at = prepared.resolution.at
            kept = [t for t in prepared.resolution.tokens if erased.get(t, -1) < at]
            if kept:
                resolution = replace(prepared.resolution, tokens=kept)
                live.append(replace(prepared, resolution=resolution))
            else:
                message = prepared.message
                self.metrics.events.labels("identity", message.topic, "erased").inc()
        return live

    async def _erase(
        self, message: Incoming, event: ErasureRequested, tokens: list[str]
    ) -> list[Outgoing]:
        """Remove the persons from the graph here; the profile stage removes their state."""
        erased = await self.graph.erase(tokens, int(event.event_time.timestamp()))
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
        return await self.handle_batch([message])

    async def handle_batch(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        """Apply resolved events in order, persons together (an erasure waits its turn)."""
        out: list[Outgoing] = []
        run: list[tuple[Incoming, ResolvedEvent]] = []

        async def flush() -> None:
            if run:
                outcomes = await self.profiles.apply_many(
                    [event for _, event in run], self._describe
                )
                for (message, event), outcome in zip(run, outcomes, strict=True):
                    out.extend(self._after(message, event, outcome))
                run.clear()

        for message in messages:
            try:
                event = ResolvedEvent.model_validate_json(message.value or b"")
            except ValidationError as exc:
                self.metrics.events.labels("profile", message.topic, "dead_lettered").inc()
                self.metrics.dead_letters.labels(message.topic, "schema").inc()
                out.append(dead_letter(message, "schema", str(exc)[:2000]))
                continue
            if event.kind == "erasure":
                await flush()
                await self.profiles.forget(event.person_id, event.identifiers)
                self.metrics.events.labels("profile", message.topic, "processed").inc()
                out.extend(self._changes(event, event.person_id, [Change("erased")]))
                continue
            run.append((message, event))
        await flush()
        return out

    def _after(
        self, message: Incoming, event: ResolvedEvent, outcome: ApplyOutcome
    ) -> list[Outgoing]:
        """Count an applied event and tell downstream systems what it changed."""
        if outcome.status == "conflict":
            self.metrics.events.labels("profile", message.topic, "dead_lettered").inc()
            self.metrics.dead_letters.labels(message.topic, "duplicate_event_id").inc()
            error = (
                f"event id {event.event_id!r} was applied to this person before with other "
                "content; the first stands and this one is not applied"
            )
            log.warning("dead-lettered %s: duplicate_event_id: %s", event.event_id, error)
            return [dead_letter(message, "duplicate_event_id", error)]
        outcome_label = "duplicate" if outcome.status == "duplicate" else "processed"
        self.metrics.events.labels("profile", message.topic, outcome_label).inc()
        # A duplicate carries the changes recorded when it was applied: the try that applied
        # it may have died before sending them, so they go out again (at least once).
        return self._changes(event, outcome.person_id, list(outcome.changes))

    def _describe(
        self, before: LookupSummary | None, after: LookupSummary, event: ResolvedEvent
    ) -> list[Change]:
        """The changes one applied event causes (kept with it in Redis until sent again)."""
        now = int(datetime.now(UTC).timestamp())
        return profile_changes(before, after, now, self.lifecycle, event.absorbed)
