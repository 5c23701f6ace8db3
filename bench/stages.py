"""The worker's batch processor driven in-process over a simulated shop, by batch size.

No Kafka: messages go straight to the processor, so the figures are what decoding, the
identity graph and person state (Python and Redis) can do, and where a batch's time goes.

    python bench/stages.py --persons 5000 --batches 1,100,2000
    python bench/stages.py --persons 100000 --batches 2000 --window 100000

Prints events/s per batch size, the time per event of each phase and the CPU per event of
this process and of Redis. ``--window N`` also prints those figures for every N events in
turn: how the cost of an event grows with the history the shop has behind it. Uses its own
Redis key prefix and removes it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from bestand.ingest.producer import topic_for
from bestand.ops.metrics import WorkerMetrics
from bestand.settings import Settings
from bestand.simulate import simulate
from bestand.store import Scripts, connect
from bestand.store.identity_graph import resolver_in_use
from bestand.store.profiles import fold_in_use
from bestand.stream.messages import Incoming
from bestand.stream.worker import processor_for, settle_garbage_collection


def batch_settings(batch: int) -> Settings:
    """The settings a run in batches of ``batch`` uses: a key prefix of its own."""
    return Settings().model_copy(update={"redis_prefix": f"bstages{batch}"})


async def clear(settings: Settings) -> None:
    """Remove every key of the settings' prefix."""
    client = connect(settings.redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{settings.redis_prefix}:*", count=5000)]
        for start in range(0, len(keys), 5000):
            await client.unlink(*keys[start : start + 5000])
    finally:
        await client.aclose()


@dataclass
class _Clock:
    """Wall time, this process's CPU time and Redis's main-thread CPU time, in seconds."""

    wall: float
    cpu: float
    redis: float

    @classmethod
    async def now(cls, client: Redis) -> _Clock:
        info = await client.info("cpu")
        redis_cpu = info["used_cpu_user_main_thread"] + info["used_cpu_sys_main_thread"]
        return cls(time.perf_counter(), time.process_time(), redis_cpu)

    def row(self, later: _Clock, events: int, label: str) -> str:
        """A markdown row: events/s, µs of CPU per event here and in Redis."""
        rate = events / (later.wall - self.wall)
        cpu, redis_cpu = (later.cpu - self.cpu) / events, (later.redis - self.redis) / events
        return f"| {label} | {rate:.0f} | {cpu * 1e6:.0f} | {redis_cpu * 1e6:.0f} |"


async def run(
    messages: list[Incoming], batch: int, window: int = 0
) -> tuple[float, dict[str, float], str]:
    """Events/s over ``messages`` in batches of ``batch``, seconds per event by phase, and a
    table row of CPU per event (with one row per ``window`` events before it, if given)."""
    settings = batch_settings(batch)
    await clear(settings)
    client = connect(settings.redis_url)
    metrics = WorkerMetrics()
    scripts = Scripts.load()
    compiled = await scripts.use_module(client, settings.redis_module)
    if compiled:
        print(f"Redis runs {', '.join(compiled)} as bestand's module's commands")
    processor = processor_for(settings, client, metrics, scripts)
    rows: list[str] = []
    try:
        first = last = await _Clock.now(client)
        since = 0  # events done at ``last``
        dead = 0
        for start in range(0, len(messages), batch):
            chunk = messages[start : start + batch]
            out = await processor.process(chunk)
            dead += sum(1 for message in out if message.destination == "dlq")
            done = start + len(chunk)
            if window and (done - since >= window or done == len(messages)):
                now = await _Clock.now(client)
                rows.append(last.row(now, done - since, f"{since + 1:,}–{done:,}"))
                last, since = now, done
        end = await _Clock.now(client)
        seconds = end.wall - first.wall
        rows.append(first.row(end, len(messages), f"all {len(messages):,}"))
        rows.append(f"\n{dead:,} dead letters (the shop's deliberately bad input)")
    finally:
        await client.aclose()
        await clear(settings)
    phases = {
        sample.labels["stage"]: sample.value / len(messages)
        for family in metrics.registry.collect()
        if family.name == "bestand_batch_processing_seconds"
        for sample in family.samples
        if sample.name.endswith("_sum") and sample.value
    }
    return len(messages) / seconds, phases, "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=5000)
    parser.add_argument("--batches", default="1,100,2000")
    parser.add_argument(
        "--window", type=int, default=0, help="also print CPU per event for every N events"
    )
    args = parser.parse_args()
    logging.getLogger("bestand").setLevel(logging.ERROR)  # dead letters are counted instead
    settings = Settings()
    events = simulate(persons=args.persons, seed=3).events
    messages = [
        Incoming(topic_for(e, settings), 0, i, None, orjson.dumps(e)) for i, e in enumerate(events)
    ]
    del events
    settle_garbage_collection()  # as the worker does
    fold, resolver = fold_in_use(settings.fold), resolver_in_use(settings.resolve)
    print(
        f"{len(messages)} events of a {args.persons}-person shop "
        f"(BESTAND_RESOLVE: {resolver} resolver, BESTAND_FOLD: {fold} fold)"
    )
    cpu_tables = []
    print("| batch | events/s | decode µs | resolve µs | apply µs |\n|---|---|---|---|---|")
    for batch in (int(b) for b in args.batches.split(",")):
        rate, phases, cpu = asyncio.run(run(messages, batch, args.window))
        us = {
            phase: f"{phases.get(phase, 0.0) * 1e6:.0f}" for phase in ("decode", "resolve", "apply")
        }
        print(f"| {batch} | {rate:.0f} | {us['decode']} | {us['resolve']} | {us['apply']} |")
        cpu_tables.append((batch, cpu))
    for batch, cpu in cpu_tables:
        print(f"\nbatches of {batch}: CPU per event, this process and Redis (main thread)")
        print("| events | events/s | process CPU µs | Redis CPU µs |\n|---|---|---|---|")
        print(cpu)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
