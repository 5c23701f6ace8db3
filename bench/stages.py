"""Both worker stages driven in-process over a simulated shop: one event at a time vs batches.

No Kafka: the identity stage's output is handed straight to the profile stage, so the figures
are what the stages themselves (Python and Redis) can do.

    python bench/stages.py --persons 1500 --batches 1,500

Prints events/s of each stage per batch size. Uses its own Redis key prefix and removes it.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import orjson

from bestand.ingest.producer import topic_for
from bestand.ops.metrics import WorkerMetrics
from bestand.settings import Settings
from bestand.simulate import simulate
from bestand.store import IdentityGraph, Keys, ProfileStore, connect
from bestand.stream.handlers import IdentityHandler, Incoming, ProfileHandler


async def _clear(settings: Settings) -> None:
    client = connect(settings.redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{settings.redis_prefix}:*", count=5000)]
        for start in range(0, len(keys), 5000):
            await client.unlink(*keys[start : start + 5000])
    finally:
        await client.aclose()


async def run(persons: int, batch: int) -> tuple[int, float, float]:
    settings = Settings().model_copy(update={"redis_prefix": f"bstages{batch}"})
    await _clear(settings)
    client = connect(settings.redis_url)
    keys = Keys(settings.redis_prefix)
    metrics = WorkerMetrics()
    identity = IdentityHandler(
        settings, IdentityGraph(client, keys, policy=settings.policy), metrics
    )
    profile = ProfileHandler(ProfileStore(client, keys, 3600), metrics)
    events = simulate(persons=persons, seed=3).events
    messages = [
        Incoming(topic_for(e, settings), 0, i, None, orjson.dumps(e)) for i, e in enumerate(events)
    ]
    try:
        started = time.perf_counter()
        resolved: list[Incoming] = []
        for start in range(0, len(messages), batch):
            out = await identity.handle_batch(messages[start : start + batch])
            resolved += [
                Incoming(settings.topic_resolved, 0, len(resolved) + n, o.key, o.value)
                for n, o in enumerate(o for o in out if o.destination == "resolved")
            ]
        middle = time.perf_counter()
        for start in range(0, len(resolved), batch):
            await profile.handle_batch(resolved[start : start + batch])
        done = time.perf_counter()
    finally:
        await client.aclose()
        await _clear(settings)
    return len(messages), len(messages) / (middle - started), len(resolved) / (done - middle)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=1500)
    parser.add_argument("--batches", default="1,500")
    args = parser.parse_args()
    print("| batch | events | identity events/s | profile events/s |\n|---|---|---|---|")
    for batch in (int(b) for b in args.batches.split(",")):
        count, first, second = asyncio.run(run(args.persons, batch))
        print(f"| {batch} | {count} | {first:.0f} | {second:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
