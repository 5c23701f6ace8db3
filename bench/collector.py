"""The collector under load: Segment batches of 100 calls to ``/v1/batch``, each answered only
once Kafka acknowledged its events (``acks=all``).

Starts ``bestand collector`` (one process) on the local stack in a namespace of its own, then:

- **held rate**: ``--senders`` clients post batches back to back for ``--seconds``; events/s
  accepted (answered 200) per collector process;
- **latency at a fixed rate**: batches sent on schedule (open loop) at ``--rate`` events/s;
  p50/p99/max from each batch's *scheduled* time to its answer, so a stalled collector
  cannot hide its queue.

The calls are the simulated shop's: its orders as "Order Completed", its page views as
``page``, its product views as "Product Viewed", its identifies as ``identify``.

    python bench/collector.py [--seconds 15] [--senders 8] [--rate 1000] [--json F] [--markdown F]

Goals (issue: fed by what shops already run): >= 5,000 events/s per collector process, and
p99 <= 50 ms at 1,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import orjson

from bestand.kafka.topics import ensure_topics
from bestand.namespace import environment, namespaced, reset
from bestand.settings import Settings
from bestand.simulate import simulate
from bestand.stack import free_port
from machine import machine, markdown_table, percentile, write_outputs

NAMESPACE = "bestand-bench-collector"
BATCH = 100


def segment_calls(persons: int) -> list[dict[str, Any]]:
    """The simulated shop's events as the Segment calls a shop's libraries would send."""
    calls = []
    for event in simulate(persons=persons, seed=7).events:
        kind = event["type"]
        common = {
            "messageId": f"{event['event_id']}-{uuid.uuid4().hex[:6]}",
            "timestamp": event["event_time"],
        }
        if kind == "order_placed":
            customer = event["customer"]
            user = None if customer.get("guest") else customer.get("customer_id")
            calls.append(
                {
                    **common,
                    "type": "track",
                    "event": "Order Completed",
                    "userId": user,
                    "anonymousId": event.get("anonymous_id") or f"a-{user}",
                    "context": {
                        "traits": {"email": customer.get("email"), "phone": customer.get("phone")}
                    },
                    "properties": {
                        "order_id": event["order_id"],
                        "total": event["total"],
                        "currency": event["currency"],
                    },
                }
            )
        elif kind == "page_view":
            calls.append(
                {
                    **common,
                    "type": "page",
                    "anonymousId": event["anonymous_id"],
                    "properties": {"url": event.get("url") or "https://shop.example/"},
                }
            )
        elif kind == "product_view":
            calls.append(
                {
                    **common,
                    "type": "track",
                    "event": "Product Viewed",
                    "anonymousId": event["anonymous_id"],
                    "properties": {"product_id": event["product_id"]},
                }
            )
        elif kind == "add_to_cart":
            calls.append(
                {
                    **common,
                    "type": "track",
                    "event": "Product Added",
                    "anonymousId": event["anonymous_id"],
                    "properties": {"product_id": event["product_id"], "quantity": 1},
                }
            )
        elif kind == "identify":
            ids = event["identifiers"]
            calls.append(
                {
                    **common,
                    "type": "identify",
                    "userId": ids.get("customer_id"),
                    "anonymousId": ids.get("anonymous_id"),
                    "traits": {"email": ids.get("email"), "phone": ids.get("phone")},
                }
            )
    return calls


def bodies(calls: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps({"batch": calls[i : i + BATCH]}) for i in range(0, len(calls), BATCH)]


async def held_rate(
    url: str, auth: str, batches: list[bytes], seconds: float, senders: int
) -> dict[str, Any]:
    """Batches posted back to back by ``senders`` clients; what was accepted per second."""
    feed = itertools.cycle(batches)
    accepted, refused, latencies = 0, 0, []
    deadline = time.perf_counter() + seconds

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal accepted, refused
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            answer = await client.post(url, content=next(feed), headers={"Authorization": auth})
            latencies.append(time.perf_counter() - started)
            if answer.status_code in (200, 400):
                accepted += answer.json()["forwarded"]
            else:
                refused += 1

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(sender(client) for _ in range(senders)))
    elapsed = time.perf_counter() - started
    return {
        "events_per_second": accepted / elapsed,
        "requests": len(latencies),
        "refused_requests": refused,
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p99_ms": 1000 * percentile(latencies, 0.99),
    }


async def at_rate(
    url: str, auth: str, batches: list[bytes], seconds: float, rate: float
) -> dict[str, Any]:
    """Batches sent on schedule; latency from each one's scheduled time to its answer."""
    interval = BATCH / rate
    count = int(seconds / interval)
    feed = itertools.cycle(batches)
    latencies: list[float] = []
    statuses: list[int] = []

    async def one(client: httpx.AsyncClient, due: float, body: bytes) -> None:
        await asyncio.sleep(max(due - time.perf_counter(), 0))
        answer = await client.post(url, content=body, headers={"Authorization": auth})
        latencies.append(time.perf_counter() - due)
        statuses.append(answer.status_code)

    start = time.perf_counter() + 0.2
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        await asyncio.gather(*(one(client, start + n * interval, next(feed)) for n in range(count)))
    return {
        "rate": rate,
        "batches": count,
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "max_ms": 1000 * max(latencies),
        "non_2xx": sum(1 for s in statuses if s not in (200, 400)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--persons", type=int, default=3000)
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    args = parser.parse_args(argv)
    settings = namespaced(Settings(), NAMESPACE, "bc")
    asyncio.run(reset(settings))
    asyncio.run(ensure_topics(settings))
    port, key = free_port(), f"bench-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        **environment(settings),
        "BESTAND_COLLECTOR_PORT": str(port),
        "BESTAND_COLLECTOR_WRITE_KEYS": key,
    }
    log = open(settings.stack_dir / "logs" / "bench-collector.log", "ab")  # noqa: SIM115
    collector = subprocess.Popen(
        [sys.executable, "-m", "bestand", "collector", "--loglevel", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1/batch"
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        batches = bodies(segment_calls(args.persons))
        print(f"{len(batches)} batches of {BATCH} Segment calls; collector on :{port}", flush=True)
        held = asyncio.run(held_rate(url, auth, batches, args.seconds, args.senders))
        print(f"  held: {held['events_per_second']:.0f} events/s", flush=True)
        fixed = asyncio.run(at_rate(url, auth, batches, args.seconds, args.rate))
        print(
            f"  at {args.rate:.0f}/s: p50 {fixed['p50_ms']:.1f} ms, p99 {fixed['p99_ms']:.1f} ms",
            flush=True,
        )
    finally:
        collector.terminate()
        collector.wait(timeout=30)
        log.close()
        asyncio.run(reset(settings))
    table = markdown_table(
        ["collector, one process, /v1/batch of 100, Kafka acks=all", "figure"],
        [
            [
                f"held, {args.senders} senders back to back",
                f"{held['events_per_second']:,.0f} events/s "
                f"(request p50 {held['p50_ms']:.1f} ms, p99 {held['p99_ms']:.1f} ms)",
            ],
            [
                f"at {args.rate:,.0f} events/s, open loop",
                f"p50 {fixed['p50_ms']:.1f} ms, "
                f"p99 {fixed['p99_ms']:.1f} ms, max {fixed['max_ms']:.1f} ms, "
                f"{fixed['non_2xx']} answers other than 200/400",
            ],
        ],
    )
    print(table)
    write_outputs(
        {"machine": machine(), "held": held, "fixed": fixed}, table, args.json, args.markdown
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
