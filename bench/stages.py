"""The worker's batch processor driven in-process over a simulated shop, by batch size.

No Kafka: messages go straight to the processor, so the figures are what decoding, the
identity graph and person state (Python and Redis) can do, and where a batch's time goes.

    python bench/stages.py --persons 5000 --batches 1,100,2000

Prints events/s per batch size and the time per event of each phase. Uses its own Redis key
prefix and removes it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time

import orjson

from bestand.ingest.producer import topic_for
from bestand.ops.metrics import WorkerMetrics
from bestand.settings import Settings
from bestand.simulate import simulate
from bestand.store import connect
from bestand.stream.messages import Incoming
from bestand.stream.worker import processor_for


async def _clear(settings: Settings) -> None:
    client = connect(settings.redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{settings.redis_prefix}:*", count=5000)]
        for start in range(0, len(keys), 5000):
            await client.unlink(*keys[start : start + 5000])
    finally:
        await client.aclose()


async def run(messages: list[Incoming], batch: int) -> tuple[float, dict[str, float]]:
    """Events/s over ``messages`` in batches of ``batch``, and seconds per event by phase."""
    settings = Settings().model_copy(update={"redis_prefix": f"bstages{batch}"})
    await _clear(settings)
    client = connect(settings.redis_url)
    metrics = WorkerMetrics()
    processor = processor_for(settings, client, metrics)
    try:
        started = time.perf_counter()
        for start in range(0, len(messages), batch):
            await processor.process(messages[start : start + batch])
        seconds = time.perf_counter() - started
    finally:
        await client.aclose()
        await _clear(settings)
    phases = {
        sample.labels["stage"]: sample.value / len(messages)
        for family in metrics.registry.collect()
        if family.name == "bestand_batch_processing_seconds"
        for sample in family.samples
        if sample.name.endswith("_sum") and sample.value
    }
    return len(messages) / seconds, phases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=5000)
    parser.add_argument("--batches", default="1,100,2000")
    args = parser.parse_args()
    settings = Settings()
    events = simulate(persons=args.persons, seed=3).events
    messages = [
        Incoming(topic_for(e, settings), 0, i, None, orjson.dumps(e)) for i, e in enumerate(events)
    ]
    del events
    gc.collect()
    gc.freeze()  # as the worker does: what lives on is no work for the cycle collector
    gc.set_threshold(50_000, 20, 100)
    print(f"{len(messages)} events of a {args.persons}-person shop")
    print("| batch | events/s | decode µs | resolve µs | apply µs |\n|---|---|---|---|---|")
    for batch in (int(b) for b in args.batches.split(",")):
        rate, phases = asyncio.run(run(messages, batch))
        us = {
            phase: f"{phases.get(phase, 0.0) * 1e6:.0f}" for phase in ("decode", "resolve", "apply")
        }
        print(f"| {batch} | {rate:.0f} | {us['decode']} | {us['resolve']} | {us['apply']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
