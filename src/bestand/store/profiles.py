"""Person state in Redis: the pure reducer applied with compare-and-set, then lookup records.

Any worker may write any person (a merge moves events between partitions), so every write is
a compare-and-set on the person's version, retried on conflict. An event is applied at most
once per person (dedupe key with TTL); orders and returns are idempotent by structure anyway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from redis.asyncio import Redis

from bestand.events import ResolvedEvent
from bestand.profile import LookupSummary, PersonState, apply, dump_state, load_state, merge
from bestand.profile.state import CustomerRule
from bestand.store.errors import StoreConflict
from bestand.store.keys import Keys
from bestand.store.scripts import Scripts
from bestand.store.values import forget_values, record_value

_MAX_ATTEMPTS = 50
_MAX_REDIRECTS = 32


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What applying one event did."""

    status: Literal["applied", "duplicate"]
    person_id: str
    before: LookupSummary | None = None
    after: LookupSummary | None = None

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

    async def _load(self, person_id: str, dedupe_id: str) -> tuple[str, bool, PersonState]:
        """Follow merge redirects to the live person; report whether the event was applied."""
        for _ in range(_MAX_REDIRECTS):
            redirect, applied, version, blob = await self._scripts.load_person(
                keys=[self._keys.person(person_id), self._keys.dedupe(person_id, dedupe_id)],
                client=self._client,
            )
            target = _text(redirect)
            if target:
                person_id = target
                continue
            state = replace(load_state(person_id, blob or None, self._rule), version=int(version))
            return person_id, bool(applied), state
        raise StoreConflict(f"redirect chain longer than {_MAX_REDIRECTS} from {person_id}")

    async def _store(self, before: PersonState, after: PersonState, dedupe_id: str) -> int:
        result: int = await self._scripts.store_person(
            keys=[
                self._keys.person(after.person_id),
                self._keys.dedupe(after.person_id, dedupe_id),
            ],
            args=[before.version, after.version, dump_state(after), self._ttl],
            client=self._client,
        )
        return result

    async def load(self, person_id: str) -> PersonState | None:
        """A person's current state (following merges), or ``None`` if there is none."""
        person_id, _, state = await self._load(person_id, "-")
        return state if state.version > 0 else None

    async def apply(self, event: ResolvedEvent) -> ApplyOutcome:
        """Apply one resolved event: merges first, then the event, then lookup records."""
        at = int(event.event_time.timestamp())
        if event.absorbed:
            await self._absorb(event.person_id, event.absorbed, event.event_id, at)
        for _ in range(_MAX_ATTEMPTS):
            person_id, applied, state = await self._load(event.person_id, event.event_id)
            if applied:
                return ApplyOutcome("duplicate", person_id)
            new = replace(apply(state, event), version=state.version + 1)
            if await self._store(state, new, event.event_id) == 1:
                before = LookupSummary.of(state) if state.version > 0 else None
                after = LookupSummary.of(new)
                await self._publish(new, changed=not after.same_answer(before), old_ids=state.ids)
                if event.kind == "detach" and event.identifiers:
                    # Junk identifiers name nobody: their lookup records go.
                    await self._client.unlink(*(self._keys.lookup(t) for t in event.identifiers))
                return ApplyOutcome("applied", person_id, before, after)
        raise StoreConflict(f"could not apply {event.event_id} after {_MAX_ATTEMPTS} attempts")

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
        tokens = sorted(state.ids) if changed else sorted(state.ids - old_ids)
        if not tokens and not changed:
            return
        summary = LookupSummary.of(state)
        flat: list[str | int] = [item for pair in summary.fields().items() for item in pair]
        async with self._client.pipeline(transaction=False) as pipe:
            for token in tokens:
                await self._scripts.put_lookup(
                    keys=[self._keys.lookup(token)], args=[state.version, *flat], client=pipe
                )
            if changed:
                cents = summary.revenue_cents if summary.existing_customer else None
                record_value(pipe, self._keys, state.person_id, cents)
            await pipe.execute()

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
