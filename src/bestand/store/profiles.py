"""Person state in Redis: the pure reducer applied with compare-and-set, then lookup records.

Any worker may write any person (a merge moves events between partitions), so every write is
a compare-and-set on the person's version, retried on conflict. An event is applied at most
once per person (dedupe key with TTL); orders and returns are idempotent by structure anyway.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bestand.events import ResolvedEvent
from bestand.profile import LookupSummary, PersonState, apply, dump_state, load_state, merge
from bestand.profile.changes import Change
from bestand.profile.state import CustomerRule
from bestand.store.errors import StoreConflict
from bestand.store.keys import Keys
from bestand.store.scripts import Scripts
from bestand.store.values import forget_values, record_value

_MAX_ATTEMPTS = 50
_MAX_REDIRECTS = 32


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _alone(event: ResolvedEvent) -> bool:
    """Events that go the single way: merges, and detaching junk (their records go too)."""
    return bool(event.absorbed) or event.kind == "detach"


#: What the content digest leaves out: where an event goes, which may differ between tries.
_ROUTING = frozenset({"person_id", "absorbed", "identifiers"})


def content_digest(event: ResolvedEvent) -> str:
    """Short digest of what an event says (not where it went): the marker of its dedupe key.

    A redelivered event says the same; an event that reuses an id with other content does
    not, and is refused rather than silently dropped.
    """
    facts = event.model_dump(mode="json", exclude=set(_ROUTING))
    digest = hashlib.blake2b(orjson.dumps(facts, option=orjson.OPT_SORT_KEYS), digest_size=6)
    return base64.urlsafe_b64encode(digest.digest()).decode()


#: What an applied event changed in a person's answer: before (None: a new person), after.
Describe = Callable[[LookupSummary | None, LookupSummary, ResolvedEvent], Sequence[Change]]


def _marker(digest: str, changes: Sequence[Change]) -> str:
    """A dedupe marker: the content digest, then the changes the event caused (if any), so
    that a redelivery can send them again."""
    if not changes:
        return digest
    rows = [
        [c.change, c.existing_customer, c.orders_count, c.stage_before, c.stage_after,
         list(c.absorbed)]
        for c in changes
    ]  # fmt: skip
    return f"{digest} {orjson.dumps(rows).decode()}"


def _parse(marker: str) -> tuple[str, tuple[Change, ...]]:
    """The digest and the changes of a dedupe marker ('1': a marker without either)."""
    digest, _, rows = marker.partition(" ")
    if not rows:
        return digest, ()
    return digest, tuple(
        Change(kind, existing, count, before, after, tuple(absorbed))
        for kind, existing, count, before, after, absorbed in orjson.loads(rows)
    )


def _same(marker: str, digest: str) -> bool:
    """True when a dedupe marker matches the digest ('1': a marker without one, or a merge)."""
    return _parse(marker)[0] in ("1", digest)


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What applying one event did."""

    status: Literal["applied", "duplicate", "conflict"]
    person_id: str
    before: LookupSummary | None = None
    after: LookupSummary | None = None
    #: What the event changed: found now (applied), or recorded when it was applied (duplicate).
    changes: tuple[Change, ...] = ()

    @property
    def summary_changed(self) -> bool:
        """True when a lookup now answers differently for this person."""
        return self.after is not None and not self.after.same_answer(self.before)


class ProfileStore:
    """Reads and writes person state and the lookup records derived from it."""

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        dedupe_ttl: int,
        scripts: Scripts | None = None,
        rule: CustomerRule = "kept",
    ) -> None:
        self._client = client
        self._rule: CustomerRule = rule
        self._keys = keys
        self._ttl = dedupe_ttl
        self._scripts = scripts or Scripts.register(client)

    async def _load(self, person_id: str, dedupe_id: str) -> tuple[str, str, PersonState]:
        """Follow merge redirects to the live person; return the event's marker if applied."""
        seen = ""  # applied to a person of the chain, whose state the survivor holds
        for _ in range(_MAX_REDIRECTS):
            redirect, applied, version, blob = await self._scripts.load_person(
                keys=[self._keys.person(person_id), self._keys.dedupe(person_id, dedupe_id)],
                client=self._client,
            )
            seen = seen or _text(applied)
            target = _text(redirect)
            if target:
                person_id = target
                continue
            state = replace(load_state(person_id, blob or None, self._rule), version=int(version))
            return person_id, seen, state
        raise StoreConflict(f"redirect chain longer than {_MAX_REDIRECTS} from {person_id}")

    async def _store(
        self, before: PersonState, after: PersonState, dedupe_id: str, marker: str = "1"
    ) -> int:
        result: int = await self._scripts.store_person(
            keys=[
                self._keys.person(after.person_id),
                self._keys.dedupe(after.person_id, dedupe_id),
            ],
            args=[before.version, after.version, dump_state(after), self._ttl, marker],
            client=self._client,
        )
        return result

    async def load(self, person_id: str) -> PersonState | None:
        """A person's current state (following merges), or ``None`` if there is none."""
        person_id, _, state = await self._load(person_id, "-")
        return state if state.version > 0 else None

    async def apply(self, event: ResolvedEvent, describe: Describe | None = None) -> ApplyOutcome:
        """Apply one resolved event: merges first, then the event, then lookup records.

        ``describe`` names the changes an applied event causes; they are kept in its dedupe
        marker, and a redelivery of the event gets them again (``duplicate`` outcome).
        """
        at = int(event.event_time.timestamp())
        if event.absorbed:
            await self._absorb(event.person_id, event.absorbed, event.event_id, at)
        digest = content_digest(event)
        for _ in range(_MAX_ATTEMPTS):
            person_id, marker, state = await self._load(event.person_id, event.event_id)
            if marker and not _same(marker, digest):
                return ApplyOutcome("conflict", person_id)
            if marker:
                # Applied before, perhaps by a try that died before its lookup records were
                # written: write them again (a record never goes back to an older version).
                await self._publish(state, changed=True, old_ids=frozenset())
                return ApplyOutcome("duplicate", person_id, changes=_parse(marker)[1])
            new = replace(apply(state, event), version=state.version + 1)
            before = LookupSummary.of(state) if state.version > 0 else None
            after = LookupSummary.of(new)
            changes = tuple(describe(before, after, event)) if describe else ()
            if await self._store(state, new, event.event_id, _marker(digest, changes)) == 1:
                await self._publish(new, changed=not after.same_answer(before), old_ids=state.ids)
                if event.kind == "detach" and event.identifiers:
                    # Junk identifiers name nobody: their lookup records go.
                    await self._client.unlink(*(self._keys.lookup(t) for t in event.identifiers))
                return ApplyOutcome("applied", person_id, before, after, changes)
        raise StoreConflict(f"could not apply {event.event_id} after {_MAX_ATTEMPTS} attempts")

    async def apply_many(
        self, events: Sequence[ResolvedEvent], describe: Describe | None = None
    ) -> list[ApplyOutcome]:
        """Apply events of many persons with one read and one write per batch.

        Events that merge persons, and persons written by someone else in between (or merged
        away), take the single way of :meth:`apply`; every result is the same as applying the
        events one by one in order.
        """
        outcomes: list[ApplyOutcome | None] = [None] * len(events)
        simple = [i for i, event in enumerate(events) if not _alone(event)]
        for i, event in enumerate(events):
            if _alone(event):
                # A merge changes who is who: what comes after it waits for it.
                await self._apply_batch(events, [j for j in simple if j < i], outcomes, describe)
                simple = [j for j in simple if j > i]
                outcomes[i] = await self.apply(event, describe)
        await self._apply_batch(events, simple, outcomes, describe)
        done = [outcome for outcome in outcomes if outcome is not None]
        if len(done) != len(events):  # pragma: no cover - every position is filled above
            raise RuntimeError("a batch position was left unapplied")
        return done

    async def _apply_batch(
        self,
        events: Sequence[ResolvedEvent],
        positions: Sequence[int],
        outcomes: list[ApplyOutcome | None],
        describe: Describe | None,
    ) -> None:
        positions = [i for i in positions if outcomes[i] is None]
        if not positions:
            return
        by_person: dict[str, list[int]] = {}
        for i in positions:
            by_person.setdefault(events[i].person_id, []).append(i)
        persons = list(by_person)
        digests = {i: content_digest(events[i]) for i in positions}
        async with self._client.pipeline(transaction=False) as pipe:
            for person_id in persons:
                pipe.hmget(self._keys.person(person_id), "r", "v", "s")
                for i in by_person[person_id]:
                    pipe.get(self._keys.dedupe(person_id, events[i].event_id))
            replies = iter(await pipe.execute())
        writes: list[tuple[str, PersonState, PersonState, list[tuple[int, ApplyOutcome]]]] = []
        single: list[int] = []
        # Persons with an event applied before: their lookup records are written again in full,
        # in case the try that applied it died before writing them.
        again: dict[str, PersonState] = {}
        for person_id in persons:
            redirect, version, blob = next(replies)
            seen = [_text(next(replies) or b"") for _ in by_person[person_id]]
            if redirect:  # merged away since the event was resolved
                single.extend(by_person[person_id])
                continue
            before = replace(load_state(person_id, blob, self._rule), version=int(version or 0))
            state = before
            summary = LookupSummary.of(before) if before.version > 0 else None
            applied: list[tuple[int, ApplyOutcome]] = []
            applied_ids: dict[str, str] = {}  # event id -> digest, applied in this batch
            for i, marker in zip(by_person[person_id], seen, strict=True):
                digest = digests[i]
                marker = marker or applied_ids.get(events[i].event_id, "")
                if marker and not _same(marker, digest):
                    outcomes[i] = ApplyOutcome("conflict", person_id)
                    continue
                if marker:
                    # Found in Redis: applied by an earlier try, whose changes go out again.
                    # Earlier in this batch: its changes go out with that first one.
                    changes = _parse(marker)[1] if events[i].event_id not in applied_ids else ()
                    outcomes[i] = ApplyOutcome("duplicate", person_id, changes=changes)
                    if events[i].event_id not in applied_ids and before.version > 0:
                        again[person_id] = before
                    continue
                state = replace(apply(state, events[i]), version=before.version + 1)
                answer = LookupSummary.of(state)
                found = tuple(describe(summary, answer, events[i])) if describe else ()
                applied.append((i, ApplyOutcome("applied", person_id, summary, answer, found)))
                applied_ids[events[i].event_id] = digest
                summary = answer
            if applied:
                writes.append((person_id, before, state, applied))
        writing = {person_id for person_id, *_ in writes}
        published = [(state, state, True) for pid, state in again.items() if pid not in writing]
        if writes:
            async with self._client.pipeline(transaction=False) as pipe:
                for person_id, before, after, applied in writes:
                    await self._scripts.store_person(
                        keys=[
                            self._keys.person(person_id),
                            *(self._keys.dedupe(person_id, events[i].event_id) for i, _ in applied),
                        ],
                        args=[
                            before.version,
                            after.version,
                            dump_state(after),
                            self._ttl,
                            *(_marker(digests[i], outcome.changes) for i, outcome in applied),
                        ],
                        client=pipe,
                    )
                stored = await pipe.execute()
            for (person_id, before, after, applied), result in zip(writes, stored, strict=True):
                if result != 1:  # someone else wrote this person: the single way, in order
                    single.extend(i for i, _ in applied)
                    continue
                published.append((before, after, person_id in again))
                for i, outcome in applied:
                    outcomes[i] = outcome
        await self._publish_many(published)
        for i in sorted(single):
            outcomes[i] = await self.apply(events[i], describe)

    async def _publish_many(self, changes: Sequence[tuple[PersonState, PersonState, bool]]) -> None:
        """Lookup records and values of many persons in one pipeline (all of them if forced)."""
        if not changes:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for before, after, force in changes:
                old = LookupSummary.of(before) if before.version > 0 else None
                summary = LookupSummary.of(after)
                changed = force or not summary.same_answer(old)
                await self._queue_publish(
                    pipe,
                    after,
                    summary,
                    changed=changed,
                    old_ids=frozenset() if force else before.ids,
                )
            await pipe.execute()

    async def _absorb(self, survivor: str, absorbed: Sequence[str], event_id: str, at: int) -> None:
        """Fold absorbed persons into the survivor; safe to repeat after a crash."""
        for person_id in absorbed:
            await self._client.hset(self._keys.person(person_id), "r", survivor)
        dedupe_id = f"merge:{event_id}"
        for _ in range(_MAX_ATTEMPTS):
            _, _, state = await self._load(survivor, dedupe_id)
            merged = state
            for person_id in absorbed:
                version, blob = await self._client.hmget(self._keys.person(person_id), "v", "s")
                other = replace(load_state(person_id, blob, self._rule), version=int(version or 0))
                merged = merge(merged, other, event_id=event_id, at=at)
            if merged is state:
                break
            new = replace(merged, version=merged.version + 1)
            if await self._store(state, new, dedupe_id) == 1:
                await self._publish(new, changed=True, old_ids=frozenset())
                break
        else:
            raise StoreConflict(f"could not merge into {survivor} after {_MAX_ATTEMPTS} attempts")
        async with self._client.pipeline(transaction=False) as pipe:
            for person_id in absorbed:
                pipe.hdel(self._keys.person(person_id), "v", "s")
            forget_values(pipe, self._keys, absorbed)
            await pipe.execute()

    async def _publish(self, state: PersonState, *, changed: bool, old_ids: frozenset[str]) -> None:
        """Write the lookup record of every identifier whose answer is new, and the value."""
        if not changed and not (state.ids - old_ids):
            return
        async with self._client.pipeline(transaction=False) as pipe:
            await self._queue_publish(
                pipe, state, LookupSummary.of(state), changed=changed, old_ids=old_ids
            )
            await pipe.execute()

    async def _queue_publish(
        self,
        pipe: Pipeline,
        state: PersonState,
        summary: LookupSummary,
        *,
        changed: bool,
        old_ids: frozenset[str],
    ) -> None:
        tokens = sorted(state.ids) if changed else sorted(state.ids - old_ids)
        flat: list[str | int] = [item for pair in summary.fields().items() for item in pair]
        for token in tokens:
            await self._scripts.put_lookup(
                keys=[self._keys.lookup(token)], args=[state.version, *flat], client=pipe
            )
        if changed:
            cents = summary.revenue_cents if summary.existing_customer else None
            record_value(pipe, self._keys, state.person_id, cents)

    async def states(self, batch: int = 500) -> AsyncIterator[PersonState]:
        """Every live person's state (merged-away persons are skipped), for reports."""
        pattern = self._keys.person("*").replace("{*}", "*")
        keys: list[bytes] = []
        async for key in self._client.scan_iter(match=pattern, count=1000):
            keys.append(key)
            if len(keys) >= batch:
                async for state in self._read_states(keys):
                    yield state
                keys = []
        async for state in self._read_states(keys):
            yield state

    async def _read_states(self, keys: Sequence[bytes]) -> AsyncIterator[PersonState]:
        if not keys:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, "v", "s")
            replies = await pipe.execute()
        for key, (version, blob) in zip(keys, replies, strict=True):
            if blob:
                person_id = _text(key).rsplit("{", 1)[1].rstrip("}")
                yield replace(load_state(person_id, blob, self._rule), version=int(version or 0))

    async def forget(self, person_id: str, tokens: Sequence[str]) -> None:
        """Delete a person's state and the lookup records of its identifiers (erasure)."""
        _, _, state = await self._load(person_id, "-")
        all_tokens = set(tokens) | set(state.ids)
        keys = [self._keys.person(person_id), self._keys.person(state.person_id)]
        keys += [self._keys.person(pid) for pid in state.absorbed]
        keys += [self._keys.lookup(token) for token in all_tokens]
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.unlink(*keys)
            forget_values(pipe, self._keys, [person_id, state.person_id, *state.absorbed])
            await pipe.execute()
