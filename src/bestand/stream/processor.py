"""One batch of input messages, end to end: decode and key, resolve, apply, what to send.

The batch loop hands a batch of messages from any input partitions to :meth:`process` and
gets back the messages to send (dead letters and profile changes); nothing here talks to
Kafka. Redis is asked a constant number of times per batch, whatever its size: one read and
one write of the identity graph, one read and one write of person state (an erasure in the
middle of a batch splits it there, and a concurrent writer costs one more round for what it
touched). Tests drive the processor directly against a real Redis, batch by batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from bestand.events import ResolvedEvent
from bestand.events.changes import change_json
from bestand.events.customer import ErasureRequested
from bestand.identity import resolved_event
from bestand.identity.kinds import KIND_NAMES, kind_of
from bestand.kafka.explain_topic import erased_markers
from bestand.ops.metrics import WorkerMetrics
from bestand.profile.changes import Change, Describer
from bestand.profile.lifecycle import LifecycleRules
from bestand.settings import Settings
from bestand.store import IdentityGraph, ProfileStore
from bestand.store.identity_graph import ERASED_SINCE, REFUSED
from bestand.stream.messages import Incoming, Outgoing, dead_letter
from bestand.stream.prepare import Prepared, Preparer, reject
from bestand.stream.tally import Tally

#: Messages decoded between two turns of the event loop (see ``prepare_sharing``).
SLICE = 128


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch decoded and keyed, in order: events to resolve and dead letters; its counts."""

    steps: list[Prepared | Outgoing]
    tally: Tally


@dataclass(frozen=True, slots=True)
class _Erasure:
    """An erasure in a batch: the persons it took out of the graph, with their identifiers."""

    message: Incoming
    event: ErasureRequested
    persons: list[tuple[str, list[str]]]
    lineage: list[str]  # the persons named and those they absorbed: the explain topic's keys


@dataclass
class ResolvedBatch:
    """A batch after its identity graph half: what to apply to persons, in runs split by
    erasures, and the dead letters so far."""

    tally: Tally
    runs: list[list[_Apply] | _Erasure] = field(default_factory=list)
    out: list[Outgoing] = field(default_factory=list)


@dataclass(slots=True)  # built per event: frozen would double that
class _Apply:
    """A resolved event to apply, and the input message it came from (``primary``: the event
    itself, not a junk identifier taken from a former owner)."""

    message: Incoming
    event: ResolvedEvent
    primary: bool


class BatchProcessor:
    """Turns a batch of input messages into Redis state and the messages to send."""

    def __init__(
        self,
        settings: Settings,
        graph: IdentityGraph,
        profiles: ProfileStore,
        metrics: WorkerMetrics,
        lifecycle: LifecycleRules | None = None,
    ) -> None:
        self.graph = graph
        self.profiles = profiles
        self.metrics = metrics
        self.preparer = Preparer(settings)
        self._lifecycle = lifecycle or settings.lifecycle_rules

    async def process(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        """Handle messages in order; bad input becomes a dead letter, never an exception.

        Raises only when Redis fails (the caller retries the batch: every write is
        idempotent or guarded) or on a bug (the caller retries the messages one by one).
        """
        return await self.complete(self.prepare(messages))

    def prepare(self, messages: Sequence[Incoming]) -> PreparedBatch:
        """Decode and key a batch: no I/O, so it can run while the batch before waits."""
        decoding = self._decoding(messages, len(messages) or 1)
        while True:
            try:
                next(decoding)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]  # StopIteration.value is Any

    async def prepare_sharing(self, messages: Sequence[Incoming]) -> PreparedBatch:
        """:meth:`prepare`, handing the event loop back every ``SLICE`` messages.

        Decoding a large batch takes the worker's thread for a hundred milliseconds and more;
        the batches ahead of it wait on Redis meanwhile, and a reply that arrives would wait
        for the whole batch to be decoded before the next script is sent.
        """
        decoding = self._decoding(messages, SLICE)
        while True:
            try:
                next(decoding)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]  # StopIteration.value is Any
            await asyncio.sleep(0)

    def _decoding(
        self, messages: Sequence[Incoming], size: int
    ) -> Generator[None, None, PreparedBatch]:
        """Decode ``messages`` ``size`` at a time, pausing (``yield``) between slices."""
        started = time.perf_counter()
        tally = Tally()
        now = time.time()
        prepare = self.preparer.prepare
        steps: list[Prepared | Outgoing] = []
        for first in range(0, len(messages), size):
            if first:
                yield
            steps += [prepare(m, tally, now) for m in messages[first : first + size]]
        tally.took("decode", time.perf_counter() - started)
        return PreparedBatch(steps, tally)

    async def complete(self, batch: PreparedBatch) -> list[Outgoing]:
        """Resolve and apply a prepared batch; may be called again for the same batch after
        a failure (every write is idempotent or guarded, and it is counted once)."""
        return await self.apply(await self.resolve(batch))

    async def resolve(self, batch: PreparedBatch) -> ResolvedBatch:
        """The identity graph's half of a batch: every event resolved to its person, the
        persons its erasures remove taken out of the graph. Safe to call again."""
        started = time.perf_counter()
        tally = batch.tally.copy()
        resolved = ResolvedBatch(tally)
        run: list[Prepared] = []
        for step in batch.steps:
            if isinstance(step, Outgoing):
                resolved.out.append(step)
            elif step.erasure is not None:
                # An erasure waits for what came before it, and what comes after waits for it.
                resolved.runs.append(await self._resolve_run(run, resolved))
                run = []
                resolved.runs.append(await self._erase(step, step.erasure))
            else:
                run.append(step)
        resolved.runs.append(await self._resolve_run(run, resolved))
        tally.took("resolve", time.perf_counter() - started)
        return resolved

    async def _resolve_run(self, run: list[Prepared], resolved: ResolvedBatch) -> list[_Apply]:
        """The events of a run (a batch, or the part between erasures) with their persons."""
        if not run:
            return []
        tally = resolved.tally
        answers = await self.graph.resolve_answers([p.resolution for p in run])
        todo: list[_Apply] = []
        for prepared, answer in zip(run, answers, strict=True):
            message, event = prepared.message, prepared.event
            status, person, absorbed, identifiers, junk, owners, refusal, moved = answer
            if status == ERASED_SINCE:
                tally.events[(message.topic, "erased")] += 1
                continue
            if status == REFUSED:
                resolved.out.append(reject(message, "unattributable", str(refusal), tally))
                todo += _detach(message, event, junk, owners)
                self._count_junk(junk, tally)
                continue
            tally.merges += len(absorbed)
            self._count_junk(junk, tally)
            applied = event.for_person(person, absorbed, identifiers)
            if moved:
                applied.claimed = tuple(token for token, _ in moved)
            todo.append(_Apply(message, applied, primary=True))
            if junk:
                todo += _detach(message, event, junk, owners)
            if moved:
                todo += _detach(message, event, moved, dict(moved), kind="release")
        return todo

    async def apply(self, resolved: ResolvedBatch) -> list[Outgoing]:
        """Person state's half of a batch: its events applied, the erased forgotten; the
        messages to send. Safe to call again (a redelivery finds its markers)."""
        started = time.perf_counter()
        tally = resolved.tally.copy()
        out = list(resolved.out)
        changed_at = datetime.now(UTC)
        for run in resolved.runs:
            if isinstance(run, _Erasure):
                out += await self._forget(run, changed_at, tally)
            else:
                out += await self._apply_run(run, changed_at, tally)
        tally.took("apply", time.perf_counter() - started)
        tally.publish(self.metrics)
        return out

    async def _apply_run(
        self, todo: list[_Apply], changed_at: datetime, tally: Tally
    ) -> list[Outgoing]:
        if not todo:
            return []
        describe = Describer(int(time.time()), self._lifecycle)
        outcomes = await self.profiles.apply_batch(
            [item.event for item in todo], describe, tally.writes
        )
        out: list[Outgoing] = []
        for item, outcome in zip(todo, outcomes, strict=True):
            message, applied = item.message, item.event
            if outcome.status == "conflict":
                error = (
                    f"event id {applied.event_id!r} was applied to this person before with other "
                    "content; the first stands and this one is not applied"
                )
                out.append(reject(message, "duplicate_event_id", error, tally))
                continue
            if item.primary:
                tally.events[(message.topic, outcome.status.replace("applied", "processed"))] += 1
            out += _changes(applied, outcome.person_id, outcome.changes, changed_at, tally)
        return out

    @staticmethod
    def _count_junk(flagged: Sequence[tuple[str, str]], tally: Tally) -> None:
        for token, _ in flagged:
            tally.junk[(KIND_NAMES[kind_of(token)], "cardinality")] += 1

    async def _erase(self, prepared: Prepared, event: ErasureRequested) -> _Erasure:
        """Remove the persons an erasure names from the graph (their state goes in apply)."""
        at = int(event.event_time.timestamp())
        tokens = list(prepared.resolution.tokens)
        lineage = await self.graph.lineage(tokens)
        erased = await self.graph.erase(tokens, at)
        return _Erasure(prepared.message, event, erased, lineage)

    async def _forget(
        self, erasure: _Erasure, changed_at: datetime, tally: Tally
    ) -> list[Outgoing]:
        """Delete the erased persons' state and lookup records; tell downstream systems, and
        hide the persons' entries in the explain topic (``kafka/explain_topic.py``)."""
        message, event = erasure.message, erasure.event
        gone = list(dict.fromkeys([*erasure.lineage, *(p for p, _ in erasure.persons)]))
        out = [Outgoing("explain", key, value, route) for key, value, route in erased_markers(gone)]
        for person_id, tokens in erasure.persons:
            await self.profiles.forget(person_id, tokens)
            record = resolved_event(
                event, topic=message.topic, person_id=person_id, absorbed=(), identifiers=tokens
            )
            out += _changes(record, person_id, (Change("erased"),), changed_at, tally)
        tally.events[(message.topic, "processed")] += 1
        return out


def _detach(
    message: Incoming,
    event: ResolvedEvent,
    flagged: Sequence[tuple[str, str]],
    owners: Mapping[str, str],
    kind: Literal["detach", "release"] = "detach",
) -> list[_Apply]:
    """Tell the former owners of newly flagged junk identifiers to drop them (``detach``:
    their lookup records go too), or the former holders of moved cookies and device ids
    (``release``: the records are the new holder's now)."""
    by_owner: dict[str, list[str]] = {}
    for token, _ in flagged:
        if token in owners:
            by_owner.setdefault(owners[token], []).append(token)
    out = []
    for owner, tokens in sorted(by_owner.items()):
        detach = ResolvedEvent(
            event_id=f"{event.event_id}#{kind}:{owner}",
            event_time=event.event_time,
            at=event.at,
            kind=kind,
            type=event.type,
            topic=message.topic,
            person_id=owner,
            absorbed=[],
            identifiers=tokens,
        )
        out.append(_Apply(message, detach, primary=False))
    return out


def _changes(
    event: ResolvedEvent,
    person_id: str,
    changes: Sequence[Change],
    changed_at: datetime,
    tally: Tally,
) -> list[Outgoing]:
    """The profile-change messages of one applied event."""
    out = []
    for change in changes:
        record = change_json(
            change.change,
            person_id=person_id,
            event_id=event.event_id,
            event_time=event.event_time,
            changed_at=changed_at,
            existing_customer=change.existing_customer,
            orders_count=change.orders_count,
            stage_before=change.stage_before,
            stage_after=change.stage_after,
            absorbed=list(change.absorbed),
        )
        tally.changes[change.change] += 1
        out.append(Outgoing("changes", person_id.encode(), record))
    return out


__all__ = ["BatchProcessor", "Incoming", "Outgoing", "dead_letter"]
