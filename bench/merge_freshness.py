"""Time from producing a merging event to lookups by the absorbed identifiers answering for
the survivor, through Kafka, a running worker and Redis.

Each round creates two persons (an order by e-mail, a store order by phone), waits until both
are known, then produces an ``identify`` that links them and polls the lookup of the phone
person's order until it names the survivor with both orders.

    python bench/merge_freshness.py --rounds 50

Prints p50 / p90 / p99 / max in milliseconds. Needs Kafka and Redis at the configured addresses
(``bestand stack up``); runs in the namespace ``bench-merge`` and resets it first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from bestand.api import create_api
from bestand.children import Child, wait_caught_up
from bestand.namespace import environment, namespaced, reset
from bestand.settings import Settings
from bestand.stack import free_port


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(settings: Settings, rounds: int) -> list[float]:
    api = create_api(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    samples: list[float] = []
    try:
        for n in range(rounds):
            email, phone = f"merge{n}@example.com", f"+49160{7_000_000 + n * 7919:07d}"
            first = {
                "type": "order_placed",
                "event_id": f"m{n}a",
                "order_id": f"m{n}a",
                "event_time": "2026-11-01T10:00:00Z",
                "total": "10.00",
                "currency": "EUR",
                "channel": "web",
                "customer": {"guest": True, "email": email},
            }
            second = {
                **first,
                "event_id": f"m{n}b",
                "order_id": f"m{n}b",
                "channel": "store",
                "customer": {"guest": True, "phone": phone},
            }
            await producer.send_and_wait(settings.topic_orders, orjson.dumps(first))
            await producer.send_and_wait(settings.topic_orders, orjson.dumps(second))
            while (
                not (await api.service.lookup("order_id", f"m{n}b"))["known"]
                or not (await api.service.lookup("email", email))["known"]
            ):
                await asyncio.sleep(0.005)
            link = {
                "type": "identify",
                "event_id": f"m{n}c",
                "event_time": "2026-11-02T10:00:00Z",
                "identifiers": {"email": email, "phone": phone},
            }
            started = time.perf_counter()
            await producer.send_and_wait(settings.topic_customer, orjson.dumps(link))
            while (await api.service.lookup("order_id", f"m{n}b"))["orders_count"] != 2:
                await asyncio.sleep(0.001)
            samples.append(time.perf_counter() - started)
    finally:
        await producer.stop()
        await api.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    settings = namespaced(Settings(), "bench-merge", "bm")
    asyncio.run(reset(settings))
    env = environment(settings) | {"BESTAND_WORKER_WEB_PORT": str(free_port())}
    worker = Child.start(
        "worker",
        ["worker", "--loglevel", "warning"],
        Path(".local/logs/bench-merge-worker.log"),
        env,
    )
    try:
        asyncio.run(wait_caught_up(settings, [worker], 0, report=lambda _: None))
        samples = [s * 1000 for s in asyncio.run(run(settings, args.rounds))]
    finally:
        worker.stop()
    print(f"machine: {os.cpu_count()} cores; {len(samples)} merges through Kafka, one worker")
    print(
        "produce identify → lookup by the absorbed identifier answers for the survivor: "
        f"p50 {percentile(samples, 0.5):.1f} ms  p90 {percentile(samples, 0.9):.1f} ms  "
        f"p99 {percentile(samples, 0.99):.1f} ms  max {max(samples):.1f} ms"
    )


if __name__ == "__main__":
    main()
