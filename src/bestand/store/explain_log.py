"""A person's explain log: what Redis keeps of it, what goes to the explain topic, and how
the graph reads it back.

Redis keeps a person's merges, moves, refusals and junk flags (a field of its facts bucket
while short, a list once longer: ``keys.py``); new persons and links go to the explain topic
(``kafka/explain_topic.py``) through the graph's link sink. The readers here serve
``IdentityGraph.explain`` and the erasure's markers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bestand.identity.entries import LOG_SEP, parse_entry
from bestand.store.keys import Keys, facts_members

#: Explain entries that go to the explain topic, not the graph's logs, where the graph has a
#: link sink: new persons and links, three quarters of a log's bytes (``bench/memory.py``).
#: Merges, moves, refusals and junk flags stay in Redis, where a later merge, move or
#: erasure reads them.
IN_TOPIC = frozenset({"new", "link"})


@dataclass(frozen=True, slots=True)
class Links:
    """A person's explain entries of one event (stored form), for the explain topic."""

    person: str
    event_id: str
    entries: tuple[str, ...]


#: Takes the links of a round's plans before they are applied, and the links of plans that
#: were not applied and whose events were decided again otherwise (to take back); returns
#: once they are durable. A plan that is applied has its links sent first; one that is not
#: applied is decided again, and its links sent again or taken back.
LinkSink = Callable[[Sequence[Links], Sequence[Links]], Awaitable[None]]


def queue_log(pipe: Pipeline, keys: Keys, person_id: str) -> None:
    """Queue the reads of a person's explain log: its field of a log bucket while short, its
    list once longer (``keys.py``); :func:`log_entries` takes the two replies."""
    pipe.hget(*keys.log_entry(person_id))
    pipe.lrange(keys.merge_log(person_id), 0, -1)


def log_entries(short: bytes | str | None, long: Sequence[bytes | str]) -> list[bytes | str]:
    """A person's explain entries from the two replies :func:`queue_log` queued."""
    if short is None:
        return list(long)
    if isinstance(short, bytes):
        return list(short.split(LOG_SEP.encode()))
    return list(short.split(LOG_SEP))


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why identifiers belong to one person: its identifiers and the recorded history."""

    person_id: str
    identifiers: list[str]
    history: list[dict[str, Any]]
    absorbed: list[str] = field(default_factory=list)  # whose links the explain topic holds too


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def read_explanation(client: Redis, keys: Keys, person_id: str) -> Explanation | None:
    """Identifiers and history of a person, or ``None`` when the graph does not know it."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.hget(keys.facts(person_id), person_id)
        queue_log(pipe, keys, person_id)
        pipe.hget(*keys.absorbed_entry(person_id))
        members, short, long, absorbed = await pipe.execute()
    entries = log_entries(short, long)
    identifiers = facts_members(members)
    if not identifiers and not entries:
        return None
    return Explanation(
        person_id=person_id,
        identifiers=sorted(identifiers),
        history=[parse_entry(entry) for entry in entries],
        absorbed=[p for p in _text(absorbed or b"").split(",") if p],
    )


async def read_lineage(client: Redis, keys: Keys, tokens: Sequence[str]) -> list[str]:
    """The persons these identifiers name and every person those absorbed (for the explain
    topic's markers of an erasure)."""
    async with client.pipeline(transaction=False) as pipe:
        for token in tokens:
            pipe.hget(*keys.entry(token))
        owners = [_text(p) for p in await pipe.execute() if p is not None]
    persons = list(dict.fromkeys(owners))
    if not persons:
        return []
    async with client.pipeline(transaction=False) as pipe:
        for person in persons:
            pipe.hget(*keys.absorbed_entry(person))
        absorbed = await pipe.execute()
    gone = [p for value in absorbed if value for p in _text(value).split(",") if p]
    return list(dict.fromkeys([*persons, *gone]))
