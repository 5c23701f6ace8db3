"""Latency of sequential lookups: over HTTP (API process) and straight from Redis.

Seeds persons through the real stream handlers into Redis (key prefix ``bench``), starts
``bestand api`` as a child process, then times N sequential lookups of known identifiers over
one keep-alive HTTP connection, and the same lookups through the direct Redis read path.

    python bench/lookup_latency.py --persons 2000 --lookups 1000

Prints p50 / p90 / p99 / max in milliseconds and requests per second; writes nothing else.
Needs Redis at BESTAND_REDIS_URL (``bestand stack up`` starts one locally).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson

from bestand.api import create_api
from bestand.ops.metrics import WorkerMetrics
from bestand.settings import Settings
from bestand.stack import free_port
from bestand.store import Keys, connect
from bestand.stream.messages import Incoming
from bestand.stream.worker import processor_for

PREFIX = "bench"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, samples: list[float], wall: float) -> None:
    ms = [s * 1000 for s in samples]
    p50, p90, p99 = (percentile(ms, q) for q in (0.5, 0.9, 0.99))
    print(
        f"{name:28} n={len(ms):5}  p50={p50:6.3f} ms  p90={p90:6.3f} ms  p99={p99:6.3f} ms  "
        f"max={max(ms):7.3f} ms  mean={statistics.fmean(ms):6.3f} ms  {len(ms) / wall:8.0f} req/s"
    )


async def seed(settings: Settings, persons: int) -> list[str]:
    """Orders for ``persons`` people through the worker's processor; return their e-mails."""
    client = connect(settings.redis_url)
    keys = Keys(settings.redis_prefix)
    async for key in client.scan_iter(match=keys.pattern(), count=1000):
        await client.unlink(key)
    processor = processor_for(settings, client, WorkerMetrics())
    emails = []
    messages = []
    for n in range(persons):
        email = f"bench.person{n}@example.com"
        emails.append(email)
        event = {
            "type": "order_placed",
            "event_id": f"bench-{n}",
            "event_time": "2026-11-01T10:00:00Z",
            "order_id": f"bench-o{n}",
            "total": "19.90",
            "currency": "EUR",
            "channel": "web",
            "customer": {"guest": True, "email": email, "phone": f"+49151{10000000 + n}"},
        }
        messages.append(Incoming(settings.topic_orders, 0, n, None, orjson.dumps(event)))
    for start in range(0, len(messages), 500):
        await processor.process(messages[start : start + 500])
    await client.aclose()
    return emails


async def direct(settings: Settings, emails: list[str]) -> tuple[list[float], float]:
    api = create_api(settings)
    samples = []
    await api.service.lookup("email", emails[0])  # open the connection
    start = time.perf_counter()
    for email in emails:
        t0 = time.perf_counter()
        answer = await api.service.lookup("email", email)
        samples.append(time.perf_counter() - t0)
        assert answer["existing_customer"], answer
    wall = time.perf_counter() - start
    await api.close()
    return samples, wall


def over_http(port: int, key: str, emails: list[str]) -> tuple[list[float], float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    headers = {"Authorization": f"Bearer {key}"}
    samples = []
    start = time.perf_counter()
    for email in emails:
        t0 = time.perf_counter()
        conn.request("GET", f"/v1/lookup?email={email}", headers=headers)
        response = conn.getresponse()
        body = response.read()
        samples.append(time.perf_counter() - t0)
        if response.status != 200 or b'"existing_customer":true' not in body:
            raise SystemExit(f"unexpected answer {response.status}: {body!r}")
    wall = time.perf_counter() - start
    conn.close()
    return samples, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--lookups", type=int, default=1000)
    args = parser.parse_args()
    port = free_port()
    env = {**os.environ, "BESTAND_REDIS_PREFIX": PREFIX, "BESTAND_API_PORT": str(port)}
    settings = Settings(redis_prefix=PREFIX, api_port=port)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; Redis {settings.redis_url}"
    )
    t0 = time.perf_counter()
    emails = asyncio.run(seed(settings, args.persons))
    print(f"seeded {args.persons} persons through the handlers in {time.perf_counter() - t0:.1f} s")
    picks = random.Random(1).choices(emails, k=args.lookups)
    log = Path(".local/logs/bench-api.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        api = subprocess.Popen(
            [sys.executable, "-m", "bestand", "api", "--loglevel", "warning"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/health")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"API did not start; see {log}") from None
                time.sleep(0.1)
        key = settings.api_key()
        over_http(port, key, picks[:100])  # warm up
        report("HTTP GET /v1/lookup", *over_http(port, key, picks))
        report("direct (LookupService)", *asyncio.run(direct(settings, picks)))
    finally:
        api.terminate()
        api.wait(timeout=30)


if __name__ == "__main__":
    main()
