"""Freshness: time from producing an order to the lookup answering ``existing_customer: true``,
while ingest runs at a steady rate.

A background producer sends realistic events (the simulated shop, replayed with fresh event
ids) at ``--rate`` events per second; every ``--probe-every`` seconds a probe order of a
brand-new buyer is produced, and the lookup of its e-mail is polled through Redis (the direct
client) until it answers as an existing customer. Latency counts from just before the probe
was sent. Probing starts once the workers have caught up with the input that piled up while
they started (or after 30 s, when they cannot keep up): the table says after how long.

    python bench/freshness.py --rate 5000 --seconds 30 [--workers 1] [--json F] [--markdown F]

Runs in the namespace ``bestand-bench-fresh`` (reset first). Needs ``bestand stack up``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bestand.api import create_api
from bestand.children import start_workers
from bestand.ingest.producer import key_for, topic_for
from bestand.kafka.topics import consumer_lag
from bestand.namespace import namespaced, reset
from bestand.settings import Settings
from bestand.simulate import simulate
from machine import machine, markdown_table, percentile, write_outputs

NAMESPACE = "bestand-bench-fresh"


def probe_order(n: int) -> dict[str, Any]:
    """An order of a buyer nobody has seen before."""
    return {
        "type": "order_placed",
        "event_id": f"fresh-probe-{n}",
        "event_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "order_id": f"fresh-probe-{n}",
        "total": "19.90",
        "currency": "EUR",
        "channel": "web",
        "customer": {"guest": True, "email": f"fresh.probe.{n}@example.org"},
    }


async def background(
    producer: AIOKafkaProducer,
    settings: Settings,
    rate: float,
    stop: asyncio.Event,
    sent: list[int],
) -> None:
    """Send the shop's events again and again at ``rate`` per second, each with a new id."""
    events = simulate(persons=2000, seed=5).events
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n, event in enumerate(itertools.cycle(events)):
        if stop.is_set():
            return
        due = started + n / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        fresh = {**event, "event_id": f"{event['event_id']}-r{n // len(events)}"}
        await producer.send(topic_for(fresh, settings), orjson.dumps(fresh), key=key_for(fresh))
        sent[0] += 1


async def caught_up(settings: Settings, rate: float, give_up_after: float = 30) -> float:
    """Seconds until the workers have caught up with what piled up while they started (less
    than a quarter second of input not yet committed): latency measured before that is the
    backlog's, not freshness at a steady rate."""
    started = time.monotonic()
    while time.monotonic() - started < give_up_after:
        lag = await consumer_lag(settings, settings.app_id, list(settings.input_topics))
        if sum(lag.values()) < rate / 4:
            break
        await asyncio.sleep(0.5)
    return time.monotonic() - started


async def measure(
    settings: Settings, rate: float, seconds: float, probe_every: float
) -> dict[str, Any]:
    api = create_api(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=2)
    await producer.start()
    stop = asyncio.Event()
    sent = [0]
    feeder = asyncio.create_task(background(producer, settings, rate, stop, sent))
    pending: dict[int, float] = {}
    samples: list[float] = []
    unanswered = 0
    try:
        await asyncio.sleep(5)  # warm up: the worker reaches its steady state
        catch_up = await caught_up(settings, rate)
        sent[0] = 0
        started = time.monotonic()
        next_probe, n = started, 0
        while True:
            now = time.monotonic()
            if now - started < seconds and now >= next_probe:
                order = probe_order(n)
                pending[n] = time.monotonic()
                await producer.send(
                    topic_for(order, settings), orjson.dumps(order), key=key_for(order)
                )
                n += 1
                next_probe += probe_every
            if pending:
                probes = sorted(pending)
                answers = await api.service.lookup_many(
                    [("email", f"fresh.probe.{p}@example.org") for p in probes]
                )
                seen = time.monotonic()
                for p, answer in zip(probes, answers, strict=True):
                    body = answer["answer"]
                    if body and body["existing_customer"]:
                        samples.append((seen - pending.pop(p)) * 1000)
            if now - started >= seconds and (not pending or now - started > seconds + 60):
                unanswered = len(pending)
                break
            await asyncio.sleep(0.002)
        elapsed = time.monotonic() - started
        achieved = sent[0] / elapsed
    finally:
        stop.set()
        await feeder
        await producer.stop()
        await api.close()
    return {
        "rate_target": rate,
        "caught_up_after_s": catch_up,
        "rate_achieved": achieved,
        "probes": len(samples) + unanswered,
        "unanswered_after_60s": unanswered,
        "p50_ms": percentile(samples, 0.5),
        "p99_ms": percentile(samples, 0.99),
        "max_ms": max(samples) if samples else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--probe-every", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    args = parser.parse_args(argv)
    settings = namespaced(Settings(), NAMESPACE, "bf")
    asyncio.run(reset(settings))
    children = start_workers(settings, args.workers, settings.stack_dir / "logs", "bench-fresh")
    try:
        time.sleep(3)
        for child in children:
            child.check()
        figures = asyncio.run(measure(settings, args.rate, args.seconds, args.probe_every))
        lag = asyncio.run(consumer_lag(settings, settings.app_id, list(settings.input_topics)))
    finally:
        for child in children:
            child.stop()
        asyncio.run(reset(settings))
    figures |= {"workers": args.workers, "lag_at_end": sum(lag.values())}
    table = markdown_table(
        [
            "ingest rate (target / achieved)",
            "caught up after",
            "probes",
            "p50 ms",
            "p99 ms",
            "max ms",
            "lag at end",
        ],
        [
            [
                f"{args.rate:.0f} / {figures['rate_achieved']:.0f} events/s",
                f"{figures['caught_up_after_s']:.1f} s",
                figures["probes"],
                f"{figures['p50_ms']:.1f}",
                f"{figures['p99_ms']:.1f}",
                f"{figures['max_ms']:.1f}",
                figures["lag_at_end"],
            ]
        ],
    )
    print(table)
    write_outputs(
        {"benchmark": "freshness", "machine": machine(), **figures},
        table,
        args.json,
        args.markdown,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
