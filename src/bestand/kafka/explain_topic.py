"""The explain topic: the links and new persons of every person's explain log, out of Redis.

A person's explain log was the largest part of it in Redis, and three quarters of the log
were the entries that say when each identifier joined it (``link``) and how it began
(``new``). Those go to a compacted Kafka topic (``BESTAND_TOPIC_EXPLAIN``); merges, moves,
refusals and junk flags stay in Redis, where later merges, moves and erasures read them.

- **Key** ``<person>/<event>`` (an event id longer than 64 characters as its digest,
  ``keys.event_key``), **value** the event's entries for that person as the graph's log
  stores them (``identity/entries.py``), joined by ``\\x1e``. A person's messages share the
  partition its id picks (the producer's default partitioner on the person id), so one
  person's history is one partition's to read.
- **Sent before the graph write** that links the identifiers (``IdentityGraph``'s link sink):
  a worker that dies between the two sends the same key again when the batch comes back; a
  write that stops at a guard has its events decided again, and a key that is not sent
  again is taken back with a tombstone.
- **Erasure** sends the marker ``<person>`` → ``erased`` for the erased person and each it
  absorbed: readers leave those persons out at once. ``bestand explain-prune`` (a daily
  job) sends tombstones for every key of a marked person and for the marker, and Kafka's
  compaction then removes them from the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from bestand.identity.entries import LOG_SEP
from bestand.kafka.batches import KeyPartitions, send_batched
from bestand.kafka.options import client_options
from bestand.kafka.topics import partitions_of
from bestand.settings import Settings
from bestand.store.explain_log import Links
from bestand.store.keys import event_key
from bestand.stream.retry import with_backoff

log = logging.getLogger(__name__)

#: The value of an erased person's marker (its key is the person id alone).
ERASED = b"erased"
_KEY_SEP = "/"


def topic_key(person: str, event_id: str) -> bytes:
    """The key of a person's entries of one event."""
    return f"{person}{_KEY_SEP}{event_key(event_id)}".encode()


def partition_of(person: str, partitions: Sequence[int]) -> int:
    """The partition a person's messages go to (``partitions``: all of the topic's, sorted),
    as the producer's default partitioner picks it for the key ``person``."""
    return partitions[(int(murmur2(person.encode())) & 0x7FFFFFFF) % len(partitions)]


class ExplainTopic:
    """The graph's link sink: sends a round's links (and takes back stale ones) to the
    explain topic, and returns once Kafka has them."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        settings: Settings,
        sent: Callable[[int], None] | None = None,
    ) -> None:
        self._producer = producer
        self._topic = settings.topic_explain
        self._partitions = KeyPartitions()
        self._sent = sent

    async def __call__(self, links: Sequence[Links], taken_back: Sequence[Links]) -> None:
        messages: list[tuple[str, bytes | None, bytes | None]] = [
            (self._topic, topic_key(x.person, x.event_id), LOG_SEP.join(x.entries).encode())
            for x in links
        ]
        messages += [(self._topic, topic_key(x.person, x.event_id), None) for x in taken_back]
        routes: list[bytes | None] = [x.person.encode() for x in (*links, *taken_back)]

        async def send() -> None:
            await send_batched(self._producer, messages, self._partitions, routes)

        await with_backoff(send, what="sending explain entries", retryable=(KafkaError, OSError))
        if self._sent is not None:
            self._sent(len(messages))


def erased_markers(persons: Sequence[str]) -> list[tuple[bytes, bytes, bytes]]:
    """(key, value, route) of the markers that hide erased persons' entries from readers."""
    return [(person.encode(), ERASED, person.encode()) for person in persons]


@dataclass
class TopicHistory:
    """What the explain topic holds for some persons: entries by person, in the order they
    were sent; ``complete`` is False when the read ran out of time or the topic is away."""

    entries: dict[str, list[str]] = field(default_factory=dict)
    complete: bool = True


async def _reader(
    settings: Settings, found: Sequence[TopicPartition] | None = None
) -> tuple[AIOKafkaConsumer, list[int]]:
    """A started consumer outside any group, and the explain topic's partitions (sorted;
    none when it does not exist; ``found``: as :func:`partitions_of` gave them)."""
    if found is None:
        found = await partitions_of(settings, [settings.topic_explain])
    partitions = [tp.partition for tp in found]
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    # aiokafka's consumer without a group starts a task at start() that stop() cancels and
    # awaits: cancelled before its first step, that await raises CancelledError. One turn of
    # the event loop lets it begin.
    await asyncio.sleep(0)
    return consumer, partitions


async def _scan(
    consumer: AIOKafkaConsumer,
    parts: Sequence[TopicPartition],
    take: Callable[[bytes, bytes | None], None],
    deadline: float | None = None,
) -> bool:
    """Hand every record of ``parts`` up to their end offsets now to ``take(key, value)``;
    False if the deadline came first."""
    if not parts:
        return True
    consumer.assign(list(parts))
    ends = await consumer.end_offsets(list(parts))
    todo = {tp for tp in parts if ends[tp] > 0}
    await consumer.seek_to_beginning(*todo)
    loop = asyncio.get_running_loop()
    while todo:
        if deadline is not None and loop.time() > deadline:
            return False
        fetched = await consumer.getmany(*todo, timeout_ms=200)
        for tp, records in fetched.items():
            for record in records:
                if record.offset < ends[tp] and record.key is not None:
                    take(record.key, record.value)
        for tp in list(todo):
            if await consumer.position(tp) >= ends[tp]:
                todo.discard(tp)
    return True


async def read_history(
    settings: Settings, persons: Sequence[str], seconds: float | None = None
) -> TopicHistory:
    """The explain topic's entries of ``persons`` (a person and those it absorbed), read
    from their partitions; erased persons have none."""
    wanted = set(persons)
    latest: dict[bytes, bytes] = {}
    erased: set[str] = set()

    def take(key: bytes, value: bytes | None) -> None:
        text = key.decode("utf-8", "replace")
        person, sep, _ = text.partition(_KEY_SEP)
        if person not in wanted:
            return
        if not sep:
            if value == ERASED:
                erased.add(person)
        elif value is None:
            latest.pop(key, None)
        else:
            latest[key] = value

    history = TopicHistory()
    try:
        found = await partitions_of(settings, [settings.topic_explain])
        if not found:  # no topic yet: nothing sent to it
            return history
        consumer, partitions = await _reader(settings, found)
    except (KafkaError, OSError) as exc:
        log.warning("the explain topic cannot be read: %s", exc)
        return TopicHistory(complete=False)
    try:
        if partitions:
            chosen = sorted({partition_of(p, partitions) for p in wanted})
            parts = [TopicPartition(settings.topic_explain, p) for p in chosen]
            limit = seconds if seconds is not None else settings.explain_read_seconds
            deadline = asyncio.get_running_loop().time() + limit
            history.complete = await _scan(consumer, parts, take, deadline)
    except (KafkaError, OSError) as exc:
        log.warning("reading the explain topic: %s", exc)
        history.complete = False
    finally:
        await consumer.stop()
    for key, value in latest.items():
        person = key.decode().partition(_KEY_SEP)[0]
        if person not in erased:
            history.entries.setdefault(person, []).extend(value.decode().split(LOG_SEP))
    return history


@dataclass
class Pruned:
    """What one pass of :func:`prune_erased` found and took away."""

    partitions: int = 0
    records: int = 0
    erased: int = 0
    tombstones: int = 0


async def _prune_partition(
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, tp: TopicPartition
) -> tuple[int, int, int]:
    """One partition's prune: (records read, erased persons, tombstones sent)."""
    erased: set[str] = set()
    live: dict[bytes, bool] = {}
    seen = 0

    def markers(key: bytes, value: bytes | None) -> None:
        nonlocal seen
        seen += 1
        if value == ERASED and _KEY_SEP.encode() not in key:
            erased.add(key.decode("utf-8", "replace"))

    def keys(key: bytes, value: bytes | None) -> None:
        if key.decode("utf-8", "replace").partition(_KEY_SEP)[0] in erased:
            live[key] = value is not None

    await _scan(consumer, [tp], markers)
    if erased:
        await _scan(consumer, [tp], keys)
    doomed = [key for key, alive in live.items() if alive]
    if doomed:
        messages: list[tuple[str, bytes | None, bytes | None]] = [
            (tp.topic, key, None) for key in doomed
        ]
        routes: list[bytes | None] = [key.split(_KEY_SEP.encode())[0] for key in doomed]
        await send_batched(producer, messages, KeyPartitions(), routes)
    return seen, len(erased), len(doomed)


async def prune_erased(settings: Settings, progress: Callable[[str], None] | None = None) -> Pruned:
    """Send tombstones for every entry of an erased person, and for its marker, partition by
    partition (two reads of each: the markers, then the keys they name); compaction then
    removes them from the log."""
    pruned = Pruned()
    consumer, partitions = await _reader(settings)
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        for partition in partitions:
            tp = TopicPartition(settings.topic_explain, partition)
            seen, erased, sent = await _prune_partition(consumer, producer, tp)
            pruned.partitions += 1
            pruned.records += seen
            pruned.erased += erased
            pruned.tombstones += sent
            if progress is not None:
                progress(
                    f"partition {partition}: {seen:,} records, {erased:,} erased persons, "
                    f"{sent:,} tombstones"
                )
    finally:
        await producer.stop()
        await consumer.stop()
    return pruned
