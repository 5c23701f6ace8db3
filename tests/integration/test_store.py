"""The worker's processor on a real Redis: merges, order independence, concurrency, erasure."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from typing import Any

import orjson
import pytest
import redis
from support import Deployment, Process

from bestand.api import create_api
from bestand.api.models import PersonExplanation
from bestand.ops.metrics import WorkerMetrics
from bestand.profile import PersonState, load_state
from bestand.profile.stored import PACKED
from bestand.settings import Settings
from bestand.store import Keys, StoreLayoutError, connect
from bestand.store.keys import (
    ABSORBED_FIELD,
    LOG_FIELD,
    LOG_INLINE,
    MET_FIELD,
    REDIRECT_FIELD,
    facts_pairs,
    packed_facts,
    person_value,
    token_of,
)
from bestand.store.layout import LAYOUT, ensure_layout
from bestand.stream.messages import Incoming, Outgoing
from bestand.stream.worker import processor_for
from stages import unshare_buckets

pytestmark = pytest.mark.integration


def order(n: int, **customer: Any) -> tuple[str, dict[str, Any]]:
    return "orders", {
        "type": "order_placed",
        "event_id": f"st-{n}",
        "event_time": f"2026-10-{n % 28 + 1:02d}T10:00:00Z",
        "order_id": f"st-o{n}",
        "total": f"{10 + n}.00",
        "currency": "EUR",
        "channel": "web",
        "customer": {"guest": True, **customer},
    }


def identify(n: int, **identifiers: str) -> tuple[str, dict[str, Any]]:
    return "customer", {
        "type": "identify",
        "event_id": f"st-{n}",
        "event_time": f"2026-10-{n % 28 + 1:02d}T11:00:00Z",
        "identifiers": identifiers,
    }


class Pipeline:
    """The worker's processor in-process on a real Redis, with a key prefix of its own."""

    def __init__(self, redis_url: str, prefix: str | None = None) -> None:
        prefix = prefix or f"s{uuid.uuid4().hex[:8]}"
        self.settings = Settings(_env_file=None, redis_url=redis_url, redis_prefix=prefix)
        self.keys = Keys(prefix)
        self.client = connect(redis_url)
        self.processor = processor_for(self.settings, self.client, WorkerMetrics())
        self.graph = self.processor.graph
        self.profiles = self.processor.profiles

    async def feed(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        for kind, event in events:
            await self.one(kind, event)

    async def one(self, kind: str, event: dict[str, Any], offset: int = 0) -> list[Outgoing]:
        topic = getattr(self.settings, f"topic_{kind}")
        out = await self.processor.process([Incoming(topic, 0, offset, None, orjson.dumps(event))])
        assert all(message.destination in ("changes", "explain") for message in out), out
        return out

    async def answer(self, name: str, value: str) -> dict[str, Any]:
        from bestand.api import create_api

        api = create_api(
            self.settings.model_copy(update={"redis_prefix": self.keys.prefix}), self.client
        )
        return await api.service.lookup(name, value)

    async def snapshot(self) -> dict[str, Any]:
        """Every person's answer by e-mail of the scenario, person ids replaced by their rank."""
        answers = {e: await self.answer("email", e) for e in ("a@example.com", "b@example.com")}
        answers["cookie"] = await self.answer("anonymous_id", "ck-1")
        return {k: {f: v for f, v in a.items() if f != "person_id"} for k, a in answers.items()} | {
            "same": len({a["person_id"] for a in answers.values()})
        }

    async def keys_of_prefix(self) -> list[str]:
        return sorted([k.decode() async for k in self.client.scan_iter(match=self.keys.pattern())])


SCENARIO = [
    order(1, email="a@example.com"),
    order(2, email="b@example.com", phone="0151 11112222"),
    (
        "clickstream",
        {
            "type": "page_view",
            "event_id": "st-3",
            "event_time": "2026-11-04T10:00:00Z",
            "anonymous_id": "ck-1",
        },
    ),
    identify(4, anonymous_id="ck-1", phone="+49 151 11112222"),
    identify(5, email="A@example.com", phone="0151-1111-2222"),
]


def test_every_arrival_order_gives_the_same_answers(redis_url: str) -> None:
    async def go() -> list[dict[str, Any]]:
        results = []
        for perm in itertools.permutations(SCENARIO):
            pipeline = Pipeline(redis_url)
            await pipeline.feed(list(perm))
            results.append(await pipeline.snapshot())
            await pipeline.client.aclose()
        return results

    results = asyncio.run(go())
    assert len(results) == 120
    first = results[0]
    # a and b meet through a phone; the cookie of an anonymous visit joins them (weak, but
    # the visitor was nobody known).
    assert first["same"] == 1
    assert first["a@example.com"]["orders_count"] == 2
    assert all(result == first for result in results)


def test_concurrent_merges_count_every_order_once(redis_url: str) -> None:
    """Persons chained together by events resolved concurrently, as several workers would."""
    n = 9  # within the policy's cap of 10 e-mails per person

    async def go() -> dict[str, Any]:
        pipeline = Pipeline(redis_url)
        await asyncio.gather(
            *(pipeline.one(*order(i, email=f"p{i}@example.com")) for i in range(1, n + 1))
        )
        # Each identify links a person to the next; all of them, twice, at the same time.
        links = [
            identify(100 + i, email=f"p{i}@example.com", email_sha256=_sha(f"p{i + 1}@example.com"))
            for i in range(1, n)
        ]
        await asyncio.gather(*(pipeline.one(*link) for link in links + links))
        answers = [await pipeline.answer("email", f"p{i}@example.com") for i in range(1, n + 1)]
        await pipeline.client.aclose()
        return {
            "persons": len({a["person_id"] for a in answers}),
            "orders": {a["orders_count"] for a in answers},
        }

    result = asyncio.run(go())
    assert result == {"persons": 1, "orders": {n}}


def _sha(email: str) -> str:
    import hashlib

    return hashlib.sha256(email.encode()).hexdigest()


def test_erasure_removes_every_key_of_the_person(redis_url: str) -> None:
    other_order = order(9, email="other@example.com")

    async def go() -> tuple[set[str], set[str], dict[str, Any], dict[str, Any]]:
        pipeline = Pipeline(redis_url)
        await pipeline.feed([*SCENARIO, other_order])
        await pipeline.one(
            "customer",
            {
                "type": "erasure_requested",
                "event_id": "st-er",
                "event_time": "2026-11-20T10:00:00Z",
                "identifiers": {"email": "b@example.com"},
            },
        )
        after = await pipeline.keys_of_prefix()
        erased = await pipeline.answer("anonymous_id", "ck-1")
        other = await pipeline.answer("email", "other@example.com")
        # The same secret gives the same keys: a Redis that only ever saw the other person.
        only_other = Pipeline(redis_url)
        await only_other.feed([other_order])
        expected = await only_other.keys_of_prefix()
        for p in (pipeline, only_other):
            await p.client.aclose()

        def strip(keys: list[str], prefix: str) -> set[str]:
            # Dedupe markers hold only a person id and an event id, and expire with their TTL;
            # tombstones hold an erasure time under an identifier's keyed hash.
            return {k.removeprefix(prefix) for k in keys if ":d:" not in k and ":{g}:t:" not in k}

        tombstones.extend(k for k in after if ":{g}:t:" in k)
        return (
            strip(after, pipeline.keys.prefix),
            strip(expected, only_other.keys.prefix),
            erased,
            other,
        )

    tombstones: list[str] = []
    after, expected, erased, other = asyncio.run(go())
    # One tombstone per identifier the person had (e-mail, cookie, order id, ...).
    assert len(tombstones) >= 3
    assert erased["known"] is False
    assert other["known"] is True
    assert other["orders_count"] == 1
    assert after == expected


def test_no_raw_identifier_is_stored(redis_url: str) -> None:
    async def go() -> list[bytes]:
        pipeline = Pipeline(redis_url)
        await pipeline.feed(SCENARIO)
        dump = []
        for key in await pipeline.keys_of_prefix():
            kind = await pipeline.client.type(key)
            dump.append(key.encode())
            if kind == b"string":
                dump.append(await pipeline.client.get(key) or b"")
            elif kind == b"hash":
                dump.extend(
                    v for pair in (await pipeline.client.hgetall(key)).items() for v in pair
                )
            elif kind == b"set":
                dump.extend(await pipeline.client.smembers(key))
            elif kind == b"list":
                dump.extend(await pipeline.client.lrange(key, 0, -1))
        await pipeline.client.aclose()
        return dump

    blob = b"\n".join(asyncio.run(go())).lower()
    for raw in (b"a@example.com", b"b@example.com", b"11112222", b"ck-1", b"example"):
        assert raw not in blob


def _visit(n: int, day: str, customer: str, cookie: str = "laptop") -> tuple[str, dict[str, Any]]:
    """A signed-in page view on a browser."""
    event = {"type": "page_view", "event_id": f"sh-{n}", "event_time": f"2026-11-{day}Z"}
    return ("clickstream", event | {"anonymous_id": cookie, "customer_id": customer})


def test_erasing_a_cookies_former_holder_takes_it_out_of_the_cookies_claims(
    redis_url: str,
) -> None:
    """The mother signed in on the laptop first, her son after: erasing the mother removes
    her from the laptop cookie's claims too; the cookie still answers for the son."""

    async def go() -> list[Any]:
        pipeline = Pipeline(redis_url)
        try:
            await pipeline.feed([_visit(1, "01T10:00:00", "K-MOTHER"),
                                 _visit(2, "02T10:00:00", "K-SON")])  # fmt: skip
            mother = await pipeline.answer("customer_id", "K-MOTHER")
            son_id = str((await pipeline.answer("customer_id", "K-SON"))["person_id"])
            cookie = next(t for t in await pipeline.graph.identifiers_of(son_id) if t[0] == "a")
            claims_key = pipeline.keys.claims(cookie)
            before = await pipeline.client.lrange(claims_key, 0, -1)
            erasure = {"type": "erasure_requested", "event_id": "sh-x",
                       "event_time": "2026-11-05T10:00:00Z",
                       "identifiers": {"customer_id": "K-MOTHER"}}  # fmt: skip
            await pipeline.one("customer", erasure)
            after = await pipeline.client.lrange(claims_key, 0, -1)
            return [mother, before, after, await pipeline.answer("anonymous_id", "laptop"),
                    await pipeline.answer("customer_id", "K-MOTHER"),
                    await pipeline.answer("customer_id", "K-SON")]  # fmt: skip
        finally:
            await pipeline.client.aclose()

    mother, before, after, laptop, gone, son = asyncio.run(go())
    held = [entry.decode().split(":", 1)[1] for entry in before]
    assert held == [mother["person_id"], son["person_id"]]  # by claim time: mother, then son
    assert [entry.decode().split(":", 1)[1] for entry in after] == [son["person_id"]]
    assert not gone["known"]
    assert laptop["person_id"] == son["person_id"]


@pytest.mark.parametrize("engine", ["python", "native"])
def test_a_shared_cookie_answers_for_who_signed_in_on_it_last(redis_url: str, engine: str) -> None:
    """A family laptop: the mother signs in, then her son. Nobody merges; the cookie answers
    for the son, the mother keeps her history, and both explain logs show the move. A late
    event of the mother (older than the son's sign-in) leaves it with him; her next sign-in
    takes it back. Both resolvers and folds."""
    if engine == "native":
        pytest.importorskip("bestand_native", reason="the compiled core is built by make install")

    async def go() -> list[Any]:
        pipeline = Pipeline(redis_url)
        pipeline.settings = pipeline.settings.model_copy(update={"fold": engine, "resolve": engine})
        pipeline.processor = processor_for(pipeline.settings, pipeline.client, WorkerMetrics())
        pipeline.graph, pipeline.profiles = pipeline.processor.graph, pipeline.processor.profiles
        assert pipeline.graph.native == (engine == "native")
        try:
            await pipeline.feed([_visit(1, "01T10:00:00", "K-MOTHER"),
                                 _visit(2, "02T10:00:00", "K-SON")])  # fmt: skip
            mother = await pipeline.answer("customer_id", "K-MOTHER")
            son = await pipeline.answer("customer_id", "K-SON")
            after_son = await pipeline.answer("anonymous_id", "laptop")
            mother_ids = await pipeline.graph.identifiers_of(str(mother["person_id"]))
            son_ids = await pipeline.graph.identifiers_of(str(son["person_id"]))
            mother_log = await pipeline.graph.explain(str(mother["person_id"]))
            son_log = await pipeline.graph.explain(str(son["person_id"]))
            api = create_api(pipeline.settings, pipeline.client)
            shown = PersonExplanation.model_validate(
                await api.service.explain(str(mother["person_id"]))
            )
            state = await pipeline.profiles.load(str(mother["person_id"]))
            await pipeline.feed([_visit(3, "01T12:00:00", "K-MOTHER")])  # late: yesterday's
            after_late = await pipeline.answer("anonymous_id", "laptop")
            await pipeline.feed([_visit(4, "03T09:00:00", "K-MOTHER")])
            after_mother = await pipeline.answer("anonymous_id", "laptop")
            return [mother, son, after_son, mother_ids, son_ids, mother_log, son_log, state,
                    after_late, after_mother, shown]  # fmt: skip
        finally:
            await pipeline.client.aclose()

    (mother, son, after_son, mother_ids, son_ids, mother_log, son_log, state, after_late,
     after_mother, shown) = asyncio.run(go())  # fmt: skip
    assert mother["known"]
    assert son["known"]
    assert mother["person_id"] != son["person_id"]  # nobody merged
    assert after_son["person_id"] == son["person_id"]
    cookie = next(t for t in son_ids if t.startswith("a:"))
    assert cookie not in mother_ids  # the mother keeps the rest: her customer id
    assert [t[0] for t in mother_ids] == ["c"]
    assert state is not None
    assert cookie not in state.ids
    moves = [[e for e in log.history if e["k"] == "move"] for log in (son_log, mother_log)]
    assert moves[0] == moves[1]
    assert len(moves[0]) == 1
    assert moves[0][0]["t"] == [cookie]
    assert moves[0][0]["o"] == mother["person_id"]
    assert moves[0][0]["r"] == "anonymous_id moves to the person identified on it"
    moved = [e for e in shown.history if e.what == "move"]  # the API shows it too
    assert [(e.other_person, e.identifiers[0].kind) for e in moved] == [
        (mother["person_id"], "anonymous_id")
    ]
    assert after_late["person_id"] == son["person_id"]  # a late event does not move it back
    assert after_mother["person_id"] == mother["person_id"]  # her next sign-in does


def test_a_shop_dummy_email_becomes_junk_and_names_nobody(redis_url: str) -> None:
    """Store staff type the branch's address for walk-ins: four people, four names."""
    walk_ins = [("Emma", "Müller"), ("Silke", "Meyer"), ("Ruben", "Bakker"), ("Soren", "Meier")]

    async def go() -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        pipeline = Pipeline(redis_url)
        for n, (first, last) in enumerate(walk_ins, start=40):
            await pipeline.one(
                *order(n, email="filiale.nord@meinshop.de", first_name=first, last_name=last)
            )
        dummy = await pipeline.answer("email", "filiale.nord@meinshop.de")
        persons = [await pipeline.answer("order_id", f"st-o{n}") for n in range(40, 44)]
        history: list[dict[str, Any]] = []
        for answer in persons:
            found = await pipeline.graph.explain(str(answer["person_id"]))
            history += found.history if found else []
        await pipeline.client.aclose()
        return dummy, persons, history

    dummy, persons, history = asyncio.run(go())
    assert len({p["person_id"] for p in persons}) == 4  # four people, never merged
    assert all(p["existing_customer"] for p in persons)
    assert dummy["known"] is False  # the dummy's lookup record went with its junk flag
    junk = [e for e in history if e["k"] == "junk"]
    assert junk
    assert junk[0]["r"] == "email joined 4 persons (limit 3)"
    refused = [e for e in history if e["k"] == "refused"]
    assert any(e["r"] == "names differ: shared with another person" for e in refused)


def test_an_event_whose_only_identifier_became_junk_is_dead_lettered(redis_url: str) -> None:
    """A kiosk's cookie, used by six customers (limit 5), names nobody; a visit by it alone
    is kept in the dead-letter topic with the reason instead of being pinned on one of them."""

    def view_event(n: int, customer: str | None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": "page_view",
            "event_id": f"ki-{n}",
            "event_time": f"2026-10-{n:02d}T10:00:00Z",
            "anonymous_id": "kiosk-cookie",
        }
        if customer:
            event["customer_id"] = customer
        return event

    async def go() -> list[Any]:
        pipeline = Pipeline(redis_url)
        for n, customer in enumerate(["K-1", "K-2", "K-3", "K-4", "K-5", "K-6"], start=1):
            await pipeline.one("clickstream", view_event(n, customer))
        topic = pipeline.settings.topic_clickstream
        out = await pipeline.processor.process(
            [Incoming(topic, 0, 99, None, orjson.dumps(view_event(9, None)))]
        )
        await pipeline.client.aclose()
        return out

    (letter,) = asyncio.run(go())
    assert letter.destination == "dlq"
    record = orjson.loads(letter.value)
    assert record["reason"] == "unattributable"
    assert record["offset"] == 99


@pytest.mark.parametrize("meanwhile", ["merge", "junk"])
def test_a_decision_is_not_applied_when_its_person_changed_since_the_read(
    redis_url: str, meanwhile: str
) -> None:
    """One worker reads the graph and decides; another merges the person the decision was
    made on, or flags the identifier it met that person through as junk; the first one's
    write stops there, and the event is decided again on what the graph holds now."""
    from bestand.store.identity_graph import Resolution

    def event(n: int, *tokens: str) -> Resolution:
        return Resolution(tokens, f"P{n}", f"ev-{n}", 1_780_000_000 + n)

    async def go() -> tuple[int, Any, Any]:
        pipeline = Pipeline(redis_url)
        graph = pipeline.graph
        await graph.resolve_batch([event(1, "e:one", "a:cookie"), event(2, "e:two")])
        # A new e-mail seen with P1's cookie: a person of its own that met P1's cookie.
        stale = [event(3, "a:cookie", "e:three")]
        _, plans = graph._decide_all(stale, await graph._read(stale))
        assert plans, "the decision writes something"
        if meanwhile == "merge":
            await graph.resolve_batch([event(4, "e:one", "e:two")])
        else:  # the cookie meets a sixth person (limit 5): junk, and P1 no longer owns it
            await graph.resolve_batch([event(n, "a:cookie", f"e:{n}") for n in range(4, 9)])
        applied = await graph._apply(plans, "stale")
        again = await graph.resolve_batch(stale)
        tokens = ["e:one", "e:two", "e:three", "a:cookie"]
        now = (await graph._read([event(9, *tokens)])).overlay.view(tokens)
        await pipeline.client.aclose()
        return applied, again[0], now

    applied, again, now = asyncio.run(go())
    assert applied == 0
    decision, seen = again
    if meanwhile == "merge":
        assert seen.versions == {"P1": 2}  # decided on the merged person
        assert now.owners["e:two"] == "P1"
        # The new e-mail signed in on the cookie after P1 did: it answers for P3 now.
        assert decision.moved == (("a:cookie", "P1"),)
        assert now.owners["a:cookie"] == "P3"
    else:
        assert "a:cookie" in seen.junk
        assert "a:cookie" in now.junk
        assert "a:cookie" not in now.owners
    assert decision.person == now.owners["e:three"] == "P3"


def test_a_checked_lookup_record_never_replaces_a_newer_one(redis_url: str) -> None:
    """Records written again without a compare-and-set (restoring what a dead try lost) are
    checked against the version the packed record holds: an older one leaves it be."""
    from bestand.profile.summary import LookupSummary
    from bestand.store.scripts import Scripts

    pipeline = Pipeline(redis_url)
    scripts = Scripts.load()
    keys = pipeline.keys
    token = "e:checked"

    async def write(version: int, checked: bool, orders: int) -> LookupSummary:
        record = LookupSummary("P1", version, orders, None, None, {}).packed()
        group = {"guard": [], "write": [], "absorbed": [], "markers": [], "unlink": [],
                 "values": [], "lookups": [[version, int(checked), 5, [token]]]}  # fmt: skip
        args = [keys.person_schema, 60, 1, orjson.dumps(group), record]
        assert await scripts.call(
            pipeline.client, scripts.persons_write, [keys.lookup(token)], args
        ) == [1]
        stored = await pipeline.client.hget(*keys.lookup_entry(token))
        return LookupSummary.from_packed(stored)

    async def run() -> list[tuple[int, int]]:
        try:
            seen = []
            for version, checked, orders in [
                (5, False, 1),
                (3, True, 9),
                (5, True, 9),
                (7, True, 2),
                (4, False, 3),
            ]:
                summary = await write(version, checked, orders)
                seen.append((summary.version, summary.orders_count))
            return seen
        finally:
            await pipeline.client.delete(keys.lookup(token))
            await pipeline.client.aclose()

    # A checked write lands only over an older version; an unchecked one always does.
    assert asyncio.run(run()) == [(5, 1), (5, 1), (5, 1), (7, 2), (4, 3)]


def test_an_order_id_is_answered_through_the_graph_and_its_persons_state(
    redis_url: str,
) -> None:
    """Order ids have no lookup records: the graph names the order's person, whose state
    answers once it holds the order, after a merge the survivor's; in bulk as alone."""

    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
        pipeline = Pipeline(redis_url)
        try:
            before = [await pipeline.answer("order_id", "st-o60")]
            await pipeline.one(*order(60, email="first@example.com"))
            await pipeline.one(*order(61, phone="+49 151 27384915"))
            before.append(await pipeline.answer("order_id", "st-o60"))
            # The same person gives both: the two persons merge, both orders answer alike.
            await pipeline.one(*identify(62, email="first@example.com", phone="0151 27384915"))
            from bestand.api import create_api

            api = create_api(pipeline.settings, pipeline.client)
            after = await api.service.lookup_many(
                [("order_id", "st-o60"), ("email", "first@example.com"), ("order_id", " st-o61 ")]
            )
            records = await _lookup_tokens(pipeline)
            await pipeline.client.delete(*await pipeline.keys_of_prefix())
            return before, [a["answer"] for a in after], records
        finally:
            await pipeline.client.aclose()

    before, after, records = asyncio.run(go())
    assert before[0]["known"] is False
    assert before[1]["orders_count"] == 1
    assert before[1]["existing_customer"] is True
    assert [a["orders_count"] for a in after] == [2, 2, 2]
    assert len({a["person_id"] for a in after}) == 1
    assert not [t for t in records if t.startswith("o:")]  # no record under an order id
    assert [t for t in records if t.startswith("e:")]  # the e-mail has one


@pytest.mark.parametrize("fold", ["python", "native"])
def test_the_store_counts_what_its_writes_put_into_redis(redis_url: str, fold: str) -> None:
    """``bestand_store_writes_total``: a state per person written, a lookup record per
    identifier of a person whose answer changed, a marker per applied event. A redelivered
    event is not applied again; its person's records are sent again (the try that applied it
    may have died before they were written), kept only where Redis holds an older one."""
    if fold == "native":
        pytest.importorskip("bestand_native", reason="the compiled fold is built by make install")

    async def scenario() -> tuple[dict[str, float], dict[str, int]]:
        p = Pipeline(redis_url)
        p.settings = p.settings.model_copy(update={"fold": fold, "resolve": "python"})
        p.processor = processor_for(p.settings, p.client, WorkerMetrics())
        assert p.processor.profiles.native == (fold == "native")
        try:
            batch = [
                order(1, email="a@example.com"),
                order(2, email="b@x.example", phone="0151 11112222"),
            ]
            topic = p.settings.topic_orders
            await p.processor.process(
                [Incoming(topic, 0, n, None, orjson.dumps(e)) for n, (_, e) in enumerate(batch)]
            )
            keys = await p.keys_of_prefix()
            in_redis = {
                "lookup_record": len(await _lookup_tokens(p)),
                "dedupe_marker": sum(1 for k in keys if ":d:" in k),
            }
            # A's second order changes A's answer: its e-mail's record again; then a redelivery
            # of that order: no state, no marker, the record sent again.
            again = order(3, email="a@example.com")
            await p.one(*again, offset=2)
            await p.one(*again, offset=2)
            registry = p.processor.metrics.registry
            counted = {
                what: registry.get_sample_value("bestand_store_writes_total", {"what": what}) or 0.0
                for what in ("person_state", "lookup_record", "dedupe_marker")
            }
            return counted, in_redis
        finally:
            for key in await p.keys_of_prefix():
                await p.client.delete(key)
            await p.client.aclose()

    counted, in_redis = asyncio.run(scenario())
    assert in_redis == {"lookup_record": 3, "dedupe_marker": 2}
    assert counted == {"person_state": 3, "lookup_record": 5, "dedupe_marker": 3}


#: The buckets a store keeps per identifier (by its hash) and per person (by its id).
_BY_TOKEN, _BY_PERSON = ("i", "l", "m"), ("r", "a", "k")


def _prefixes(pipeline: Pipeline) -> list[tuple[str, str]]:
    g, p = pipeline.keys.graph, pipeline.keys.prefix
    return [(f"{g}:i:", "i"), (f"{p}:l:", "l"), (f"{g}:m:", "m"), (f"{g}:r:", "r"),
            (f"{g}:a:", "a"), (f"{g}:k:", "k")]  # fmt: skip


async def _bucket_fields(pipeline: Pipeline) -> dict[tuple[str, str], bytes]:
    """Every field of the store's buckets but the explain logs': (prefix, its identifier or
    person) -> value; a marked field of a facts or graph bucket (a redirect, absorbed
    persons, meetings) under the prefix of the bucket earlier layouts kept it in."""
    g = pipeline.keys.graph
    marks = {("k", REDIRECT_FIELD): ("r", f"{g}:r:"), ("k", ABSORBED_FIELD): ("a", f"{g}:a:"),
             ("k", LOG_FIELD): None, ("i", MET_FIELD): ("m", f"{g}:m:")}  # fmt: skip
    out: dict[tuple[str, str], bytes] = {}
    for prefix, letter in _prefixes(pipeline):
        async for key in pipeline.client.scan_iter(match=f"{prefix}*"):
            name = key.decode().removeprefix(prefix)
            assert len(name) <= 3, f"a key of its own: {key!r}"
            for field, value in (await pipeline.client.hgetall(key)).items():
                named, place, kind = field.decode(), prefix, letter
                mark = next((m for b, m in marks if b == letter and named.startswith(m)), None)
                if mark is not None:
                    moved = marks[letter, mark]
                    if moved is None:
                        continue  # an explain log
                    (kind, place), named = moved, named[len(mark) :]
                out[place, token_of(name, named) if kind in _BY_TOKEN else named] = value
    return out


async def _as_layout_4(pipeline: Pipeline) -> None:
    """Turn a store's buckets into the keys layouts 3 and 4 kept: a string or a set (hash of
    member -> '') per identifier or person, a hash of its facts per person, and every explain
    log a list."""
    await unshare_buckets(pipeline.settings)
    client = pipeline.client
    for (prefix, name), value in (await _bucket_fields(pipeline)).items():
        if prefix.endswith(":k:"):
            await client.hset(prefix + name, mapping=dict(facts_pairs(value)))
        elif prefix.endswith((":m:", ":a:")):
            await client.hset(prefix + name, mapping=dict.fromkeys(value.split(b","), ""))
        else:
            await client.set(prefix + name, value)
    for prefix, _ in _prefixes(pipeline):
        for key in [k async for k in client.scan_iter(match=f"{prefix}*")]:
            if len(key.decode().removeprefix(prefix)) <= 3:
                await client.delete(key)
    persons = pipeline.keys.persons
    for key in [k async for k in client.scan_iter(match=f"{persons}*")]:
        for person, value in (await client.hgetall(key)).items():
            went, version, state = person_value(value)
            old = f"{persons}{person.decode()}}}"
            if went is not None:
                await client.hset(old, "r", went)
            else:
                await client.hset(old, mapping={"v": version, "s": state})
        await client.delete(key)
    logs = f"{pipeline.keys.graph}:y:"
    for key in [k async for k in client.scan_iter(match=f"{logs}*")]:
        for person, text in (await client.hgetall(key)).items():
            await client.rpush(pipeline.keys.merge_log(person.decode()), *text.split(b"\x1e"))
        await client.delete(key)


async def _lookup_tokens(pipeline: Pipeline) -> list[str]:
    """The identifiers that have a lookup record (fields of the lookup buckets)."""
    prefix = pipeline.keys.lookups
    return [
        token_of(key.removeprefix(prefix), field.decode())
        for key in await pipeline.keys_of_prefix()
        if key.startswith(prefix)
        for field in await pipeline.client.hkeys(key)
    ]


async def _an_email_token(pipeline: Pipeline) -> str:
    """An e-mail identifier the graph holds (a field of a graph bucket)."""
    for key in await pipeline.keys_of_prefix():
        if key.startswith(pipeline.keys.buckets):
            for field in await pipeline.client.hkeys(key):
                if field.startswith(b"e:"):
                    return token_of(key.removeprefix(pipeline.keys.buckets), field.decode())
    raise AssertionError("the graph holds no e-mail identifier")


def test_a_key_of_another_type_stops_a_script_with_what_to_do(redis_url: str) -> None:
    """A key another layout wrote with another type (here a person's facts as a Redis set)
    stops the script with an instruction to rebuild, not with Redis's bare ``WRONGTYPE``."""

    async def go() -> str:
        pipeline = Pipeline(redis_url)
        try:
            await pipeline.feed([order(1, email="a@example.com")])
            token = await _an_email_token(pipeline)
            person = (await pipeline.graph.person_of(token)) or ""
            facts = pipeline.keys.facts(person)
            await pipeline.client.delete(facts)
            await pipeline.client.sadd(facts, person)
            with pytest.raises(StoreLayoutError) as raised:
                await pipeline.graph.erase([token], 1_780_000_000)
            return str(raised.value)
        finally:
            await pipeline.client.aclose()

    message = asyncio.run(go())
    assert "bestand rebuild" in message
    assert "WRONGTYPE" in message


def test_a_worker_marks_an_empty_store_and_refuses_one_an_earlier_release_wrote(
    redis_url: str,
) -> None:
    async def go() -> tuple[bytes | None, str, str, bytes | None]:
        empty, older, other = Pipeline(redis_url), Pipeline(redis_url), Pipeline(redis_url)
        upgraded = Pipeline(redis_url)
        try:
            # Tombstones are all `bestand rebuild` leaves of an earlier store: not a layout.
            await empty.client.set(empty.keys.tombstone("e:gone"), 1_700_000_000)
            await ensure_layout(empty.client, empty.keys)
            await ensure_layout(empty.client, empty.keys)  # a second worker finds its mark
            mark = await empty.client.get(empty.keys.layout)
            # A graph without a mark: written before layouts were marked.
            await older.feed([order(1, email="a@example.com")])
            with pytest.raises(StoreLayoutError) as unmarked:
                await ensure_layout(older.client, older.keys)
            await other.client.set(other.keys.layout, 2)
            with pytest.raises(StoreLayoutError) as marked:
                await ensure_layout(other.client, other.keys)
            # Layout 3 differs only in its JSON states, which this release still reads: the
            # store is marked as this release's, so that a layout-3 worker refuses it now.
            await upgraded.client.set(upgraded.keys.layout, 3)
            await ensure_layout(upgraded.client, upgraded.keys)
            now = await upgraded.client.get(upgraded.keys.layout)
            return mark, str(unmarked.value), str(marked.value), now
        finally:
            for p in (empty, older, other, upgraded):
                await p.client.aclose()

    mark, unmarked, marked, upgraded = asyncio.run(go())
    assert mark == upgraded == str(LAYOUT).encode()
    assert "no layout mark" in unmarked
    assert "bestand rebuild" in unmarked
    assert "marked layout 2" in marked
    assert "bestand rebuild" in marked


def test_dedupe_markers_of_layout_7_are_renamed_and_still_stop_a_redelivery(
    redis_url: str,
) -> None:
    """Layout 7 named a marker by its person alone (``d:{<person>}:<event>``); taken over, each
    is renamed under its person bucket's tag with its expiry, and the marker is still found:
    the event's id sent again with other content is a dead letter, not applied."""

    async def go() -> tuple[list[str], list[str], list[int], str]:
        pipeline = Pipeline(redis_url)
        try:
            event = identify(1, email="a@example.com", phone="0151 11112222")
            await pipeline.feed([event, order(2, email="a@example.com")])
            head = f"{pipeline.keys.prefix}:d:{{"
            new = [k for k in await pipeline.keys_of_prefix() if k.startswith(head)]
            for key in new:  # back to layout 7's names, with their expiry
                _tag, _, rest = key[len(head) :].partition("}:")
                person, _, event_id = rest.partition(":")
                await pipeline.client.rename(key, f"{head}{person}}}:{event_id}")
            await pipeline.client.set(pipeline.keys.layout, 7)
            await ensure_layout(pipeline.client, pipeline.keys)
            after = [k for k in await pipeline.keys_of_prefix() if k.startswith(head)]
            ttls = [await pipeline.client.ttl(k) for k in after]
            topic = pipeline.settings.topic_customer
            other = {**event[1], "event_time": "2026-10-20T09:00:00Z"}
            again = await pipeline.processor.process(
                [Incoming(topic, 0, 9, None, orjson.dumps(other))]
            )
            return new, after, ttls, orjson.loads(again[0].value)["reason"]
        finally:
            await pipeline.client.aclose()

    new, after, ttls, status = asyncio.run(go())
    assert len(new) == 2
    assert after == new
    assert all(ttl > 0 for ttl in ttls), ttls
    assert status == "duplicate_event_id"


def test_a_layout_8_store_loses_its_value_set_and_keeps_its_persons(redis_url: str) -> None:
    """Layout 8 kept every customer's value in a sorted set; taken over, the set is deleted
    (value bands rank a sample of the states now) and nothing else changes."""

    async def go() -> tuple[list[str], list[str], int, bytes | None]:
        pipeline = Pipeline(redis_url)
        try:
            await pipeline.feed([order(1, email="a@example.com"), order(2, email="b@example.com")])
            before = await pipeline.keys_of_prefix()
            await pipeline.client.zadd(pipeline.keys.values, {"P1": 4990, "P2": 4990})
            await pipeline.client.set(pipeline.keys.layout, 8)
            await ensure_layout(pipeline.client, pipeline.keys)
            after = await pipeline.keys_of_prefix()
            answer = await pipeline.answer("email", "a@example.com")
            return (
                before,
                after,
                answer["orders_count"],
                await pipeline.client.get(pipeline.keys.layout),
            )
        finally:
            await pipeline.client.aclose()

    before, after, orders, mark = asyncio.run(go())
    # The value set went, every other key stayed (and the store got its mark).
    assert [key for key in after if not key.endswith(":layout")] == before
    assert not any(key.endswith(":values") for key in after)
    assert orders == 1
    assert mark == str(LAYOUT).encode()


def test_a_layout_10_store_has_the_counts_taken_out_of_its_facts(redis_url: str) -> None:
    """Layout 10 kept a count per kind letter among a person's facts; taken over, they are
    taken out (the identifiers there give them) and the facts are otherwise as they were."""

    async def go() -> tuple[dict[bytes, bytes], dict[bytes, bytes], dict[bytes, bytes], int]:
        pipeline = Pipeline(redis_url)
        try:
            await pipeline.feed([*SCENARIO, order(7, email="c@example.com")])
            buckets = [
                k async for k in pipeline.client.scan_iter(match=f"{pipeline.keys.graph}:k:*")
            ]
            before = {f: v for b in buckets for f, v in (await pipeline.client.hgetall(b)).items()}
            counted = 0
            for bucket in buckets:
                for person, text in (await pipeline.client.hgetall(bucket)).items():
                    if b":" in person:
                        continue  # a log, a redirect: no facts
                    pairs = facts_pairs(text)
                    kinds = Counter(name[0] for name, value in pairs if len(name) > 1 and not value)
                    with_counts = [*pairs, *((kind, str(n)) for kind, n in kinds.items())]
                    await pipeline.client.hset(bucket, person, packed_facts(with_counts))
                    counted += bool(kinds)
            earlier = {f: v for b in buckets for f, v in (await pipeline.client.hgetall(b)).items()}
            await pipeline.client.set(pipeline.keys.layout, 10)
            await ensure_layout(pipeline.client, pipeline.keys)
            after = {f: v for b in buckets for f, v in (await pipeline.client.hgetall(b)).items()}
            return before, earlier, after, counted
        finally:
            await pipeline.client.aclose()

    before, earlier, after, counted = asyncio.run(go())
    assert counted >= 2  # the scenario's persons had identifiers to count
    assert earlier != before
    assert after == before


def test_a_worker_on_a_store_an_earlier_release_wrote_stops_and_says_so(
    deployment: Deployment,
) -> None:
    client = redis.Redis.from_url(deployment.settings.redis_url)
    try:
        keys = Keys(deployment.settings.redis_prefix)
        client.sadd(f"{keys.graph}:s:P1", "e:x")  # an identifier set, as layout 1 kept them
        process = Process(["worker"], deployment.env, deployment.log_dir / "old-store.log")
        try:
            code = process.popen.wait(timeout=90)
        finally:
            process.stop()
        assert client.get(keys.layout) is None  # nothing was written
    finally:
        client.close()
    assert code == 2, process.log_tail()
    assert "run `bestand rebuild`" in process.log_tail()


def _as_layout_3(state: PersonState) -> bytes:
    """A person state as layout 3 stored it: JSON, short keys, empty parts left out, every
    object's keys sorted."""
    orders = {}
    for oid, o in state.orders.items():
        fields = {"t": o.total_cents, "cu": o.currency, "ch": o.channel, "at": o.at,
                  "x": 1 if o.cancelled else None, "r": o.returns or None, "c": o.cls,
                  "cp": o.campaign, "af": o.affiliate, "co": o.coupon}  # fmt: skip
        orders[oid] = {k: v for k, v in fields.items() if v is not None}
    data: dict[str, Any] = {"v": state.version, "ids": sorted(state.ids), "o": orders or None,
                            "fs": state.first_seen, "ls": state.last_seen,
                            "le": state.last_email_engagement, "em": state.email or None,
                            "cs": {p: [int(g), at] for p, (g, at) in state.consent.items()} or None,
                            "ct": state.contacts or None, "chn": sorted(state.channels) or None,
                            "ab": sorted(state.absorbed) or None, "in": state.interests or None,
                            "rc": [list(e) for e in state.reclassified] or None}  # fmt: skip
    return orjson.dumps(
        {k: v for k, v in data.items() if v is not None}, option=orjson.OPT_SORT_KEYS
    )


def test_a_layout_3_store_goes_on_where_it_stood(redis_url: str) -> None:
    """A store that layout 3 wrote (JSON states, a key per graph entry and lookup record) is
    taken over by a worker: its entries and records moved into buckets, the store marked as
    this release's, its JSON states read as they are and written packed as events change
    them: no rebuild."""

    async def go() -> dict[str, Any]:
        first = Pipeline(redis_url)
        await first.feed([*SCENARIO, order(7, email="c@example.com")])
        before = await first.answer("email", "a@example.com")
        # Layouts 3 and 4 kept a key per identifier or person where this layout keeps a
        # bucket's field, and every explain log as a list.
        entries = await _bucket_fields(first)
        person_a = str(before["person_id"])
        history = (await first.graph.explain(person_a)).history  # type: ignore[union-attr]
        await _as_layout_4(first)
        # Layout 3's states were JSON.
        states = [k async for k in first.client.scan_iter(match=f"{first.keys.persons}*")]
        persons = [key.decode().split("{", 1)[1].rstrip("}") for key in states]
        for key, person in zip(states, persons, strict=True):
            blob = await first.client.hget(key, "s")
            if blob:
                await first.client.hset(key, "s", _as_layout_3(load_state(person, blob)))
        await first.client.set(first.keys.layout, 3)
        await first.client.aclose()
        # A worker of this release starts on it: a processor of its own, nothing cached.
        later = Pipeline(redis_url, prefix=first.keys.prefix)
        await ensure_layout(later.client, later.keys)
        moved = await _bucket_fields(later)
        logs = [k async for k in later.client.scan_iter(match=f"{later.keys.graph}:x:*")]
        read = (await later.graph.explain(person_a)).history  # type: ignore[union-attr]
        api = create_api(later.settings, later.client)
        untouched = await api.service.classification("st-o7")  # read from its JSON state
        # The fold reads a's JSON state; the new phone's link entry goes onto the long log.
        await later.feed([order(6, email="a@example.com", phone="0151 66665555")])
        out = {
            "mark": await later.client.get(later.keys.layout),
            "before": before["orders_count"],
            "after": (await later.answer("email", "a@example.com"))["orders_count"],
            "untouched": untouched,
            "entries": (entries, moved),
            "logs": (history, read, logs),
            "explained": (await later.graph.explain(person_a)).history,  # type: ignore[union-attr]
            "blobs": [
                person_value(value)[2]
                for person in persons
                if (value := await later.client.hget(later.keys.person(person), person))
            ],
            "left": [k async for k in later.client.scan_iter(match=f"{later.keys.persons}?????*")],
        }
        await later.client.aclose()
        return out

    out = asyncio.run(go())
    assert out["mark"] == str(LAYOUT).encode()
    entries, moved = out["entries"]
    kinds = {prefix.rsplit(":", 2)[-2] for prefix, _ in entries}
    # entries, records, meetings, redirects, absorbed persons, graph facts
    assert kinds == {"i", "l", "m", "r", "a", "k"}
    assert moved == entries  # every one back in its bucket, with its value, no key of its own
    history, read, logs = out["logs"]
    assert len(logs) >= 2  # the explain logs stayed lists, read as long ones
    assert read == history
    assert out["explained"][: len(history)] == history
    assert len(out["explained"]) > len(history)  # the new phone's entry, appended to the list
    assert out["after"] == out["before"] + 1
    assert out["untouched"] is not None
    assert (out["untouched"]["classification"], out["untouched"]["orders_before"]) == ("new", 0)
    blobs = [b for b in out["blobs"] if b]  # merged-away persons: a redirect, no state
    assert sorted(b[:1] for b in blobs) == [bytes([PACKED]), b"{"]  # a's packed, c's JSON
    assert len(out["blobs"]) > len(blobs)  # and the redirects moved too
    assert out["left"] == []  # no person keeps a hash of its own


def test_an_explain_log_outgrows_its_bucket_field_and_stays_whole(redis_url: str) -> None:
    """A short log is a field of its log bucket; one that grows past ``LOG_INLINE`` bytes
    becomes a list with every entry in order, read the same; an erasure removes either."""

    async def go() -> dict[str, Any]:
        pipeline = Pipeline(redis_url)
        k = pipeline.keys
        try:
            await pipeline.one(*order(80, email="long@example.com"))
            person = str((await pipeline.answer("email", "long@example.com"))["person_id"])
            bucket, field = k.log_entry(person)
            first = await pipeline.client.hget(bucket, field)
            short = await pipeline.graph.explain(person)
            # Entries of earlier events, as many as the field holds, then one event more.
            filler: list[str] = []
            text = first.decode()
            while len(text) < LOG_INLINE - 50:  # the next link entry takes it past
                filler.append(f"r\x1f{1_780_000_000 + len(filler)}\x1fold-{len(filler)}"
                              "\x1fnames differ\x1fe:x\x1fP\x1fe:y")  # fmt: skip
                text = "\x1e".join([first.decode(), *filler])
            await pipeline.client.hset(bucket, field, text)
            await pipeline.one(*order(81, email="long@example.com", phone="0151 81818181"))
            long = await pipeline.graph.explain(person)
            state = {
                "field": await pipeline.client.hget(bucket, field),
                "list": await pipeline.client.llen(k.merge_log(person)),
            }
            await pipeline.graph.erase([next(iter(long.identifiers))], 1_790_000_000)
            left = {
                "field": await pipeline.client.hget(bucket, field),
                "list": await pipeline.client.exists(k.merge_log(person)),
            }
            return {"short": short, "long": long, "state": state, "left": left, "n": len(filler)}
        finally:
            await pipeline.client.delete(*await pipeline.keys_of_prefix())
            await pipeline.client.aclose()

    out = asyncio.run(go())
    short, long = out["short"].history, out["long"].history
    assert [e["k"] for e in short] == ["new"]
    assert long[0] == short[0]
    assert [e["e"] for e in long[1 : 1 + out["n"]]] == [f"old-{n}" for n in range(out["n"])]
    assert long[-1]["e"] == "st-81"  # the new phone's link, after every earlier entry
    assert out["state"] == {"field": None, "list": len(long)}
    assert out["left"] == {"field": None, "list": 0}


def test_an_erasure_after_a_merge_leaves_no_field_naming_either_person(redis_url: str) -> None:
    """Redirects, absorbed persons, meetings and logs are fields of shared buckets: erasing a
    person that absorbed another removes every field that names either of them."""

    async def go() -> tuple[set[str], list[str]]:
        pipeline = Pipeline(redis_url)
        try:
            await pipeline.feed(SCENARIO)  # a and b merge (identify 5)
            survivor = str((await pipeline.answer("email", "a@example.com"))["person_id"])
            facts = await pipeline.graph.explain(survivor)
            assert facts is not None
            absorbed = {e["o"] for e in facts.history if e["k"] == "merge" and e.get("o")}
            erasure = {"type": "erasure_requested", "event_id": "st-er",
                       "event_time": "2026-11-20T10:00:00Z",
                       "identifiers": {"email": "a@example.com"}}  # fmt: skip
            await pipeline.feed([("customer", erasure)])
            found: list[str] = []
            for key in await pipeline.keys_of_prefix():
                if ":d:" in key:
                    continue  # dedupe markers expire by themselves
                kind = await pipeline.client.type(key)
                texts = [key.encode()]
                if kind == b"hash":
                    pairs = (await pipeline.client.hgetall(key)).items()
                    texts += [t for pair in pairs for t in pair]
                elif kind == b"string":
                    texts.append(await pipeline.client.get(key) or b"")
                elif kind == b"list":
                    texts += await pipeline.client.lrange(key, 0, -1)
                found += [key for p in {survivor, *absorbed} for t in texts if p.encode() in t]
            return {survivor, *absorbed}, found
        finally:
            await pipeline.client.delete(*await pipeline.keys_of_prefix())
            await pipeline.client.aclose()

    persons, found = asyncio.run(go())
    assert len(persons) >= 2  # the survivor and the persons it absorbed
    assert found == []
