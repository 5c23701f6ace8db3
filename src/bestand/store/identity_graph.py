"""The identity graph in Redis: which identifiers belong to which person, and why.

Resolution is read → decide → apply: one script reads what the graph holds about an event's
identifiers, the pure rules (:mod:`bestand.identity.rules`) decide, and a second script applies
the decision only if nothing it read has changed in between; otherwise it reads again. Several
workers on several partitions can therefore resolve events of the same persons concurrently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from bestand.identity.policy import IdentityPolicy
from bestand.identity.rules import Decision, GraphView, LogEntry, Unattributable, decide
from bestand.store.errors import StoreConflict
from bestand.store.keys import Keys, receipt_suffix
from bestand.store.scripts import Scripts

_MAX_ATTEMPTS = 50
#: Events one graph read of a batch covers.
_WINDOW = 8
#: Explain entries kept per person (the oldest go first).
MAX_LOG = 2000
#: How long the receipt of a merge or junk flag is kept for a redelivery, by default.
RECEIPT_TTL = 7 * 24 * 3600


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class Resolution:
    """One event to resolve in a batch."""

    tokens: Sequence[str]
    candidate: str
    event_id: str
    at: int
    pattern_junk: Sequence[tuple[str, str]] = ()


#: The outcome of one event of a batch: the applied decision and its view, or why it failed.
Resolved = tuple[Decision, GraphView] | Unattributable


def _narrow(view: GraphView, tokens: Sequence[str]) -> GraphView:
    """The part of a batch's view that one event's decision rests on (its guard)."""
    owners = {t: view.owners[t] for t in tokens if t in view.owners}
    persons = set(owners.values())
    return GraphView(
        owners=owners,
        junk=frozenset(t for t in tokens if t in view.junk),
        met={t: view.met[t] for t in tokens if t in view.met},
        kind_counts={p: view.kind_counts[p] for p in persons if p in view.kind_counts},
        versions={p: view.versions[p] for p in persons if p in view.versions},
        names={p: view.names[p] for p in persons if p in view.names},
    )


def _changes_nothing(decision: Decision, view: GraphView) -> bool:
    """True for a decision that would write nothing new (a known visitor's next click)."""
    if decision.attach or decision.absorbed or decision.junk or decision.log:
        return False
    if any(person not in view.met.get(token, frozenset()) for token, person in decision.met):
        return False
    return set(decision.describe) <= view.names.get(decision.person, frozenset())


def _receipt(decision: Decision, view: GraphView, unattributable: str | None) -> dict[str, Any]:
    """What a redelivered event needs to give the same answer again (hashed tokens only)."""
    return {
        "person": decision.person,
        "absorbed": list(decision.absorbed),
        "identifiers": list(decision.identifiers),
        "junk": [list(pair) for pair in decision.junk],
        "owners": {t: view.owners[t] for t, _ in decision.junk if t in view.owners},
        "unattributable": unattributable,
    }


def _from_receipt(body: bytes | str) -> Resolved:
    """The answer a receipt recorded, as :meth:`IdentityGraph.resolve_many` gives it."""
    data = orjson.loads(body)
    junk = tuple((token, why) for token, why in data["junk"])
    owners: dict[str, str] = data["owners"]
    if data["unattributable"] is not None:
        refusal = Unattributable(data["unattributable"], junk)
        refusal.owners = owners
        return refusal
    decision = Decision(
        person=data["person"],
        absorbed=tuple(data["absorbed"]),
        attach=(),
        describe=(),
        met=(),
        junk=junk,
        log=(),
        identifiers=tuple(data["identifiers"]),
        ignored=(),
    )
    return decision, GraphView(owners=owners)


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why identifiers belong to one person: its identifiers and the recorded history."""

    person_id: str
    identifiers: list[str]
    history: list[dict[str, Any]]


class IdentityGraph:
    """Resolves identifier sets to persons under the identity policy."""

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        scripts: Scripts | None = None,
        policy: IdentityPolicy | None = None,
        receipt_ttl: int = RECEIPT_TTL,
    ) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts or Scripts.register(client)
        self._policy = policy or IdentityPolicy.default()
        self._receipt_ttl = receipt_ttl

    async def _read(self, tokens: Sequence[str]) -> GraphView:
        reply = await self._scripts.graph_read(
            keys=[self._keys.identifier(t) for t in tokens],
            args=[self._keys.graph, *tokens],
            client=self._client,
        )
        token_rows, person_rows = reply
        owners: dict[str, str] = {}
        junk: set[str] = set()
        met: dict[str, frozenset[str]] = {}
        for token, (owner, junk_reason, met_with) in zip(tokens, token_rows, strict=True):
            if owner:
                owners[token] = _text(owner)
            if junk_reason:
                junk.add(token)
            if met_with:
                met[token] = frozenset(_text(p) for p in met_with)
        counts: dict[str, dict[str, int]] = {}
        versions: dict[str, int] = {}
        names: dict[str, frozenset[str]] = {}
        for person, version, flat, name_tokens in person_rows:
            parts = _text(flat).split()
            counts[_text(person)] = {parts[i]: int(parts[i + 1]) for i in range(0, len(parts), 2)}
            versions[_text(person)] = int(version)
            names[_text(person)] = frozenset(_text(t) for t in name_tokens)
        return GraphView(owners, frozenset(junk), met, counts, versions, names)

    async def resolve(
        self,
        tokens: Sequence[str],
        candidate: str,
        event_id: str,
        at: int,
        pattern_junk: Sequence[tuple[str, str]] = (),
    ) -> tuple[Decision, GraphView]:
        """Resolve an event's identifiers; return the applied decision and what it was based on.

        ``candidate`` becomes the id of a new person when none of the identifiers is known.
        """
        if not tokens:
            raise ValueError("resolve needs at least one identifier")
        for _ in range(_MAX_ATTEMPTS):
            view = await self._read(tokens)
            try:
                decision = decide(tokens, view, self._policy, candidate, pattern_junk)
            except Unattributable as exc:
                if exc.junk and not await self._flag(tokens, view, exc, event_id, at):
                    continue  # the graph changed under us: read and decide again
                exc.owners = {t: view.owners[t] for t, _ in exc.junk if t in view.owners}
                raise
            # Applied unless the graph changed since ``view`` was read.
            if await self._queue_apply(self._client, tokens, view, decision, event_id, at) == 1:
                return decision, view
        raise StoreConflict(f"could not resolve {event_id} after {_MAX_ATTEMPTS} attempts")

    async def resolve_many(self, batch: Sequence[Resolution]) -> list[Resolved]:
        """Resolve a batch of events in order with few round trips.

        One read serves every event whose identifiers and persons no earlier event of the
        batch has touched; their decisions are applied together in one pipeline, each under
        its own guard. An event that depends on an earlier one waits for the next read. An
        event whose guard fails (another worker changed its persons) is resolved on its own.
        """
        receipts = await self._receipts([item.event_id for item in batch])
        if receipts:
            # Delivered again after a merge or junk flag: the graph changed already, so the
            # answer given then is given again; the others are resolved as usual.
            rest = [i for i in range(len(batch)) if i not in receipts]
            answers = iter(await self.resolve_many([batch[i] for i in rest]))
            return [receipts[i] if i in receipts else next(answers) for i in range(len(batch))]
        results: list[Resolved | None] = [None] * len(batch)
        start = 0
        while start < len(batch):
            # One read covers a window of events: a dependency re-reads only the window.
            end = min(len(batch), start + _WINDOW)
            wanted = dict.fromkeys(t for item in batch[start:end] for t in item.tokens)
            view = await self._read(list(wanted))
            pending: list[tuple[int, Decision, GraphView]] = []
            dirty_tokens: set[str] = set()
            dirty_persons: set[str] = set()
            position = start
            while position < end:
                item = batch[position]
                touched = {view.owners[t] for t in item.tokens if t in view.owners}
                touched.update(p for t in item.tokens for p in view.met.get(t, ()))
                if dirty_tokens.intersection(item.tokens) or dirty_persons & touched:
                    break  # depends on a decision not applied yet: read again
                narrow = _narrow(view, item.tokens)
                try:
                    decision = decide(
                        item.tokens, narrow, self._policy, item.candidate, item.pattern_junk
                    )
                except Unattributable as exc:
                    if exc.junk:
                        break  # flagging goes the single way, after what is pending
                    results[position] = exc
                    position += 1
                    continue
                if _changes_nothing(decision, narrow):
                    results[position] = (decision, narrow)
                else:
                    pending.append((position, decision, narrow))
                    dirty_tokens.update(item.tokens)
                    dirty_persons.update(touched, decision.absorbed, (decision.person,))
                position += 1
            await self._apply_pending(batch, pending, results)
            if position < len(batch) and position == start:
                # The first event could not go the batched way: resolve it on its own.
                results[position] = await self._resolve_one(batch[position])
                position += 1
            start = position
        done = [result for result in results if result is not None]
        if len(done) != len(batch):  # pragma: no cover - every position is filled above
            raise RuntimeError("a batch position was left unresolved")
        return done

    async def _receipts(self, event_ids: Sequence[str]) -> dict[int, Resolved]:
        """The recorded answers of events that merged persons or flagged junk, by position."""
        if not event_ids:
            return {}
        bodies = await self._client.mget([self._keys.receipt(e) for e in event_ids])
        return {i: _from_receipt(body) for i, body in enumerate(bodies) if body}

    async def _apply_pending(
        self,
        batch: Sequence[Resolution],
        pending: Sequence[tuple[int, Decision, GraphView]],
        results: list[Resolved | None],
    ) -> None:
        if not pending:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for position, decision, view in pending:
                item = batch[position]
                await self._queue_apply(pipe, item.tokens, view, decision, item.event_id, item.at)
            replies = await pipe.execute()
        for (position, decision, view), applied in zip(pending, replies, strict=True):
            if applied == 1:
                results[position] = (decision, view)
            else:  # the graph moved under this one: read and decide again, alone
                results[position] = await self._resolve_one(batch[position])

    async def _resolve_one(self, item: Resolution) -> Resolved:
        try:
            return await self.resolve(
                item.tokens, item.candidate, item.event_id, item.at, item.pattern_junk
            )
        except Unattributable as exc:
            return exc

    async def _queue_apply(
        self,
        client: Any,
        tokens: Sequence[str],
        view: GraphView,
        decision: Decision,
        event_id: str,
        at: int,
        unattributable: str | None = None,
    ) -> Any:
        """Run (or, on a pipeline, queue) the guarded apply script for one decision."""
        plan = {
            "owners": {t: view.owners.get(t, "") for t in tokens},
            "junk": {t: "" for t in tokens if t not in view.junk},
            "versions": view.versions,
            "person": decision.person,
            "absorbed": list(decision.absorbed),
            "attach": list(decision.attach),
            "describe": list(decision.describe),
            "met": [list(pair) for pair in decision.met],
            "flag": [list(pair) for pair in decision.junk],
            "log": [orjson.dumps(e.to_json(event_id, at)).decode() for e in decision.log],
            "max_log": MAX_LOG,
        }
        if decision.absorbed or decision.junk:
            body = _receipt(decision, view, unattributable)
            plan["receipt"] = {
                "event": receipt_suffix(event_id),
                "ttl": self._receipt_ttl,
                "body": orjson.dumps(body).decode(),
            }
        return await self._scripts.graph_apply(
            keys=[self._keys.identifier(t) for t in tokens],
            args=[self._keys.graph, orjson.dumps(plan)],
            client=client,
        )

    async def _flag(
        self,
        tokens: Sequence[str],
        view: GraphView,
        refusal: Unattributable,
        event_id: str,
        at: int,
    ) -> bool:
        """Flag junk found by an event that names nobody; False when the graph moved on."""
        junk = refusal.junk
        owners = [view.owners[t] for t, _ in junk if t in view.owners]
        if not owners:
            return True
        decision = Decision(
            person=owners[0],
            absorbed=(),
            attach=(),
            describe=(),
            met=(),
            junk=tuple(junk),
            log=tuple(LogEntry("junk", (t,), why) for t, why in junk),
            identifiers=(),
            ignored=(),
        )
        applied = await self._queue_apply(
            self._client, tokens, view, decision, event_id, at, str(refusal)
        )
        return bool(applied == 1)

    async def person_of(self, token: str) -> str | None:
        """The person an identifier (``kind:hash``) belongs to, if any."""
        value = await self._client.get(self._keys.identifier(token))
        return None if value is None else _text(value)

    async def identifiers_of(self, person_id: str) -> set[str]:
        """Every identifier (``kind:hash``) of a person."""
        return {_text(m) for m in await self._client.smembers(self._keys.person_ids(person_id))}

    async def junk_reason(self, token: str) -> str | None:
        """Why an identifier is flagged as junk, or ``None``."""
        value = await self._client.get(self._keys.junk(token))
        return None if value is None else _text(value)

    async def explain(self, person_id: str) -> Explanation | None:
        """Identifiers and history of a person, or ``None`` when the graph does not know it."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.smembers(self._keys.person_ids(person_id))
            pipe.lrange(self._keys.merge_log(person_id), 0, -1)
            members, entries = await pipe.execute()
        if not members and not entries:
            return None
        return Explanation(
            person_id=person_id,
            identifiers=sorted(_text(m) for m in members),
            history=[orjson.loads(entry) for entry in entries],
        )

    async def erased_at(self, tokens: Sequence[str]) -> dict[str, int]:
        """When identifiers were erased (their tombstones); identifiers never erased are absent."""
        unique = sorted(set(tokens))
        if not unique:
            return {}
        values = await self._client.mget([self._keys.tombstone(t) for t in unique])
        return {t: int(v) for t, v in zip(unique, values, strict=True) if v is not None}

    async def erase(self, tokens: Sequence[str], at: int) -> list[tuple[str, list[str]]]:
        """Remove the persons these identifiers name; return each with its identifiers.

        Every identifier named or erased keeps a tombstone with the erasure time ``at``.
        """
        reply = await self._scripts.erase(
            keys=[self._keys.identifier(t) for t in tokens],
            args=[self._keys.graph, at],
            client=self._client,
        )
        return [(_text(entry[0]), [_text(m) for m in entry[1:]]) for entry in reply]
