"""Person state in Redis: a batch's events folded in memory, written with compare-and-set.

Any worker may write any person (one person's events arrive on several partitions, and a
merge joins persons of several), so a batch reads every person it names in one round trip,
folds its events into them (:mod:`bestand.profile.fold`) and writes each group of persons its
merges join all or nothing, under the versions it read. A group another worker wrote in between
is read and folded again. An event is applied at most once per person (a dedupe marker with a
TTL); orders and returns are idempotent by structure anyway.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bestand.events import ResolvedEvent
from bestand.identity.kinds import MOVABLE
from bestand.profile import PersonState, dump_state, load_state
from bestand.profile.changes import Describer
from bestand.profile.fold import (
    ApplyOutcome,
    Describe,
    GroupWrite,
    Loaded,
    fold_group,
    groups,
    joined,
    live_person,
)
from bestand.profile.markers import content_digest
from bestand.profile.markers import marker as _marker
from bestand.profile.markers import parse_marker as _parse
from bestand.profile.markers import same_content as _same
from bestand.profile.state import CustomerRule
from bestand.store.compiled import Choice, compiled_in_use
from bestand.store.errors import StoreConflict
from bestand.store.keys import Keys, person_value
from bestand.store.scripts import Scripts

if TYPE_CHECKING:
    from bestand_native import Folder

__all__ = ["ApplyOutcome", "ProfileStore", "_marker", "_parse", "_same", "content_digest"]

#: What a batch's person-state writes send to Redis, counted by kind: write amplification
#: per event (every change of a person's answer rewrites the record of each identifier).
WRITE_KINDS = ("person_state", "lookup_record", "dedupe_marker")


def _count_writes(writes: Counter[str], states: int, records: int, markers: int) -> None:
    for kind, count in zip(WRITE_KINDS, (states, records, markers), strict=True):
        if count:
            writes[kind] += count


#: Rounds of read, fold and write before a batch whose persons keep changing is given up
#: (and retried as a whole, with backoff).
_MAX_ROUNDS = 50
_MAX_REDIRECTS = 32
#: Groups one write script covers: a larger batch goes as several scripts in one pipeline.
_WRITE_CHUNK = 128
#: Persons a store remembers as it last read or wrote them.
_REMEMBERED = 20_000


class _Remembered:
    """The persons a worker last read or wrote, with their version and answer.

    One person's events come in runs (a visit's clicks, then its order); reading the person
    again, Redis sends no state when the version is the one remembered, and the worker parses
    nothing. The version decides, so another worker's write is never missed.
    """

    def __init__(self, size: int = _REMEMBERED) -> None:
        self._size = size
        self._persons: dict[str, Loaded] = {}

    def version(self, person_id: str) -> int:
        """The version remembered (-1: none)."""
        found = self._persons.get(person_id)
        return -1 if found is None else found.state.version

    def get(self, person_id: str) -> Loaded:
        """The person as remembered (only after :meth:`version` matched Redis)."""
        found = self._persons.pop(person_id)
        self._persons[person_id] = found  # the most recently used go last
        return found

    def put(self, loaded: Loaded) -> None:
        """Remember a person (the least recently used go when there are too many)."""
        self._persons.pop(loaded.state.person_id, None)
        self._persons[loaded.state.person_id] = loaded
        if len(self._persons) > self._size:
            del self._persons[next(iter(self._persons))]

    def forget(self, person_id: str) -> None:
        """Remember nothing of a person (merged away, erased)."""
        self._persons.pop(person_id, None)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _joined(batch: Sequence[ResolvedEvent]) -> dict[str, list[str]]:
    """The persons each person of the batch is merged with by the batch's events."""
    root = joined(batch)
    persons = {p for event in batch for p in (event.person_id, *event.absorbed)}
    by_root: dict[str, list[str]] = {}
    for person in persons:
        by_root.setdefault(root(person), []).append(person)
    return {person: group for group in by_root.values() if len(group) > 1 for person in group}


FoldChoice = Choice


def fold_in_use(choice: FoldChoice) -> str:
    """Which fold a worker with this setting runs: 'native' or 'python'."""
    return compiled_in_use(choice, "BESTAND_FOLD")


def native_folder(
    keys: Keys, dedupe_ttl: int, rule: CustomerRule, choice: FoldChoice
) -> Folder | None:
    """The compiled fold (``bestand_native.Folder``), or None for the Python one.

    The compiled fold gives the same states, records, markers and outcomes as
    :mod:`bestand.profile.fold` (the tests hold it to them) at a fraction of the CPU.
    """
    if fold_in_use(choice) == "python":
        return None
    import bestand_native

    return bestand_native.Folder(keys.prefix, keys.person_schema, dedupe_ttl, rule)


class ProfileStore:
    """Reads and writes person state and the lookup records derived from it."""

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        dedupe_ttl: int,
        scripts: Scripts | None = None,
        rule: CustomerRule = "kept",
        fold: FoldChoice = "python",
    ) -> None:
        self._client = client
        self._rule: CustomerRule = rule
        self._keys = keys
        self._ttl = dedupe_ttl
        self._scripts = scripts or Scripts.load()
        self._remembered = _Remembered()
        self._native = native_folder(keys, dedupe_ttl, rule, fold)

    @property
    def native(self) -> bool:
        """Whether batches are folded by the compiled fold."""
        return self._native is not None

    async def apply_batch(
        self,
        events: Sequence[ResolvedEvent],
        describe: Describe | None = None,
        writes: Counter[str] | None = None,
    ) -> list[ApplyOutcome]:
        """Apply events in order: one read, one write, and again for groups that conflicted.

        ``describe`` names the changes an applied event causes; they are kept in its dedupe
        marker, and a redelivery of the event gets them again (``duplicate`` outcome). The
        compiled fold takes a :class:`Describer` (or nothing); another ``describe`` is
        folded in Python. ``writes`` counts what the written groups sent to Redis, by
        :data:`WRITE_KINDS`.
        """
        if self._native is not None and (describe is None or isinstance(describe, Describer)):
            return await self._apply_native(events, describe, writes)
        outcomes: list[ApplyOutcome | None] = [None] * len(events)
        digests = [content_digest(event) for event in events]
        todo = list(range(len(events)))
        for _ in range(_MAX_ROUNDS):
            if not todo:
                break
            batch = [events[i] for i in todo]
            marks = [digests[i] for i in todo]
            persons, found = await self._read(batch)
            folded = [
                fold_group(batch, positions, marks, persons, found, describe)
                for positions in groups(batch, persons)
            ]
            written = await self._write([write for _, write in folded])
            retry: list[int] = []
            for (results, write), ok in zip(folded, written, strict=True):
                if ok:
                    self._remember(write)
                    if writes is not None:
                        _count_writes(
                            writes,
                            len(write.states),
                            sum(len(record.tokens) for record in write.publish),
                            len(write.markers),
                        )
                for position, outcome in results:
                    if ok:
                        outcomes[todo[position]] = outcome
                    else:
                        retry.append(todo[position])
            todo = sorted(retry)
        if todo:
            raise StoreConflict(f"could not apply a batch after {_MAX_ROUNDS} rounds")
        return [outcome for outcome in outcomes if outcome is not None]

    async def _apply_native(
        self,
        events: Sequence[ResolvedEvent],
        describe: Describer | None,
        writes: Counter[str] | None,
    ) -> list[ApplyOutcome]:
        """:meth:`apply_batch` with the compiled fold: the same rounds of read, fold and
        write; the fold packs every call, this sends them."""
        assert self._native is not None
        batch = self._native.begin(events)
        scripts, client = self._scripts, self._client
        read_script, write_script = scripts.persons_read, scripts.persons_write
        described = None if describe is None else describe.native()
        for _ in range(_MAX_ROUNDS):
            while (reads := batch.read()) is not None:
                calls = [scripts.command(read_script, read) for read in reads]
                replies = await scripts.send(client, calls)
                batch.feed(
                    [row for rows, _ in replies for row in rows],
                    [marker for _, markers in replies for marker in markers],
                )
            calls = [scripts.command(write_script, call) for call in batch.fold(described)]
            replies = await scripts.send(client, calls) if calls else []
            if batch.written(replies):
                if writes is not None:
                    _count_writes(writes, *batch.writes())
                return batch.outcomes()
        raise StoreConflict(f"could not apply a batch after {_MAX_ROUNDS} rounds")

    def _remember(self, write: GroupWrite) -> None:
        """Remember the persons a group's write left, and forget those it merged away."""
        for state, summary in zip(write.states, write.summaries, strict=True):
            self._remembered.put(Loaded(None, state, summary))
        for gone, _ in write.absorbed:
            self._remembered.forget(gone)

    async def _read(
        self, batch: Sequence[ResolvedEvent]
    ) -> tuple[dict[str, Loaded], dict[int, str]]:
        """Every person the events name (and where merged ones went), and markers found.

        An event's marker is looked for at its person, at the persons it was merged into
        since, and at the persons its person absorbed: an event applied to a person that a
        later merge absorbed is that survivor's event, and is not applied to it again.
        """
        persons: dict[str, Loaded] = {}
        found: dict[int, str] = {}
        wanted = dict.fromkeys(p for e in batch for p in (e.person_id, *e.absorbed))
        # (event position, person whose marker to read, whether to follow that person on)
        asks = [(i, e.person_id, True) for i, e in enumerate(batch)]
        # Persons this batch merges: an event of one may have been applied to another before.
        joined = _joined(batch)
        asks += [
            (i, other, False)
            for i, e in enumerate(batch)
            for other in joined.get(e.person_id, ())
            if other != e.person_id
        ]
        for _ in range(_MAX_REDIRECTS):
            names = [p for p in wanted if p not in persons]
            if not names and not asks:
                return persons, found
            marker_keys = [self._keys.dedupe(person, batch[i].event_id) for i, person, _ in asks]
            rows, markers = await self._read_keys(names, marker_keys)
            for person, row in zip(names, rows, strict=True):
                if row[3]:
                    persons[person] = self._remembered.get(person)
                    continue
                persons[person] = loaded = self._loaded(person, row)
                if loaded.redirect:
                    self._remembered.forget(person)
            for (i, _, _), text in zip(asks, markers, strict=True):
                if text and i not in found:
                    found[i] = _text(text)
            followed = [(i, persons[person]) for i, person, follow in asks if follow]
            # A person merged away since: read where it went, and the event's marker there.
            wanted = dict.fromkeys(loaded.redirect for _, loaded in followed if loaded.redirect)
            asks = [(i, loaded.redirect, True) for i, loaded in followed if loaded.redirect]
            asks += [
                (i, gone, False)
                for i, loaded in followed
                if loaded.redirect is None and i not in found
                for gone in sorted(loaded.state.absorbed)
            ]
        raise StoreConflict(f"redirect chain longer than {_MAX_REDIRECTS}")

    async def _read_keys(
        self, names: Sequence[str], marker_keys: Sequence[str]
    ) -> tuple[list[list[Any]], list[bytes | str]]:
        """``persons_read`` of these persons and dedupe keys: a row per person (redirect,
        version, state, known), a marker per key."""
        keys = [self._keys.person(p) for p in names] + list(marker_keys)
        known = [self._remembered.version(p) for p in names]
        rows, markers = await self._scripts.call(
            self._client, self._scripts.persons_read, keys, [len(names), *known, *names]
        )
        return rows, markers

    def _loaded(self, person: str, row: Sequence[Any]) -> Loaded:
        """A person as ``persons_read`` gave it (not one the store remembers)."""
        redirect = row[0] if isinstance(row[0], bytes) else row[0].encode()
        went, _, kept = redirect.partition(b"\x1f")  # a cluster's redirect that kept a state
        version, blob = int(row[1]), row[2]
        state = replace(load_state(person, blob or None, self._rule), version=version)
        if not kept:
            return Loaded(went.decode() or None, state)
        _, kept_version, kept_blob = person_value(kept)
        held = replace(load_state(person, kept_blob or None, self._rule), version=kept_version)
        return Loaded(went.decode(), state, kept=held)

    async def _write(self, writes: Sequence[GroupWrite]) -> list[bool]:
        """Write every group (each all or nothing); which were written."""
        pending = [(n, write) for n, write in enumerate(writes) if not write.empty]
        result = [True] * len(writes)
        if not pending:
            return result
        chunks = [pending[i : i + _WRITE_CHUNK] for i in range(0, len(pending), _WRITE_CHUNK)]

        def build(pipe: Pipeline) -> None:
            for chunk in chunks:
                self._queue_write(pipe, [write for _, write in chunk])

        replies = await self._scripts.pipelined(self._client, build)
        for chunk, reply in zip(chunks, replies, strict=True):
            for (n, _), ok in zip(chunk, reply, strict=True):
                result[n] = ok == 1
        return result

    def _queue_write(self, pipe: Pipeline, writes: Sequence[GroupWrite]) -> None:
        keys: dict[str, None] = {}
        groups_json: list[bytes] = []
        blobs: list[bytes] = []
        first_blob = 4 + len(writes)  # ARGV index (1-based) of the first state or record
        for write in writes:
            states = []
            for state in write.states:
                states.append([state.person_id, state.version, first_blob + len(blobs)])
                blobs.append(dump_state(state))
                keys[self._keys.person(state.person_id)] = None
            lookups: list[list[object]] = []
            for record in write.publish:
                if record.tokens:
                    at = first_blob + len(blobs)
                    blobs.append(record.summary.packed().encode())
                    lookups.append([record.state.version, int(record.checked), at, record.tokens])
                keys.update((self._keys.lookup(token), None) for token in record.tokens)
                keys.update(
                    (self._keys.identifier(token), None)
                    for token in record.tokens
                    if token[0] in MOVABLE
                )
            for gone, _ in write.absorbed:
                keys[self._keys.person(gone)] = None
            markers = [
                [self._keys.dedupe(person, event), text] for person, event, text in write.markers
            ]
            keys.update((key, None) for key, _ in markers)
            groups_json.append(
                orjson.dumps(
                    {
                        "guard": write.guard,
                        "write": states,
                        "absorbed": write.absorbed,
                        "markers": markers,
                        "lookups": lookups,
                        "unlink": write.unlink,
                    }
                )
            )
            keys.update((self._keys.lookup(token), None) for token in write.unlink)
        self._scripts.queue(
            self._scripts.persons_write,
            pipe,
            list(keys),
            [self._keys.person_schema, self._ttl, len(writes), *groups_json, *blobs],
        )

    async def _follow(self, person_id: str) -> tuple[str, PersonState]:
        """The live person ``person_id`` is now, and its state (version 0: none)."""
        persons: dict[str, Loaded] = {}
        for _ in range(_MAX_REDIRECTS):
            rows, _ = await self._scripts.call(
                self._client,
                self._scripts.persons_read,
                [self._keys.person(person_id)],
                [1, -1, person_id],
            )
            persons[person_id] = loaded = self._loaded(person_id, rows[0])
            state = loaded.state
            target = live_person(person_id, persons)
            if target == person_id:
                return person_id, state
            person_id = target
        raise StoreConflict(f"redirect chain longer than {_MAX_REDIRECTS} from {person_id}")

    async def load(self, person_id: str) -> PersonState | None:
        """A person's current state (following merges), or ``None`` if there is none."""
        _, state = await self._follow(person_id)
        return state if state.version > 0 else None

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
        """The live persons of these person buckets."""
        if not keys:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(key)
            replies = await pipe.execute()
        for fields in replies:
            for person, value in fields.items():
                went, version, blob = person_value(value)
                if went is None and blob:
                    state = load_state(_text(person), blob, self._rule)
                    yield replace(state, version=version)

    async def forget(self, person_id: str, tokens: Sequence[str]) -> None:
        """Delete a person's state and the lookup records of its identifiers (erasure)."""
        live, state = await self._follow(person_id)
        for gone in (person_id, live, *state.absorbed):
            self._remembered.forget(gone)
            if self._native is not None:
                self._native.forget(gone)
        all_tokens = set(tokens) | set(state.ids)
        async with self._client.pipeline(transaction=False) as pipe:
            for person in dict.fromkeys((person_id, live, *sorted(state.absorbed))):
                pipe.hdel(self._keys.person(person), person)
            for token in sorted(all_tokens):
                pipe.hdel(*self._keys.lookup_entry(token))
            await pipe.execute()
