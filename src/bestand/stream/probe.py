"""What a worker tells about itself every interval: heartbeat, lag, readiness, Redis figures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis

from bestand.kafka.lag import LagProbe, PartitionLag, total_lag
from bestand.kafka.options import client_options
from bestand.ops.census import Census
from bestand.ops.heartbeat import Heartbeat, is_ready, ttl_seconds, worker_name
from bestand.ops.metrics import WorkerMetrics
from bestand.ops.web import Response
from bestand.settings import Settings
from bestand.store import Keys
from bestand.store.router import used_memory

log = logging.getLogger(__name__)


class WorkerProbe:
    """Beats every ``BESTAND_OPS_INTERVAL_SECONDS``; trouble is logged, never fatal."""

    def __init__(
        self,
        settings: Settings,
        client: Redis,
        metrics: WorkerMetrics,
        partitions: Callable[[], int],
        last_event_at: Callable[[], float | None],
        graph: Redis | None = None,
    ) -> None:
        self._settings = settings
        self._client = client
        self._keys = Keys(settings.redis_prefix)
        self._metrics = metrics
        self._partitions = partitions
        self._last_event_at = last_event_at
        self._lag = LagProbe(client_options(settings), settings.app_id, settings.input_topics)
        self._census = Census(graph or client, self._keys)  # a cluster's graph master
        self.name = worker_name()
        self.last: Heartbeat | None = None

    async def run(self, stopping: asyncio.Event) -> None:
        """Beat until ``stopping`` is set."""
        interval = self._settings.ops_interval_seconds
        while not stopping.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=interval)

    async def tick(self) -> None:
        """Read lag and Redis figures, publish them, write the heartbeat."""
        now = time.time()
        lag: int | None = None
        try:
            rows = await self._lag.read()
            self._publish_lag(rows, now)
            lag = total_lag(rows)
        except Exception as exc:  # noqa: BLE001 - Kafka away: no lag figures this round
            log.warning("could not read consumer lag: %s", exc)
        partitions = self._partitions()
        self._metrics.partitions.set(partitions)
        ready = is_ready(partitions, lag, self._settings.ready_max_lag)
        beat = Heartbeat(self.name, now, partitions, lag, ready, self._last_event_at())
        self.last = beat
        metrics = self._metrics
        try:
            started = time.perf_counter()
            await self._client.ping()
            metrics.redis_seconds.labels("ping").observe(time.perf_counter() - started)
            metrics.redis_memory.set(float(await used_memory(self._client)))
            counted = await self._census.step()
            if counted is not None:
                metrics.persons.set(counted.persons)
                metrics.identifiers.set(counted.identifiers)
                metrics.graph_buckets.set(counted.buckets)
                metrics.graph_bucket_entries_max.set(counted.fullest)
            ttl = ttl_seconds(self._settings.ops_interval_seconds)
            await self._client.set(self._keys.heartbeat(self.name), beat.dumps(), ex=ttl)
            metrics.heartbeat.set(now)
        except Exception as exc:  # noqa: BLE001 - Redis away: the heartbeat lapses, as it should
            log.warning("could not write the heartbeat to Redis: %s", exc)

    def _publish_lag(self, rows: list[PartitionLag], now: float) -> None:
        for row in rows:
            labels = (row.topic, str(row.partition))
            self._metrics.lag.labels(*labels).set(row.lag)
            self._metrics.lag_seconds.labels(*labels).set(row.age(now))

    def ready(self) -> Response:
        """``/ready``: 200 once partitions are assigned and the group has caught up."""
        beat = self.last
        if beat is None or not beat.ready:
            detail = "starting" if beat is None else f"partitions {beat.partitions}, lag {beat.lag}"
            return Response.json({"status": "not_ready", "detail": detail}, 503)
        return Response.json({"status": "ready", "partitions": beat.partitions, "lag": beat.lag})

    def health(self) -> Response:
        """``/health``: the process answers."""
        return Response.json({"status": "ok", "worker": self.name})

    async def leave(self) -> None:
        """Take the heartbeat out at once and close the lag probe's connections."""
        try:
            await self._client.delete(self._keys.heartbeat(self.name))
        except Exception as exc:  # noqa: BLE001 - it expires by itself anyway
            log.warning("could not remove the heartbeat: %s", exc)
        await self._lag.stop()
