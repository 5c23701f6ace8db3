"""The identity graph in Redis: which identifiers belong to which person, and why.

A batch is resolved in two round trips, read → decide → apply: one read gives what the graph
holds about every identifier of the batch, the pure rules (:mod:`bestand.identity.rules`) decide
the events in order against that view kept current in memory (:mod:`bestand.identity.overlay`),
and one write applies the decisions in order, each only if the graph still holds what it was
decided on. Another worker may change a person in between: the write then stops at that
decision, and the batch's rest is read and decided again. Several workers on several
partitions therefore resolve events of the same persons concurrently.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bestand.identity.entries import stored_entry
from bestand.identity.overlay import GraphOverlay, Guard, PersonFacts
from bestand.identity.policy import IdentityPolicy
from bestand.identity.rules import (
    Decision,
    GraphView,
    LogEntry,
    NewPerson,
    Unattributable,
    decide,
)
from bestand.store.compiled import Choice, compiled_in_use
from bestand.store.errors import StoreConflict
from bestand.store.explain_log import (
    IN_TOPIC,
    Explanation,
    Links,
    LinkSink,
    read_explanation,
    read_lineage,
)
from bestand.store.keys import CLAIM, Keys, facts_members, receipt_suffix
from bestand.store.scripts import Scripts

if TYPE_CHECKING:
    from bestand_native import Resolver

#: Rounds of read, decide and apply before a batch that keeps meeting changes is given up
#: (and retried as a whole, with backoff).
_MAX_ROUNDS = 50
#: Identifiers one read script covers, and decisions one apply script applies: a larger batch
#: goes as several scripts in one pipeline, so Redis serves lookups in between.
_READ_CHUNK = 1024
_APPLY_CHUNK = 256
#: Explain entries a redelivered event cannot write again: once its new person, links, merge
#: or move are in the graph, deciding it again finds its identifiers owned and changes
#: nothing. Only a log with other entries (refusals, junk) is compared with the entries the
#: log ends with.
_DECIDED_ONCE = frozenset({"new", "link", "merge", "move"})
#: Explain entries kept per person (the oldest go first).
MAX_LOG = 2000
#: How long the receipt of a merge or junk flag is kept for a redelivery, by default.
RECEIPT_TTL = 7 * 24 * 3600


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(slots=True)  # built per event: frozen would double that
class Resolution:
    """One event to resolve in a batch."""

    tokens: Sequence[str]
    candidate: NewPerson  # the id a new person gets (made when first asked)
    event_id: str
    at: int
    pattern_junk: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True, slots=True)
class Erased:
    """Every identifier of the event belongs to a person erased after it happened."""


#: The outcome of one event of a batch: the applied decision and its view, why no person can
#: have it, or that its persons were erased since.
Resolved = tuple[Decision, GraphView] | Unattributable | Erased
ERASED = Erased()

#: One event's outcome as the batch processor takes it, from either resolver:
#: ``(DECIDED, person, absorbed, identifiers, junk, former owners of the junk, None, moved)``,
#: ``(REFUSED, "", (), (), junk, former owners of the junk, why no person can have it, ())``
#: or ``(ERASED_SINCE, "", (), (), (), {}, None, ())``; ``moved`` holds (token, former
#: holder) of the cookies and device ids the event's person took over.
Answer = tuple[
    int,
    str,
    tuple[str, ...],
    tuple[str, ...],
    tuple[tuple[str, str], ...],
    Mapping[str, str],
    str | None,
    tuple[tuple[str, str], ...],
]
DECIDED, REFUSED, ERASED_SINCE = 0, 1, 2


def answer_of(result: Resolved) -> Answer:
    """The processor's form of one event's outcome."""
    if isinstance(result, Erased):
        return (ERASED_SINCE, "", (), (), (), {}, None, ())
    if isinstance(result, Unattributable):
        return (REFUSED, "", (), (), result.junk, result.owners, str(result), ())
    decision, view = result
    owners = {t: view.owners[t] for t, _ in decision.junk if t in view.owners}
    return (
        DECIDED,
        decision.person,
        tuple(decision.absorbed),
        tuple(decision.identifiers),
        tuple(decision.junk),
        owners,
        None,
        tuple(decision.moved),
    )


def resolver_in_use(choice: Choice) -> str:
    """Which resolver a worker with this setting runs: 'native' or 'python'."""
    return compiled_in_use(choice, "BESTAND_RESOLVE")


#: A plan to apply: the event's position, the plan (JSON), its identifiers, and the entries it
#: leaves to the explain topic.
_Plan = tuple[int, bytes, Sequence[str], Links | None]


@dataclass
class _Snapshot:
    """What one read of the graph gave for a batch."""

    overlay: GraphOverlay
    erased: dict[str, int]  # token -> erasure time
    receipts: list[Resolved | None]  # per event


def _changes_nothing(decision: Decision, view: GraphView) -> bool:
    """True for a decision that would write nothing new (a known visitor's next click)."""
    if decision.attach or decision.absorbed or decision.junk or decision.log or decision.claims:
        return False
    if any(person not in view.met.get(token, frozenset()) for token, person in decision.met):
        return False
    return set(decision.describe) <= view.names.get(decision.person, frozenset())


def _facts(flat: Sequence[bytes | str]) -> PersonFacts:
    """A person's facts hash (``HGETALL``): version, identifiers (counted by kind: what the
    rules read), describing tokens, claims on cookies and device ids (``@`` + token: the time
    claimed). A field of one letter but ``v`` is a count earlier layouts kept: left out."""
    facts = PersonFacts()
    counts, described = facts.counts, facts.described
    pairs = iter(flat)
    for raw_field, value in zip(pairs, pairs, strict=True):
        field = _text(raw_field)
        if field[0] == CLAIM:
            facts.claims[field[1:]] = int(value)
        elif len(field) > 1:
            if value:  # 1: a person holds a describing token once; empty: an identifier
                described.add(field)
            else:
                counts[field[0]] += 1
        elif field == "v":
            facts.version = int(value)
    return facts


@dataclass(frozen=True, slots=True)
class GraphRead:
    """One ``graph_read`` reply, split (its format is in the script's header): rows of the
    identifiers the graph knows, (position, owner, junk, erasure time, persons met); the
    owners' facts, (person, flat hash); receipts, (event position, body); the claims of
    cookies that moved, (position, [(time, person)..]). Positions count from 0."""

    tokens: list[tuple[int, str, bool, str, list[str]]]
    persons: list[tuple[str, list[str]]]
    receipts: list[tuple[int, str]]
    claims: list[tuple[int, list[tuple[int, str]]]]

    @classmethod
    def parse(cls, reply: bytes | str) -> GraphRead:
        """Split a reply."""
        token_rows, person_rows, receipt_rows, claim_rows = _text(reply).split("\x1d")
        tokens = []
        for row in token_rows.split("\x1e") if token_rows else ():
            i, owner, junk, erased_at, *met = row.split("\x1f")
            tokens.append((int(i) - 1, owner, junk == "1", erased_at, met))
        persons = []
        for row in person_rows.split("\x1e") if person_rows else ():
            person, *flat = row.split("\x1f")
            persons.append((person, flat))
        receipts = []
        for row in receipt_rows.split("\x1e") if receipt_rows else ():
            j, body = row.split("\x1f", 1)
            receipts.append((int(j) - 1, body))
        claims = []
        for row in claim_rows.split("\x1e") if claim_rows else ():
            i, *entries = row.split("\x1f")
            held = [entry.split(":", 1) for entry in entries]
            claims.append((int(i) - 1, [(int(time), person) for time, person in held]))
        return cls(tokens, persons, receipts, claims)


def _flag_decision(refusal: Unattributable, view: GraphView) -> Decision | None:
    """What an event that names nobody still changes: the junk it found is flagged, in the
    name of the first flagged identifier's owner (None when no owner is left to tell)."""
    owners = [view.owners[t] for t, _ in refusal.junk if t in view.owners]
    if not owners:
        return None
    return Decision(
        person=owners[0],
        absorbed=(),
        attach=(),
        describe=(),
        met=(),
        junk=refusal.junk,
        log=tuple(LogEntry("junk", (t,), why) for t, why in refusal.junk),
        identifiers=(),
        ignored=(),
    )


def _receipt(decision: Decision, view: GraphView, unattributable: str | None) -> dict[str, Any]:
    """What a redelivered event needs to give the same answer again (hashed tokens only)."""
    return {
        "person": decision.person,
        "absorbed": list(decision.absorbed),
        "identifiers": list(decision.identifiers),
        "junk": [list(pair) for pair in decision.junk],
        "owners": {t: view.owners[t] for t, _ in decision.junk if t in view.owners},
        "unattributable": unattributable,
        "moved": [list(pair) for pair in decision.moved],
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
        moved=tuple((token, former) for token, former in data.get("moved", ())),
    )
    return decision, GraphView(owners=owners)


class IdentityGraph:
    """Resolves identifier sets to persons under the identity policy."""

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        scripts: Scripts | None = None,
        policy: IdentityPolicy | None = None,
        receipt_ttl: int = RECEIPT_TTL,
        resolve: Choice = "python",
        links: LinkSink | None = None,
    ) -> None:
        """``resolve``: which code decides a batch between its round trips (the compiled
        resolver gives the same answers and writes as the Python one, at less CPU).
        ``links``: where new persons' and links' explain entries go instead of the graph's
        logs (:data:`LinkSink`); without one they are logged in Redis."""
        self._client = client
        self._keys = keys
        self._scripts = scripts or Scripts.load()
        self._policy = policy or IdentityPolicy.default()
        self._receipt_ttl = receipt_ttl
        self._links = links
        self._describing = "".join(
            kind.value for kind, rules in self._policy.kinds.items() if rules.link == "never"
        )
        self._native: Resolver | None = None
        if resolver_in_use(resolve) == "native":
            import bestand_native

            self._native = bestand_native.Resolver(
                keys.buckets,
                keys.graph_schema,
                MAX_LOG,
                {
                    kind.value: (rules.link, rules.max_persons, rules.max_per_person)
                    for kind, rules in self._policy.kinds.items()
                },
                self._describing,
                receipt_ttl,
                links is not None,
            )

    @property
    def native(self) -> bool:
        """Whether batches are decided by the compiled resolver."""
        return self._native is not None

    async def resolve_answers(self, batch: Sequence[Resolution]) -> list[Answer]:
        """:meth:`resolve_batch` in the processor's form (:data:`Answer`), by the compiled
        resolver where it runs."""
        if self._native is None:
            return [answer_of(result) for result in await self.resolve_batch(batch)]
        work = self._native.begin(list(batch))
        batch_id = secrets.token_hex(8)
        scripts, client = self._scripts, self._client
        read, apply = scripts.graph_read, scripts.graph_apply
        stale: list[Links] = []
        for round_number in range(_MAX_ROUNDS):
            reads = work.read()
            if reads is None:
                return work.answers()
            replies = await scripts.send(client, [scripts.command(read, call) for call in reads])
            calls = work.decide(replies, f"{batch_id}.{round_number}")
            handed = work.links() if self._links is not None else []
            links = [Links(person, event, tuple(entries)) for _, person, event, entries in handed]
            await self._hand_out(links, stale)
            commands = [scripts.command(apply, call) for call in calls]
            applied = await scripts.send(client, commands) if commands else []
            done = sum(int(n) for n in applied)
            work.applied(done)
            stale = [link for (i, *_), link in zip(handed, links, strict=True) if i >= done]
        raise StoreConflict(f"could not resolve a batch after {_MAX_ROUNDS} rounds")

    async def resolve_batch(self, batch: Sequence[Resolution]) -> list[Resolved]:
        """Resolve a batch of events in order, in one read and one write per round.

        Events whose receipt exists (a redelivery of a merge or a junk flag) get the answer
        recorded then. The others are decided in order against the overlay, and their
        decisions applied in order; if the write stops at a decision whose guard another
        worker changed, that event and every later one are read and decided again.
        """
        results: list[Resolved] = []
        pending = list(batch)
        batch_id = secrets.token_hex(8)
        stale: list[Links] = []
        for round_number in range(_MAX_ROUNDS):
            if not pending:
                return results
            answers, plans = self._decide_all(pending, await self._read(pending))
            await self._hand_out([p[3] for p in plans if p[3] is not None], stale)
            applied = await self._apply(plans, f"{batch_id}.{round_number}")
            if applied == len(plans):
                return results + answers
            # Everything before the first decision that was not applied stands.
            stopped_at = plans[applied][0]
            results += answers[:stopped_at]
            pending = pending[stopped_at:]
            stale = [p[3] for p in plans[applied:] if p[3] is not None]
        raise StoreConflict(f"could not resolve a batch after {_MAX_ROUNDS} rounds")

    async def _hand_out(self, links: list[Links], stale: list[Links]) -> None:
        """Give the link sink a round's links, and take back those of plans not applied
        whose events now decided otherwise."""
        if self._links is None:
            return
        sent = {(link.person, link.event_id) for link in links}
        taken_back = [link for link in stale if (link.person, link.event_id) not in sent]
        if links or taken_back:
            await self._links(links, taken_back)

    def _links_of(self, decision: Decision, item: Resolution) -> Links | None:
        """The decision's entries for the explain topic (none without a link sink)."""
        if self._links is None:
            return None
        entries = tuple(
            stored_entry(e, item.event_id, item.at) for e in decision.log if e.kind in IN_TOPIC
        )
        return Links(decision.person, item.event_id, entries) if entries else None

    def _decide_all(
        self, batch: Sequence[Resolution], snapshot: _Snapshot
    ) -> tuple[list[Resolved], list[_Plan]]:
        """Every event's answer, and the plans to apply (position, plan, identifiers, the
        explain topic's entries)."""
        answers: list[Resolved] = []
        plans: list[_Plan] = []
        overlay = snapshot.overlay
        for position, item in enumerate(batch):
            receipt = snapshot.receipts[position]
            if receipt is not None:
                answers.append(receipt)
                continue
            tokens = item.tokens
            if snapshot.erased:
                tokens = [t for t in tokens if snapshot.erased.get(t, -1) < item.at]
                if not tokens:
                    answers.append(ERASED)
                    continue
            view = overlay.view(tokens, item.at)
            try:
                decision = decide(
                    tokens, view, self._policy, item.candidate, item.pattern_junk, item.at
                )
            except Unattributable as exc:
                exc.owners = {t: view.owners[t] for t, _ in exc.junk if t in view.owners}
                answers.append(exc)
                flag = _flag_decision(exc, view)
                if flag is not None:
                    guard = overlay.guard(tokens, view)
                    plan = self._plan(guard, flag, view, item, str(exc))
                    plans.append((position, plan, tokens, self._links_of(flag, item)))
                    overlay.apply(flag)
                continue
            answers.append((decision, view))
            if not _changes_nothing(decision, view):
                guard = overlay.guard(tokens, view)
                plan = self._plan(guard, decision, view, item)
                plans.append((position, plan, tokens, self._links_of(decision, item)))
                overlay.apply(decision)
        return answers, plans

    async def _read(self, batch: Sequence[Resolution]) -> _Snapshot:
        """What the graph holds about the batch's identifiers, and the batch's receipts."""
        tokens = list(dict.fromkeys(t for item in batch for t in item.tokens))
        events = [receipt_suffix(item.event_id) for item in batch]
        chunks = max(1, -(-len(tokens) // _READ_CHUNK))
        token_parts = [tokens[i::chunks] for i in range(chunks)]
        event_parts = [events[i::chunks] for i in range(chunks)]
        script = self._scripts.graph_read
        schema = self._keys.graph_schema

        def build(pipe: Pipeline) -> None:
            for part, event_part in zip(token_parts, event_parts, strict=True):
                self._scripts.queue(
                    script,
                    pipe,
                    [self._keys.identifier(t) for t in part],
                    # No facts held: the Python reader asks for every owner's facts.
                    [schema, len(part), *part, 0, *event_part],
                )

        replies = await self._scripts.pipelined(self._client, build)
        owners: dict[str, str] = {}
        junk: set[str] = set()
        met: dict[str, list[str]] = {}
        erased: dict[str, int] = {}
        persons: dict[str, PersonFacts] = {}
        history: dict[str, list[tuple[int, str]]] = {}
        receipts: list[Resolved | None] = [None] * len(batch)
        for chunk, (part, reply) in enumerate(zip(token_parts, replies, strict=True)):
            read = GraphRead.parse(reply)
            for i, owner, junk_flag, erased_at, met_with in read.tokens:
                token = part[i]
                if owner:
                    owners[token] = owner
                if junk_flag:
                    junk.add(token)
                if met_with:
                    met[token] = met_with
                if erased_at:
                    erased[token] = int(erased_at)
            for person, flat in read.persons:
                persons[person] = _facts(flat)
            for offset, body in read.receipts:
                receipts[chunk + offset * chunks] = _from_receipt(body)
            for i, held in read.claims:
                history[part[i]] = held
        overlay = GraphOverlay(owners, junk, met, persons, self._describing, history)
        return _Snapshot(overlay, erased, receipts)

    def _plan(
        self,
        guard: Guard,
        decision: Decision,
        view: GraphView,
        item: Resolution,
        unattributable: str | None = None,
    ) -> bytes:
        """The apply script's plan of one decision (JSON)."""
        plan: dict[str, Any] = {
            "owners": guard.owners,
            "junk": dict.fromkeys(guard.unflagged, ""),
            "versions": guard.versions,
            "person": decision.person,
            "absorbed": decision.absorbed,
            "attach": decision.attach,
            "describe": decision.describe,
            "met": decision.met,
            "flag": decision.junk,
            "log": [
                stored_entry(e, item.event_id, item.at)
                for e in decision.log
                if self._links is None or e.kind not in IN_TOPIC
            ],
        }
        if decision.moved:
            # The former holder's log gets the move's entry too.
            entries = {
                e.tokens[0]: stored_entry(e, item.event_id, item.at)
                for e in decision.log
                if e.kind == "move"
            }
            claimed = dict(decision.claims)
            plan["move"] = [
                [token, former, entries[token], claimed[token]] for token, former in decision.moved
            ]
        if decision.claims:
            plan["claim"] = [x for token, at in decision.claims for x in (f"{CLAIM}{token}", at)]
        if any(entry.kind not in _DECIDED_ONCE for entry in decision.log):
            plan["repeats"] = 1
        if decision.absorbed or decision.junk or decision.moved:
            plan["receipt"] = {
                "event": receipt_suffix(item.event_id),
                "ttl": self._receipt_ttl,
                "body": orjson.dumps(_receipt(decision, view, unattributable)).decode(),
            }
        return orjson.dumps(plan)

    async def _apply(self, plans: Sequence[_Plan], batch: str) -> int:
        """Apply plans in order; how many were applied before one found the graph changed."""
        if not plans:
            return 0
        chunks = [plans[i : i + _APPLY_CHUNK] for i in range(0, len(plans), _APPLY_CHUNK)]
        script = self._scripts.graph_apply
        head: list[str | bytes | int] = [self._keys.graph_schema, batch, MAX_LOG, self._describing]

        def build(pipe: Pipeline) -> None:
            for chunk in chunks:
                keys = dict.fromkeys(self._keys.identifier(t) for _, _, ts, _ in chunk for t in ts)
                self._scripts.queue(
                    script, pipe, list(keys), [*head, *(plan for _, plan, _, _ in chunk)]
                )

        replies = await self._scripts.pipelined(self._client, build)
        return sum(int(applied) for applied in replies)

    async def person_of(self, token: str) -> str | None:
        """The person an identifier (``kind:hash``) belongs to, if any."""
        value = await self._client.hget(*self._keys.entry(token))
        return None if value is None else _text(value)

    async def identifiers_of(self, person_id: str) -> set[str]:
        """Every identifier (``kind:hash``) of a person."""
        return facts_members(await self._client.hget(self._keys.facts(person_id), person_id))

    async def junk_reason(self, token: str) -> str | None:
        """Why an identifier is flagged as junk, or ``None``."""
        value = await self._client.get(self._keys.junk(token))
        return None if value is None else _text(value)

    async def explain(self, person_id: str) -> Explanation | None:
        """Identifiers and history of a person, or ``None`` when the graph does not know it."""
        return await read_explanation(self._client, self._keys, person_id)

    async def lineage(self, tokens: Sequence[str]) -> list[str]:
        """The persons these identifiers name and every person those absorbed (for the
        explain topic's markers of an erasure)."""
        return await read_lineage(self._client, self._keys, tokens)

    async def erase(self, tokens: Sequence[str], at: int) -> list[tuple[str, list[str]]]:
        """Remove the persons these identifiers name; return each with its identifiers.

        Every identifier named or erased keeps a tombstone with the erasure time ``at``.
        """
        reply = await self._scripts.call(
            self._client,
            self._scripts.erase,
            [self._keys.identifier(t) for t in tokens],
            [self._keys.graph_schema, at, *tokens],
        )
        return [(_text(entry[0]), [_text(m) for m in entry[1:]]) for entry in reply]
