"""The faust app: two agents, explicitly registered, with dependencies passed in."""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.streams import Stream
from faust.types import EventT, StreamT, TopicT

from bestand.ops.census import Census
from bestand.ops.heartbeat import Heartbeat, is_ready, ttl_seconds, worker_name
from bestand.ops.lag import LagProbe, PartitionLag, total_lag
from bestand.ops.logs import bound
from bestand.ops.metrics import WorkerMetrics
from bestand.settings import Settings
from bestand.store import IdentityGraph, Keys, ProfileStore, Scripts, connect
from bestand.stream.handlers import (
    IdentityHandler,
    Incoming,
    Outgoing,
    ProfileHandler,
    dead_letter,
)
from bestand.stream.retry import with_backoff
from bestand.stream.security import client_options, faust_credentials

log = logging.getLogger(__name__)

Handler = IdentityHandler | ProfileHandler


@dataclass
class Worker:
    """A configured faust app and what its agents use."""

    app: faust.App
    metrics: WorkerMetrics
    identity: IdentityHandler
    profile: ProfileHandler


def _incoming(event: Any) -> Incoming:
    message = event.message
    return Incoming(message.topic, message.partition, message.offset, message.key, message.value)


def create_app(settings: Settings) -> Worker:
    """Build the worker: faust app, Redis adapters, handlers and the two agents."""
    app = faust.App(
        settings.app_id,
        broker=settings.kafka_url,
        store="memory://",
        # Tables live in memory and state in Redis: faust's data directory stays empty, so it
        # goes to the temporary directory rather than into the working directory.
        datadir=f"{tempfile.gettempdir()}/{{conf.id}}-data",
        autodiscover=False,
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=True,
        web_enabled=True,
        web_port=settings.worker_web_port,
        web_bind=settings.worker_web_host,
        broker_commit_interval=1.0,
        broker_credentials=faust_credentials(settings),
    )
    client = connect(settings.redis_url)
    keys = Keys(settings.redis_prefix)
    scripts = Scripts.register(client)
    metrics = WorkerMetrics()
    profiles = ProfileStore(
        client, keys, settings.dedupe_ttl_seconds, scripts, rule=settings.customer_rule
    )
    worker = Worker(
        app=app,
        metrics=metrics,
        identity=IdentityHandler(
            settings,
            IdentityGraph(
                client,
                keys,
                scripts,
                policy=settings.policy,
                receipt_ttl=settings.dedupe_ttl_seconds,
            ),
            metrics,
        ),
        profile=ProfileHandler(profiles, metrics, settings.lifecycle_rules),
    )
    topics: dict[str, TopicT] = {
        "resolved": app.topic(settings.topic_resolved, partitions=settings.topic_partitions),
        "dlq": app.topic(settings.topic_dlq, partitions=settings.topic_partitions),
        "changes": app.topic(settings.topic_profile_changes, partitions=settings.topic_partitions),
    }
    inputs = app.topic(*settings.input_topics, partitions=settings.topic_partitions)

    names = {kind: topic.get_topic_name() for kind, topic in topics.items()}

    async def send_all(outgoing: list[Outgoing]) -> None:
        sent: Counter[str] = Counter()
        for out in outgoing:
            await topics[out.destination].send(key=out.key, value=out.value)
            sent[out.destination] += 1
        for kind, count in sent.items():
            metrics.produced.labels(names[kind]).inc(count)

    async def process(stage: str, handler: Handler, message: Incoming) -> list[Outgoing]:
        """Handle one message; Redis trouble is retried, anything else costs one dead letter."""
        fields: dict[str, Any] = {
            "stage": stage, "topic": message.topic, "partition": message.partition,
            "offset": message.offset,
        }  # fmt: skip
        if stage == "profile" and message.key:  # resolved events are keyed by person
            fields["person_id"] = message.key.decode(errors="replace")
        with bound(**fields):
            return await _process(stage, handler, message)

    async def _process(stage: str, handler: Handler, message: Incoming) -> list[Outgoing]:
        try:
            with metrics.processing_seconds.labels(stage).time():
                return await with_backoff(
                    lambda: handler.handle(message),
                    what=f"{stage} {message.topic}[{message.partition}]@{message.offset}",
                    on_retry=metrics.retries.labels(stage).inc,
                )
        except Exception as exc:  # a bug must cost one event, never the stream
            log.exception(
                "%s failed on %s[%d]@%d; dead-lettered",
                stage,
                message.topic,
                message.partition,
                message.offset,
            )
            metrics.events.labels(stage, message.topic, "dead_lettered").inc()
            metrics.dead_letters.labels(message.topic, "processing_error").inc()
            return [dead_letter(message, "processing_error", f"{type(exc).__name__}: {exc}")]

    async def process_batch(
        stage: str, handler: Handler, messages: list[Incoming]
    ) -> list[Outgoing]:
        """Handle a batch together; if that fails other than by Redis, one message at a time."""
        first, last = messages[0], messages[-1]
        with bound(stage=stage, topic=first.topic, partition=first.partition,
                   offset=first.offset, offset_end=last.offset, batch=len(messages)):  # fmt: skip
            return await _process_batch(stage, handler, messages, first, last)

    async def _process_batch(
        stage: str, handler: Handler, messages: list[Incoming], first: Incoming, last: Incoming
    ) -> list[Outgoing]:
        try:
            with metrics.processing_seconds.labels(stage).time():
                return await with_backoff(
                    lambda: handler.handle_batch(messages),
                    what=f"{stage} batch of {len(messages)} from {first.topic}"
                    f"[{first.partition}]@{first.offset}..{last.offset}",
                    on_retry=metrics.retries.labels(stage).inc,
                )
        except Exception:  # find the one message that fails; the others still count once
            log.exception("%s batch failed; handling its messages one by one", stage)
            out: list[Outgoing] = []
            for message in messages:
                out += await process(stage, handler, message)
            return out

    seen = {"event_at": 0.0}  # newest Kafka timestamp handled, for the heartbeat

    def stage_agent(stage: str, handler: Handler) -> Callable[[StreamT[bytes]], Awaitable[None]]:
        async def agent(stream: StreamT[bytes]) -> None:
            batches = cast(Stream[bytes], stream).noack_take(
                settings.batch_max_events, within=settings.batch_wait_ms / 1000
            )
            async for batch in batches:
                events = cast(list[EventT[bytes]], batch)
                now = time.time()
                metrics.batch_size.labels(stage).observe(len(events))
                per_topic: Counter[str] = Counter()
                ages = metrics.event_age.labels(stage)
                for event in events:
                    per_topic[event.message.topic] += 1
                    if event.message.timestamp:
                        ages.observe(max(now - event.message.timestamp, 0.0))
                        seen["event_at"] = max(seen["event_at"], event.message.timestamp)
                for topic_name, count in per_topic.items():
                    metrics.consumed.labels(topic_name).inc(count)
                await send_all(await process_batch(stage, handler, [_incoming(e) for e in events]))
                # Acked only now: a cancelled or crashed worker leaves these uncommitted.
                for event in events:
                    event.ack()

        return agent

    identity_agent = stage_agent("identity", worker.identity)
    profile_agent = stage_agent("profile", worker.profile)

    app.agent(inputs, name="identity")(identity_agent)
    app.agent(topics["resolved"], name="profile")(profile_agent)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(metrics.exposition(), content_type="text/plain; version=0.0.4")

    me = worker_name()
    probe = LagProbe(
        client_options(settings), settings.app_id, [*settings.input_topics, settings.topic_resolved]
    )
    last: dict[str, Heartbeat] = {}
    census = Census(client, keys)

    def publish_lag(rows: list[PartitionLag], now: float) -> None:
        for row in rows:
            labels = (row.topic, str(row.partition))
            metrics.lag.labels(*labels).set(row.lag)
            metrics.lag_seconds.labels(*labels).set(row.age(now))

    async def ops_tick() -> None:
        """Heartbeat, lag and Redis figures; trouble is logged, never fatal."""
        now = time.time()
        lag: int | None = None
        try:
            rows = await probe.read()
            publish_lag(rows, now)
            lag = total_lag(rows)
        except Exception as exc:  # noqa: BLE001 - Kafka away: no lag figures this round
            log.warning("could not read consumer lag: %s", exc)
        partitions = len(app.consumer.assignment()) if app.consumer else 0
        ready = is_ready(partitions, lag, settings.ready_max_lag)
        beat = Heartbeat(me, now, partitions, lag, ready, seen["event_at"] or None)
        last["beat"] = beat
        try:
            started = time.perf_counter()
            await client.ping()
            metrics.redis_seconds.labels("ping").observe(time.perf_counter() - started)
            memory = await client.info("memory")
            metrics.redis_memory.set(float(memory["used_memory"]))
            counted = await census.step()
            if counted is not None:
                metrics.persons.set(counted.persons)
                metrics.identifiers.set(counted.identifiers)
            await client.set(
                keys.heartbeat(me), beat.dumps(), ex=ttl_seconds(settings.ops_interval_seconds)
            )
            metrics.heartbeat.set(now)
        except Exception as exc:  # noqa: BLE001 - Redis away: the heartbeat lapses, as it should
            log.warning("could not write the heartbeat to Redis: %s", exc)

    app.timer(settings.ops_interval_seconds)(ops_tick)

    async def leave(sender: Any, *args: Any, **kwargs: Any) -> None:
        """Take the heartbeat out at once and close the lag probe's connections."""
        try:
            await client.delete(keys.heartbeat(me))
        except Exception as exc:  # noqa: BLE001 - it expires by itself anyway
            log.warning("could not remove the heartbeat: %s", exc)
        await probe.stop()

    app.on_before_shutdown.connect(cast(Any, leave))

    @app.page("/health")
    async def health_page(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "worker": me})

    @app.page("/ready")
    async def ready_page(web: Any, request: Any) -> Any:
        beat = last.get("beat")
        if beat is None or not beat.ready:
            detail = "starting" if beat is None else f"partitions {beat.partitions}, lag {beat.lag}"
            return web.json({"status": "not_ready", "detail": detail}, status=503)
        return web.json({"status": "ready", "partitions": beat.partitions, "lag": beat.lag})

    return worker
