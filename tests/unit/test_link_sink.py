"""The identity graph's link sink: what goes to the explain topic instead of Redis, and what
is taken back when a write stopped at another worker's change and its events decided
otherwise (no server: the decisions and plans are pure)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from bestand.identity.overlay import GraphOverlay
from bestand.store.explain_log import Links
from bestand.store.identity_graph import IdentityGraph, Resolution, _Snapshot
from bestand.store.keys import Keys


def _graph(handed: list[tuple[list[Links], list[Links]]] | None) -> IdentityGraph:
    async def sink(links: Sequence[Links], back: Sequence[Links]) -> None:
        assert handed is not None
        handed.append((list(links), list(back)))

    client = cast(Redis, object())  # never asked: only deciding and planning are used here
    return IdentityGraph(client, Keys("u"), links=None if handed is None else sink)


def _decide(graph: IdentityGraph, *events: Resolution) -> list[Any]:
    overlay = GraphOverlay({}, set(), {}, {}, "")
    snapshot = _Snapshot(overlay, {}, [None] * len(events))
    return graph._decide_all(list(events), snapshot)[1]


def _event(n: int, *tokens: str) -> Resolution:
    return Resolution(tokens, f"P{n}", f"ev-{n}", 1_780_000_000 + n)


EVENTS = (
    _event(1, "e:one", "a:one"),  # a new person
    _event(2, "e:one", "p:two"),  # a phone linked through the e-mail
    _event(3, "p:three", "a:one"),  # a new person the cookie moves to
)


def test_new_persons_and_links_leave_the_plan_for_the_sink() -> None:
    plans = _decide(_graph([]), *EVENTS)
    logs = [[e.split("\x1f")[0] for e in orjson.loads(plan)["log"]] for _, plan, _, _ in plans]
    assert logs == [[], [], ["v"]]  # the move stays in Redis
    links = [link for *_, link in plans]
    assert [(x.person, x.event_id) for x in links] == [
        ("P1", "ev-1"),
        ("P1", "ev-2"),
        ("P3", "ev-3"),
    ]
    assert [[e.split("\x1f")[0] for e in x.entries] for x in links] == [["n"], ["l"], ["n"]]


def test_without_a_sink_the_graph_logs_them() -> None:
    plans = _decide(_graph(None), *EVENTS)
    logs = [[e.split("\x1f")[0] for e in orjson.loads(plan)["log"]] for _, plan, _, _ in plans]
    assert logs == [["n"], ["l"], ["n", "v"]]
    assert [link for *_, link in plans] == [None, None, None]


def test_links_not_sent_again_after_a_stopped_write_are_taken_back() -> None:
    handed: list[tuple[list[Links], list[Links]]] = []
    graph = _graph(handed)
    first = Links("P1", "ev-1", ("n",))
    stale = [first, Links("P2", "ev-2", ("n",))]
    asyncio.run(graph._hand_out([Links("P1", "ev-1", ("n",)), Links("P3", "ev-3", ("l",))], stale))
    sent, back = handed[0]
    assert [x.event_id for x in sent] == ["ev-1", "ev-3"]
    assert back == [Links("P2", "ev-2", ("n",))]  # ev-2 went to another person this round
    asyncio.run(graph._hand_out([], []))
    assert len(handed) == 1  # nothing to send, nothing to take back: the sink is not asked
