"""``bestand status``: lag per partition, events per second, workers, dead letters, Redis.

Everything comes from Kafka and Redis themselves (committed offsets, end offsets, heartbeats,
``INFO memory``), so the view works from any machine that reaches them, with no worker web
port open. Events per second are committed offsets over time between two snapshots.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis

from bestand.kafka.lag import LagProbe, PartitionLag, max_age, total_lag
from bestand.kafka.options import client_options
from bestand.kafka.topics import end_offsets
from bestand.ops.heartbeat import Heartbeat
from bestand.settings import Settings
from bestand.store import Keys
from bestand.store.connection import refuse_cluster
from bestand.store.layout import layout_note
from bestand.store.router import graph_master, used_memory
from bestand.store.scripts import Scripts


@dataclass(frozen=True)
class Snapshot:
    """One look at a deployment."""

    at: float
    partitions: list[PartitionLag]
    workers: list[Heartbeat]
    dead_letters: int  # messages in the dead-letter topic
    redis_used_memory: int | None
    events_per_second: float | None = None  # committed per second since the previous snapshot
    notes: list[str] = field(default_factory=list)
    #: How Redis runs the worker's scripts: "module" (bestand's Redis module), "lua", or
    #: None (Redis did not answer).
    redis_scripts: str | None = None

    @property
    def lag(self) -> int:
        """Messages the group has not committed, over every partition."""
        return total_lag(self.partitions)

    @property
    def lag_age(self) -> float:
        """Seconds the oldest waiting message has waited."""
        return max_age(self.partitions, self.at)

    @property
    def last_event_age(self) -> float | None:
        """Seconds since the newest event any worker handled (None: no worker says)."""
        times = [w.last_event_at for w in self.workers if w.last_event_at is not None]
        return self.at - max(times) if times else None

    def committed(self) -> int:
        """Sum of committed offsets: the events handled so far."""
        return sum(p.committed or 0 for p in self.partitions)

    def as_dict(self) -> dict[str, Any]:
        """The snapshot for ``--json``."""
        return {
            "at": self.at,
            "lag": self.lag,
            "lag_age_seconds": round(self.lag_age, 3),
            "events_per_second": self.events_per_second,
            "last_event_age_seconds": self.last_event_age,
            "dead_letters": self.dead_letters,
            "redis_used_memory_bytes": self.redis_used_memory,
            "redis_scripts": self.redis_scripts,
            "partitions": [
                {**asdict(p), "lag": p.lag, "lag_age_seconds": round(p.age(self.at), 3)}
                for p in self.partitions
            ],
            "workers": [asdict(w) for w in self.workers],
            "notes": self.notes,
        }


def rate(previous: Snapshot | None, current: Snapshot) -> float | None:
    """Events committed per second between two snapshots."""
    if previous is None or current.at <= previous.at:
        return None
    return max(current.committed() - previous.committed(), 0) / (current.at - previous.at)


async def heartbeats(client: Redis, keys: Keys) -> list[Heartbeat]:
    """Every live worker's last heartbeat, by worker name."""
    beats = []
    async for key in client.scan_iter(match=keys.heartbeats(), count=1000):
        raw = await client.get(key)
        if raw:
            beats.append(Heartbeat.loads(raw))
    return sorted(beats, key=lambda b: b.worker)


class StatusReader:
    """Takes snapshots of one deployment, keeping its Kafka connections between them."""

    def __init__(self, settings: Settings, client: Redis) -> None:
        self._settings = settings
        self._client = client
        self._keys = Keys(settings.redis_prefix)
        self._probe = LagProbe(
            client_options(settings),
            settings.app_id,
            settings.input_topics,
        )
        self._previous: Snapshot | None = None

    async def close(self) -> None:
        """Close the Kafka connections."""
        await self._probe.stop()

    async def snapshot(self) -> Snapshot:
        """Lag, workers, dead letters and Redis memory now (and the rate since last time)."""
        notes: list[str] = []
        partitions: list[PartitionLag] = []
        dead = 0
        try:
            partitions = await self._probe.read()
            dlq = await end_offsets(self._settings, [self._settings.topic_dlq])
            dead = sum(dlq.values())
        except Exception as exc:  # noqa: BLE001 - show what can be shown
            notes.append(f"Kafka: {exc}")
        workers: list[Heartbeat] = []
        memory: int | None = None
        scripts: str | None = None
        try:
            url, cluster = self._settings.redis_url, self._settings.redis_cluster
            await refuse_cluster(self._client, url, cluster)
            workers = await heartbeats(self._client, self._keys)
            memory = await used_memory(self._client)
            graph, router = await graph_master(self._client, self._keys, url)
            try:
                compiled = await Scripts.load().use_module(graph, "auto")
            finally:
                if router is not None:
                    await router.close_nodes()
            scripts = "module" if compiled else "lua"
            note = layout_note(await self._client.get(self._keys.layout))
            if note is not None:
                notes.append(f"Redis: {note}")
        except Exception as exc:  # noqa: BLE001
            notes.append(f"Redis: {exc}")
        if not workers and not any("Redis" in n for n in notes):
            notes.append("no worker heartbeat: no worker is running for this deployment")
        shot = Snapshot(
            time.time(), partitions, workers, dead, memory, notes=notes, redis_scripts=scripts
        )
        shot = Snapshot(**{**shot.__dict__, "events_per_second": rate(self._previous, shot)})
        self._previous = shot
        return shot


async def first_snapshot(reader: StatusReader, spacing: float = 1.0) -> Snapshot:
    """A snapshot with a rate: two looks ``spacing`` seconds apart."""
    await reader.snapshot()
    await asyncio.sleep(spacing)
    return await reader.snapshot()


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value = value / 1024  # type: ignore[assignment]
    return str(value)


#: How the summary line says Redis runs the worker's scripts.
_SCRIPTS = {"module": " (bestand's module)", "lua": " (Lua scripts)"}


def render(shot: Snapshot, title: str) -> Any:
    """The snapshot as rich renderables: a summary line, partitions, workers."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    rate_text = "-" if shot.events_per_second is None else f"{shot.events_per_second:,.0f}"
    summary = Text.assemble(
        (f"{title}  ", "bold"),
        f"lag {shot.lag:,}  (oldest waiting {_seconds(shot.lag_age)})   ",
        f"events/s {rate_text}   ",
        f"last event {_seconds(shot.last_event_age)} ago   ",
        ("dead letters ", ""),
        (f"{shot.dead_letters:,}", "red" if shot.dead_letters else ""),
        f"   Redis {_bytes(shot.redis_used_memory)}",
        _SCRIPTS.get(shot.redis_scripts or "", ""),
    )
    parts = Table(title="Consumer lag per partition", show_lines=False)
    for column, justify in (
        ("topic", "left"), ("partition", "right"), ("end", "right"),
        ("committed", "right"), ("lag", "right"), ("oldest waiting", "right"),
    ):  # fmt: skip
        parts.add_column(column, justify=justify)  # type: ignore[arg-type]
    for p in shot.partitions:
        parts.add_row(
            p.topic,
            str(p.partition),
            f"{p.end:,}",
            "-" if p.committed is None else f"{p.committed:,}",
            Text(f"{p.lag:,}", style="yellow" if p.lag else "green"),
            _seconds(p.age(shot.at)) if p.lag else "-",
        )
    workers = Table(title="Workers (heartbeats in Redis)")
    for column in ("worker", "beat", "partitions", "ready"):
        workers.add_column(column)
    for w in shot.workers:
        workers.add_row(
            w.worker,
            f"{_seconds(shot.at - w.at)} ago",
            str(w.partitions),
            Text("yes", style="green") if w.ready else Text("no", style="yellow"),
        )
    notes = [Text(n, style="red") for n in shot.notes]
    return Group(summary, parts, workers, *notes)
