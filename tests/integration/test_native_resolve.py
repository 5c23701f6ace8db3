"""The compiled resolver decides and writes what the Python one does, byte for byte.

The same stream (a simulated shop with its shared devices, guest checkouts and late logins,
a tenth of it delivered twice, shuffled so that merges join persons late) goes through the
worker's processor once with each resolver. Every key of each prefix must hold the same bytes
(identifier owners, facts with their identifiers, explain logs, met sets, redirects, receipts, and
the person state that follows from them), and the messages sent must be the same. Junk,
refusals and erasures are compared on hand-made batches, and a write that meets a graph
another worker changed is decided again on what the graph holds then.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from typing import Any

import pytest
from support import run

from bestand.identity.entries import LOG_SEP
from bestand.settings import Settings
from bestand.store import Keys, connect
from bestand.store.explain_log import Links
from bestand.store.identity_graph import DECIDED, IdentityGraph, Resolution
from bestand.store.scripts import Scripts
from stages import clear, raw_messages, redis_state, sent, shuffled_shop, two_passes, worker_pass

pytest.importorskip("bestand_native", reason="the compiled resolver is built by make install")

_SCRIPT_NAMES = ("graph_read", "graph_apply", "erase", "persons_read", "persons_write")


@pytest.mark.parametrize(("persons", "seed", "batch"), [(150, 3, 97), (60, 8, 1), (300, 12, 500)])
def test_the_compiled_resolver_writes_what_the_python_resolver_writes(
    redis_url: str, persons: int, seed: int, batch: int
) -> None:
    stream = shuffled_shop(persons, seed)
    common: dict[str, Any] = {"_env_file": None, "redis_url": redis_url, "fold": "native"}
    python = Settings(**common, redis_prefix="resolve-py", resolve="python")
    native = Settings(**common, redis_prefix="resolve-rs", resolve="native")
    by_python, by_native, sent_py, sent_rs = run(two_passes(python, native, stream, batch))
    graph = [name for name in by_python if name.startswith(":{g}:")]
    assert len(graph) > 500
    # The shop's merges and their receipts are in the comparison (junk, refusals and
    # erasures: the hand-made test below).
    assert any(name.startswith(":{g}:r:") for name in graph), "no merge"
    assert any(name.startswith(":{g}:e:") for name in graph), "no receipt"
    assert by_python.keys() == by_native.keys()
    different = [name for name in by_python if by_python[name] != by_native[name]]
    assert different == []
    assert sent(sent_py) == sent(sent_rs)
    assert any(m[0] == "changes" for m in sent(sent_py))


@pytest.mark.parametrize("resolve", ["python", "native"])
def test_a_batch_whose_write_meets_a_changed_graph_is_decided_again(
    redis_url: str, resolve: str
) -> None:
    """Between one batch's read and its write another worker merges the person its second
    event was decided on (P2 into P1): the write stops there, and that event and the next
    are read and decided again (with either resolver)."""
    keys = Keys(f"rounds-{resolve}")

    def event(n: int, *tokens: str) -> Resolution:
        return Resolution(tokens, f"P{n}", f"ev-{n}", 1_780_000_000 + n)

    async def go() -> list[Any]:
        client = connect(redis_url)
        scripts = Scripts.load()
        graph = IdentityGraph(client, keys, scripts, resolve="python")
        reads = 0

        class Meddling(Scripts):
            """The scripts, and after the batch's first read P1 and P2 become one."""

            async def pipelined(self, client: Any, build: Any) -> list[Any]:
                return await self.meddle(await super().pipelined(client, build))

            async def send(self, client: Any, commands: Any) -> list[Any]:
                # (the compiled resolver sends calls it packed itself)
                return await self.meddle(await super().send(client, commands))

            async def meddle(self, replies: list[Any]) -> list[Any]:
                nonlocal reads
                reads += 1
                if reads == 1:
                    await graph.resolve_answers([event(9, "e:one", "e:two")])
                return replies

        meddling = Meddling(**{name: getattr(scripts, name) for name in _SCRIPT_NAMES})
        other = IdentityGraph(client, keys, meddling, resolve=resolve)  # type: ignore[arg-type]
        try:
            await graph.resolve_answers([event(1, "e:one", "a:one"), event(2, "e:two")])
            batch = [event(3, "e:three"), event(4, "a:one", "e:four"), event(5, "e:two")]
            answers = await other.resolve_answers(batch)
            owners = [await graph.person_of(t) for t in ("e:three", "e:four", "a:one", "e:two")]
            assert reads == 4, "read, apply (stopped), read again, apply"
            return [answers, owners]
        finally:
            async for key in client.scan_iter(match=keys.pattern()):
                await client.delete(key)
            await client.aclose()

    (answers, owners) = asyncio.run(go())
    assert [a[0] for a in answers] == [DECIDED] * 3
    # A new e-mail with P1's cookie is a person of its own, who uses the cookie now (signed
    # in on it later than P1); e-mail two went to P1 meanwhile.
    assert [a[1] for a in answers] == ["P3", "P4", "P1"]
    assert owners == ["P3", "P4", "P4", "P1"]
    assert answers[1][7] == (("a:one", "P1"),)


def test_answers_and_explain_logs_match_for_hand_made_conflicts(redis_url: str) -> None:
    """Junk at its limit, a refused weak link, a merge, an erasure: both resolvers give the
    same answers and leave the same graph."""

    def event(n: int, *tokens: str) -> Resolution:
        return Resolution(tokens, f"P{n:02d}", f"ev-{n}", 1_780_000_000 + n)

    batches = [
        [event(1, "c:1", "e:a", "a:x"), event(2, "c:2", "e:b", "a:x")],
        [
            event(3, "e:c", "a:x"),
            event(4, "e:d", "a:x"),
            event(5, "e:e", "a:x"),
            event(15, "e:f", "a:x"),
            event(16, "e:g", "a:x"),
        ],
        [event(6, "e:a", "p:1"), event(7, "e:b", "p:1"), event(8, "o:9", "e:a", "m:anna")],
        [event(10, "e:a", "m:bob"), event(11, "a:x"), event(12, "h:home", "e:z")],
    ]

    async def go(resolve: str) -> tuple[list[Any], dict[str, Any]]:
        keys = Keys(f"hand-{resolve}-{secrets.token_hex(3)}")
        client = connect(redis_url)
        graph = IdentityGraph(client, keys, resolve=resolve)  # type: ignore[arg-type]
        try:
            answers = []
            for batch in batches:
                answers += await graph.resolve_answers(batch)
            await graph.erase(["e:e"], 1_780_000_020)
            answers += await graph.resolve_answers([event(13, "e:e"), event(14, "e:e", "a:q")])
            state = {}
            async for raw in client.scan_iter(match=keys.pattern()):
                key = raw.decode()
                kind = await client.type(key)
                name = key[len(keys.prefix) :]
                if kind == b"string":
                    state[name] = await client.get(key)
                elif kind == b"set":
                    state[name] = sorted(await client.smembers(key))
                elif kind == b"list":
                    state[name] = await client.lrange(key, 0, -1)
                else:
                    state[name] = await client.hgetall(key)
            for key in [k async for k in client.scan_iter(match=keys.pattern())]:
                await client.delete(key)
            return answers, state
        finally:
            await client.aclose()

    by_python = asyncio.run(go("python"))
    by_native = asyncio.run(go("native"))
    assert by_python[0] == by_native[0]
    assert by_python[1] == by_native[1]
    statuses = {a[0] for a in by_python[0]}
    assert len(statuses) == 3, "decided, refused and erased answers are all compared"
    assert any(name.startswith(":{g}:j:") for name in by_python[1])


def test_the_compiled_resolver_reads_only_facts_it_does_not_hold(redis_url: str) -> None:
    """A person's graph facts, read or written once, are not sent again while their version
    stands; once another worker changed the person, the next read sends them again, as they
    are now."""
    keys = Keys("held-facts")

    def event(n: int, *tokens: str) -> Resolution:
        return Resolution(tokens, f"P{n}", f"ev-{n}", 1_780_000_000 + n)

    async def go() -> tuple[list[Any], list[str]]:
        client = connect(redis_url)
        scripts = Scripts.load()
        replies: list[str] = []

        class Listening(Scripts):
            """The scripts, keeping the graph reads' replies."""

            async def send(self, client: Any, commands: Any) -> list[Any]:
                got = await super().send(client, commands)
                replies.extend(r.decode() for r in got if isinstance(r, bytes) and b"\x1d" in r)
                return got

        listening = Listening(**{name: getattr(scripts, name) for name in _SCRIPT_NAMES})
        native = IdentityGraph(client, keys, listening, resolve="native")  # type: ignore[arg-type]
        other = IdentityGraph(client, keys, scripts, resolve="python")
        try:
            # P1 is made by the first batch: the second holds its facts as that batch left them.
            answers = [await native.resolve_answers([event(1, "e:one", "a:one")])]
            answers.append(await native.resolve_answers([event(2, "a:one")]))
            answers.append(await other.resolve_answers([event(3, "e:one", "p:new")]))
            answers.append(await native.resolve_answers([event(4, "e:one")]))
            answers.append(await native.resolve_answers([event(5, "a:one", "p:new")]))
            return answers, replies
        finally:
            async for key in client.scan_iter(match=keys.pattern()):
                await client.delete(key)
            await client.aclose()

    answers, replies = asyncio.run(go())
    assert [a[0][1] for a in answers] == ["P1"] * 5
    persons = [reply.split("\x1d")[1] for reply in replies]
    assert len(persons) == 4
    assert persons[0] == ""  # a new person: nothing to read
    assert persons[1] == "P1\x1f="
    # The other worker's phone raised P1's version: its facts come again, with the phone.
    fields = persons[2].split("\x1f")
    assert fields[0] == "P1"
    assert fields[1] != "="
    facts = dict(zip(fields[1::2], fields[2::2], strict=True))
    assert facts["p:new"] == ""  # the phone, among P1's identifiers
    assert [name for name in facts if len(name) == 1] == ["v"]  # no counts (layout 11)
    # Read once more, they are held again.
    assert persons[3] == "P1\x1f="


@pytest.mark.parametrize(("persons", "seed", "batch"), [(150, 3, 97), (300, 12, 500)])
def test_links_leave_the_graph_for_the_topic_whole_and_alike(
    redis_url: str, persons: int, seed: int, batch: int
) -> None:
    """With a link sink (the worker's explain topic) both resolvers hand it the same new
    persons and links, the graph's logs keep only merges, moves, refusals and junk flags, and
    nothing is lost: the logs and the sink together hold every entry the graph alone holds
    without a sink."""
    stream = shuffled_shop(persons, seed)

    async def one(resolve: str, topic: bool) -> tuple[list[Links], list[Links], dict[str, Any]]:
        settings = Settings(_env_file=None, redis_url=redis_url, fold="native",
                            redis_prefix=f"links-{resolve}-{topic}", resolve=resolve)  # fmt: skip
        handed: list[Links] = []
        taken_back: list[Links] = []

        async def sink(links: Sequence[Links], back: Sequence[Links]) -> None:
            handed.extend(links)
            taken_back.extend(back)

        await clear(settings)
        try:
            messages = raw_messages(settings, stream)
            await worker_pass(settings, messages, batch, links=sink if topic else None)
            return handed, taken_back, await redis_state(settings, exact=True)
        finally:
            await clear(settings)

    by_python = run(one("python", True))
    by_native = run(one("native", True))
    _, _, alone = run(one("native", False))
    assert by_python == by_native
    handed, taken_back, state = by_native
    assert taken_back == []  # one writer: no write stopped at another's change
    assert sum(1 for x in handed for e in x.entries if e.startswith("n\x1f")) > persons / 2

    def logged(state: dict[str, Any]) -> list[str]:
        return [
            entry
            for name, (value, _) in state.items()
            if name.startswith((":{g}:y:", ":{g}:x:"))
            for log in (value.values() if isinstance(value, dict) else [LOG_SEP.join(value)])
            for entry in _text(log).split(LOG_SEP)
        ]

    kept = logged(state)
    assert kept, "the shop has merges"
    assert {_text(e)[0] for e in kept} <= {"m", "v", "r", "j", "{"}
    assert sorted(kept + [e for x in handed for e in x.entries]) == sorted(logged(alone))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
