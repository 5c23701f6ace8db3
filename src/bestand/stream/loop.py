"""The worker's hot loop: read a batch, handle it, send what it produced, commit it.

A batch goes through four steps, each its own task so that one batch's waiting overlaps
another's work: **read** (``getmany`` up to ``BESTAND_BATCH_MAX_EVENTS`` messages, a share
of every assigned input partition, then decode and key them: CPU only), **resolve** (the
identity graph: one read, one guarded write), **apply** (person state: one read, one
compare-and-set write), **finish** (every output acknowledged by Kafka with ``acks=all``, then
the batch's offsets committed). While one batch is applied the next is resolved and the one
after it decoded. At most one batch waits between two steps, batches pass every step in
order (with no backlog, the next batch is read only once the resolve step took the one
before: read earlier, its records would wait out a whole resolve step), and a batch is
committed only after it was written to Redis and its outputs to Kafka.
A worker killed anywhere in between leaves it uncommitted, and whoever gets its partitions
handles it again (every write is idempotent or guarded).

The loop is also the consumer group's rebalance listener: before partitions are revoked, the
batches being handled finish and commit (or are abandoned, uncommitted, when they cannot finish
in time), and batches read before the rebalance are dropped unhandled: after a rebalance every
partition is read again from its committed offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from bestand.kafka.batches import KeyPartitions, send_batched
from bestand.ops.logs import bound
from bestand.ops.metrics import WorkerMetrics, observe_many
from bestand.settings import Settings
from bestand.stream.messages import Incoming, Outgoing
from bestand.stream.policy import ErrorPolicy
from bestand.stream.processor import PreparedBatch, ResolvedBatch
from bestand.stream.retry import with_backoff

log = logging.getLogger(__name__)

#: Handled batches that may wait for the next commit, which they share.
_FINISHED_TOGETHER = 16
#: How long a revocation waits for the batches in hand before abandoning them (uncommitted).
REVOKE_GRACE_SECONDS = 20.0

Records = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


@dataclass
class _Batch:
    """One batch on its way through the steps."""

    generation: int  # of the assignment it was read under
    messages: list[Incoming]
    offsets: dict[TopicPartition, int]  # to commit: the next offset of each partition
    prepared: PreparedBatch | None  # None: decoding failed (a bug), handled message by message
    started: float
    resolved: ResolvedBatch | None = None
    out: list[Outgoing] | None = None


class BatchLoop(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Reads, handles, sends and commits batches until told to stop."""

    def __init__(
        self,
        settings: Settings,
        policy: ErrorPolicy,
        producer: AIOKafkaProducer,
        metrics: WorkerMetrics,
    ) -> None:
        self.consumer: AIOKafkaConsumer | None = None  # set once created with this listener
        self._policy = policy
        self._producer = producer
        self._metrics = metrics
        self._max = settings.batch_max_events
        self._wait_ms = settings.batch_wait_ms
        self._topics = {
            "dlq": settings.topic_dlq,
            "changes": settings.topic_profile_changes,
            "explain": settings.topic_explain,
        }
        self._partitions = KeyPartitions()
        self._generation = 0  # moves on when partitions are revoked
        self._abandoned_upto = -1  # batches of this generation and older are given up
        self._in_flight = 0  # batches begun and not yet committed
        self._drained = asyncio.Event()
        self._drained.set()
        self._working: set[asyncio.Task[Any]] = set()
        self.last_event_at: float | None = None  # newest Kafka timestamp handled (seconds)

    async def run(self, stopping: asyncio.Event) -> None:
        """Handle batches until ``stopping`` is set; batches read by then are finished first."""
        read: asyncio.Queue[_Batch | None] = asyncio.Queue(maxsize=1)
        resolved: asyncio.Queue[_Batch | None] = asyncio.Queue(maxsize=1)
        # Handled batches may wait for one commit together (see _finish).
        applied: asyncio.Queue[_Batch | None] = asyncio.Queue(maxsize=_FINISHED_TOGETHER)
        steps = [
            asyncio.create_task(self._read(stopping, read), name="read"),
            asyncio.create_task(self._resolve(read, resolved), name="resolve"),
            asyncio.create_task(self._apply(resolved, applied), name="apply"),
            asyncio.create_task(self._finish(applied), name="finish"),
        ]
        try:
            # Each step ends after the one before it; a step that fails stops the others and
            # the worker (its exception is raised here).
            done, _ = await asyncio.wait(steps, return_when=asyncio.FIRST_EXCEPTION)
            for step in done:
                step.result()
        finally:
            for step in steps:
                step.cancel()
            for step in steps:
                with contextlib.suppress(asyncio.CancelledError):
                    await step

    async def _read(self, stopping: asyncio.Event, read: asyncio.Queue[_Batch | None]) -> None:
        consumer = self.consumer
        if consumer is None:
            raise RuntimeError("the loop has no consumer")
        behind = False  # the last batch was half full or more: a backlog, or close to one
        while not stopping.is_set():
            if not behind:
                # Keeping up: the next batch is read once the resolve step took the one
                # before. Read earlier, its records would wait a whole resolve step longer;
                # with a backlog they wait anyway, and the batch read ahead is decoded while
                # the one before waits for Redis.
                await read.join()
            try:
                records = await self._fetch(consumer)
            except KafkaError as exc:  # the client retries its connections; so does this
                log.warning("reading from Kafka failed: %s", exc)
                await asyncio.sleep(1)
                continue
            # getmany returns records of the assignment it returns under (it waits out a
            # rebalance): the batch belongs to the generation of this moment.
            generation = self._generation
            if not records:
                continue
            started = time.perf_counter()
            messages = _messages(records)
            behind = 2 * len(messages) >= self._max
            offsets = {tp: batch[-1].offset + 1 for tp, batch in records.items() if batch}
            with bound(batch=len(messages), partitions=len(offsets)):
                prepared = await self._policy.prepare(messages)
            await read.put(_Batch(generation, messages, offsets, prepared, started))
        await read.put(None)

    async def _fetch(self, consumer: AIOKafkaConsumer) -> Records:
        """A batch with a share of every assigned partition that has records waiting.

        The client would hand out one partition's buffer after another: with a backlog, a
        batch would then hold an hour of one partition before a minute of the next, and
        events of one person on two partitions (a visit, then its order) would be handled
        far out of the order they happened in. Each partition gives at most its share of
        the batch, so partitions advance together; the room the quiet ones leave (an orders
        partition next to a busy clickstream one) goes to those that filled their share.
        """
        parts = consumer.assignment()
        records: Records = {}
        if parts:
            share = max(1, self._max // len(parts))
            full = []
            for tp in parts:
                found = await consumer.getmany(tp, timeout_ms=0, max_records=share)
                records.update(found)
                if len(found.get(tp, ())) == share:
                    full.append(tp)
            room = self._max - sum(len(batch) for batch in records.values())
            if full and room >= len(full):
                more = room // len(full)
                for tp in full:
                    found = await consumer.getmany(tp, timeout_ms=0, max_records=more)
                    records[tp] = records[tp] + found.get(tp, [])
        if not records:
            records = await consumer.getmany(timeout_ms=self._wait_ms, max_records=self._max)
        return records

    async def _resolve(
        self, read: asyncio.Queue[_Batch | None], resolved: asyncio.Queue[_Batch | None]
    ) -> None:
        while (batch := await read.get()) is not None:
            read.task_done()
            if batch.generation != self._generation:
                continue  # read before a rebalance: read again from the committed offsets
            self._begin()
            self._observe(batch.messages)
            work = self._policy.resolve(batch.messages, batch.prepared)
            if await self._work(batch, work, "resolved"):
                batch.prepared = None  # the decoded events, no longer needed
                await resolved.put(batch)
        await resolved.put(None)

    async def _apply(
        self, resolved: asyncio.Queue[_Batch | None], applied: asyncio.Queue[_Batch | None]
    ) -> None:
        while (batch := await resolved.get()) is not None:
            if batch.generation <= self._abandoned_upto:
                self._end()  # given up for a rebalance: not committed, handled again
                continue
            work = self._policy.apply(batch.messages, batch.resolved)
            if await self._work(batch, work, "out"):
                # Waiting for its commit, a batch keeps only its outputs and offsets.
                batch.resolved, batch.messages = None, []
                await applied.put(batch)
        await applied.put(None)

    async def _work(self, batch: _Batch, work: Awaitable[Any], into: str) -> bool:
        """One step's work on a batch, as a task a revocation can give up (False then)."""
        with bound(batch=len(batch.messages), partitions=len(batch.offsets)):
            task = asyncio.ensure_future(work)
        self._working.add(task)
        try:
            setattr(batch, into, await task)
        except asyncio.CancelledError:
            if batch.generation > self._abandoned_upto:
                raise
            self._end()  # given up for a rebalance: not committed, handled again
            return False
        finally:
            self._working.discard(task)
        return True

    async def _finish(self, applied: asyncio.Queue[_Batch | None]) -> None:
        seconds = self._metrics.processing_seconds
        done = False
        while not done:
            # The batches that are ready go together: one wait for Kafka's acks and one
            # commit for all of them, so a trickle of small batches does not queue up
            # behind a commit each.
            batch = await applied.get()
            ready: list[_Batch] = []
            while batch is not None:
                ready.append(batch)
                if applied.empty():
                    break
                batch = applied.get_nowait()
            done = batch is None
            if not ready:
                continue
            try:
                live = [b for b in ready if b.generation > self._abandoned_upto]
                # (A batch given up for a rebalance is not committed: it is handled again.)
                sending = time.perf_counter()
                await self._send([o for b in live for o in b.out or []])
                committing = time.perf_counter()
                offsets: dict[TopicPartition, int] = {}
                for b in live:
                    for tp, offset in b.offsets.items():
                        offsets[tp] = max(offset, offsets.get(tp, 0))
                if offsets:
                    await self._commit(offsets)
                finished = time.perf_counter()
                seconds.labels("produce").observe(committing - sending)
                seconds.labels("commit").observe(finished - committing)
                for b in live:
                    seconds.labels("batch").observe(finished - b.started)
            finally:
                for _ in ready:
                    self._end()

    def _begin(self) -> None:
        self._in_flight += 1
        self._drained.clear()

    def _end(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._drained.set()

    def _observe(self, messages: Sequence[Incoming]) -> None:
        metrics = self._metrics
        metrics.batch_size.observe(len(messages))
        now = time.time()
        stamps = [message.timestamp for message in messages if message.timestamp]
        observe_many(metrics.event_age, [max(now - stamp, 0.0) for stamp in stamps])
        self.last_event_at = max(max(stamps, default=0.0), self.last_event_at or 0.0) or None
        for topic, count in Counter(message.topic for message in messages).items():
            metrics.consumed.labels(topic).inc(count)

    async def _send(self, out: Sequence[Outgoing]) -> None:
        """Send every output and wait until Kafka has them all (sent again after an error)."""
        if not out:
            return

        topics = self._topics
        messages = [(topics[o.destination], o.key, o.value) for o in out]
        routes = [o.route for o in out]

        async def send_all() -> None:
            await send_batched(self._producer, messages, self._partitions, routes)

        await with_backoff(
            send_all, what="sending a batch's outputs", retryable=(KafkaError, OSError)
        )
        counts: dict[str, int] = {}
        for o in out:
            counts[o.destination] = counts.get(o.destination, 0) + 1
        for destination, count in counts.items():
            self._metrics.produced.labels(self._topics[destination]).inc(count)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self.consumer is not None
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            # The group moved the partitions on (or the coordinator is away): whoever reads
            # them next handles the batch again.
            log.warning("could not commit a batch (%s); it will be handled again", exc)

    # --- the rebalance listener ------------------------------------------------------------
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Let the batches in hand finish and commit, or give them up; drop what was read."""
        old = self._generation
        self._generation += 1
        try:
            await asyncio.wait_for(self._drained.wait(), timeout=REVOKE_GRACE_SECONDS)
        except TimeoutError:
            log.warning("giving up the batches in hand for a rebalance (not committed)")
            self._abandoned_upto = old
            for task in list(self._working):
                task.cancel()
        if revoked:
            self._metrics.rebalances.inc()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Count the partitions; they are read from their committed offsets."""
        self._metrics.partitions.set(len(assigned))
        log.info("assigned %d input partitions", len(assigned))


def _messages(records: Records) -> list[Incoming]:
    """A batch's records as messages in the order they were written to Kafka (by their
    timestamps; within a partition, by offset where timestamps tie)."""
    messages = [
        Incoming(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            record.timestamp / 1000 if record.timestamp and record.timestamp > 0 else None,
        )
        for batch in records.values()
        for record in batch
    ]
    messages.sort(key=lambda message: message.timestamp or 0.0)
    return messages
