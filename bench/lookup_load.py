"""Open-loop lookup load: HTTP API under vegeta, the in-process read path, Redis's own ceiling.

Seeds persons through the real stream handlers into Redis under a key prefix of its own,
builds a mix of lookup targets (mostly e-mails of known persons, some phones, customer ids
and cookies, about 20 % identifiers nobody has), then for each fixed rate:

- HTTP: starts ``bestand api --workers K`` and drives ``GET /v1/lookup`` with vegeta at a
  constant rate (open loop: requests go out on schedule whether or not earlier ones have
  answered). Latency is counted from each request's *scheduled* send time, so a stalled
  server cannot hide its queue (no coordinated omission); vegeta's own figures, counted from
  the actual send, are in the JSON too.
- direct: the same identifiers through ``LookupService`` in this process (uvloop), issued
  by an open-loop scheduler and timed from their scheduled time as well.

Then ``redis-benchmark`` GET (50 connections, without and with pipelining) and an ``HGET``
of one real lookup record against the same Redis give the ceiling our figures are compared
to.

    python bench/lookup_load.py [--persons N] [--rates 1000,5000,10000,20000] [--seconds S]
                                [--api-workers K] [--json FILE] [--markdown FILE]

Needs Redis at BESTAND_REDIS_URL (``bestand stack up``), ``redis-benchmark``, and Go for a
one-time ``go install`` of vegeta into ``.local/bin``. Exits non-zero with a message when
a step fails. Removes its keys at the end unless ``--keep`` (a kept data set of the same
size and seed is reused by the next run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import multiprocessing
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson
import uvloop
from redis.exceptions import RedisError

from cpu_profile import markdown as profile_markdown
from cpu_profile import record as record_cpu
from cpu_profile import summarize

ROOT = Path(__file__).resolve().parents[1]
VEGETA_MODULE = "github.com/tsenart/vegeta/v12"
VEGETA_VERSION = "v12.13.0"
VEGETA = ROOT / ".local" / "bin" / "vegeta"
SEED_VERSION = 1  # bump when the seeded data changes shape, so kept data sets are redone
HELD_SHARE = 0.95  # a rate is held when at least this share of it completes, without errors,
HELD_P99_MS = 100.0  # and with a p99 (from the scheduled time) at most this

FIRST_NAMES = (
    "jana",
    "anna",
    "lena",
    "laura",
    "julia",
    "sarah",
    "lisa",
    "marie",
    "sophie",
    "emma",
    "mia",
    "hannah",
    "lea",
    "katharina",
    "thomas",
    "michael",
    "andreas",
    "stefan",
    "christian",
    "markus",
    "daniel",
    "jan",
    "tobias",
    "lukas",
    "felix",
    "paul",
    "jonas",
    "leon",
    "maximilian",
    "alexander",
    "sebastian",
    "florian",
    "david",
    "simon",
)
LAST_NAMES = (
    "schmidt",
    "mueller",
    "schneider",
    "fischer",
    "weber",
    "meyer",
    "wagner",
    "becker",
    "schulz",
    "hoffmann",
    "koch",
    "richter",
    "klein",
    "wolf",
    "schroeder",
    "neumann",
    "schwarz",
    "zimmermann",
    "braun",
    "krueger",
    "hofmann",
    "hartmann",
    "lange",
    "schmitt",
    "werner",
    "krause",
    "meier",
    "lehmann",
    "schmid",
    "schulze",
    "maier",
    "koehler",
    "herrmann",
)
DOMAINS = (
    ("gmail.com", 30),
    ("web.de", 20),
    ("gmx.de", 18),
    ("t-online.de", 10),
    ("outlook.com", 8),
    ("yahoo.de", 5),
    ("icloud.com", 5),
    ("posteo.de", 4),
)
MOBILE_PREFIXES = ("151", "152", "157", "160", "162", "170", "171", "172", "175", "176", "177")

#: Share of each kind of lookup target; known ones name seeded persons.
MIX: dict[str, float] = {
    "email": 0.56,
    "phone": 0.08,
    "customer_id": 0.08,
    "anonymous_id": 0.08,
    "unknown_email": 0.12,
    "unknown_phone": 0.03,
    "unknown_customer_id": 0.02,
    "unknown_anonymous_id": 0.03,
}


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and why."""


# --- the seeded shop --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    """One seeded person: identifiers and an order history."""

    index: int
    email: str
    phone: str | None
    customer_id: str | None
    cookie: str | None
    orders: tuple[int, ...]  # days ago, oldest first
    channel: str
    cancelled_first: bool


def _subscriber(index: int, salt: int) -> str:
    """An 8-digit subscriber number unique per ``index`` (a bijection mod 90,000,000)."""
    return str((index * 7919 + salt) % 90_000_000 + 10_000_000)


def make_person(seed: int, index: int) -> Person:
    """Person ``index`` of the shop ``seed``: the same every time."""
    from bestand.identity.junk import fake_phone_reason

    rng = random.Random(seed * 1_000_003 + index)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    domain = rng.choices([d for d, _ in DOMAINS], [w for _, w in DOMAINS])[0]
    separator = rng.choice((".", "_", ""))
    email = f"{first}{separator}{last}{index}@{domain}"
    phone = None
    if rng.random() < 0.6:
        candidate = f"+49{MOBILE_PREFIXES[index % len(MOBILE_PREFIXES)]}{_subscriber(index, 1234)}"
        phone = None if fake_phone_reason(candidate) else candidate
    channel = rng.choices(("web", "app", "store"), (70, 10, 20))[0]
    customer_id = f"K{100_000 + index}" if rng.random() < 0.55 else None
    cookie = None if channel == "store" else f"{rng.getrandbits(128):032x}"
    roll = rng.random()
    count = 1 if roll < 0.70 else 2 if roll < 0.88 else rng.randint(3, 6)
    days = tuple(sorted((rng.randint(1, 700) for _ in range(count)), reverse=True))
    cancelled = count == 1 and rng.random() < 0.08
    return Person(index, email, phone, customer_id, cookie, days, channel, cancelled)


def person_events(person: Person, now: float) -> list[dict[str, Any]]:
    """The orders topic's events of one person (placed, and a cancellation for a few)."""
    events: list[dict[str, Any]] = []
    for n, days_ago in enumerate(person.orders):
        placed = now - days_ago * 86400 - 3600
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(placed))
        customer: dict[str, Any] = {"email": person.email}
        if person.customer_id:
            customer["customer_id"] = person.customer_id
        else:
            customer["guest"] = True
        if person.phone:
            customer["phone"] = person.phone
        event: dict[str, Any] = {
            "type": "order_placed",
            "event_id": f"lk-{person.index}-{n}",
            "event_time": at,
            "order_id": f"LK{person.index}-{n}",
            "total": f"{19.9 + (person.index * 13 + n * 7) % 180:.2f}",
            "currency": "EUR",
            "channel": person.channel,
            "customer": customer,
        }
        if person.cookie:
            event["anonymous_id"] = person.cookie
        events.append(event)
        if person.cancelled_first:
            events.append(
                {
                    "type": "order_cancelled",
                    "event_id": f"lk-{person.index}-{n}-c",
                    "event_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(placed + 1800)),
                    "order_id": f"LK{person.index}-{n}",
                }
            )
    return events


async def _seed_slice(
    redis_url: str, prefix: str, seed: int, indices: range, cluster: bool = False
) -> int:
    """Send every event of the persons in ``indices`` through the worker's processor."""
    from redis.asyncio.cluster import RedisCluster

    from bestand.ops.metrics import WorkerMetrics
    from bestand.settings import Settings
    from bestand.store.router import Router, connect_store
    from bestand.stream.messages import Incoming
    from bestand.stream.worker import processor_for

    settings = Settings(redis_url=redis_url, redis_prefix=prefix, redis_cluster=cluster)
    client = connect_store(redis_url, cluster, max_connections=128)
    router = None
    if cluster:
        router = Router(cast(RedisCluster, client), redis_url)
        await router.start()
    processor = processor_for(settings, client, WorkerMetrics(), router=router)
    now = time.time()
    sent = 0
    batch: list[Incoming] = []

    async def flush() -> None:
        nonlocal sent
        out = await processor.process(batch)
        rejected = [o for o in out if o.destination == "dlq"]
        if rejected:
            raise BenchError(f"seed events were rejected: {rejected[:3]}")
        sent += len(batch)
        batch.clear()

    try:
        for index in indices:
            for event in person_events(make_person(seed, index), now):
                raw = orjson.dumps(event)
                batch.append(Incoming(settings.topic_orders, 0, sent + len(batch), None, raw))
                if len(batch) >= 1000:
                    await flush()
        if batch:
            await flush()
    finally:
        await (client.aclose() if router is None else router.aclose())
    return sent


def _seed_process(
    redis_url: str, prefix: str, seed: int, indices: range, cluster: bool
) -> tuple[int, str]:
    """One seeding process: events sent, and what went wrong (empty when nothing)."""
    try:
        return uvloop.run(_seed_slice(redis_url, prefix, seed, indices, cluster)), ""
    except Exception as exc:  # noqa: BLE001 - reported to the parent as text, which always unpickles
        return 0, f"{type(exc).__name__}: {exc}"


async def _delete_prefix(redis_url: str, prefix: str, cluster: bool = False) -> int:
    from bestand.store.router import connect_store

    client = connect_store(redis_url, cluster)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}:*", count=2000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return deleted


async def _marker(
    redis_url: str, prefix: str, value: str | None = None, cluster: bool = False
) -> str | None:
    from bestand.store.router import connect_store

    client = connect_store(redis_url, cluster)
    try:
        key = f"{prefix}:bench:seeded"
        if value is not None:
            await client.set(key, value)
            return value
        raw = await client.get(key)
        return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)
    finally:
        await client.aclose()


def seed(
    redis_url: str,
    prefix: str,
    persons: int,
    seed_value: int,
    processes: int,
    cluster: bool = False,
) -> dict[str, Any]:
    """Seed the shop unless the same one is already there; report what was done."""
    wanted = f"v{SEED_VERSION} persons={persons} seed={seed_value}"
    if asyncio.run(_marker(redis_url, prefix, cluster=cluster)) == wanted:
        return {"persons": persons, "reused": True, "seconds": 0.0, "events": None}
    asyncio.run(_delete_prefix(redis_url, prefix, cluster))
    started = time.perf_counter()
    slices = [range(p, persons, processes) for p in range(processes)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [
            pool.submit(_seed_process, redis_url, prefix, seed_value, s, cluster) for s in slices
        ]
        outcomes = [f.result() for f in futures]
    problems = [problem for _, problem in outcomes if problem]
    if problems:
        raise BenchError(f"seeding failed: {problems[0]}")
    events = sum(sent for sent, _ in outcomes)
    asyncio.run(_marker(redis_url, prefix, wanted, cluster))
    seconds = time.perf_counter() - started
    return {"persons": persons, "reused": False, "seconds": round(seconds, 1), "events": events}


# --- lookup targets ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """One lookup: the query parameter, its value, and whether a person should be found."""

    param: str
    value: str
    known: bool


def _national(phone: str) -> str:
    """``+49151...`` as a German would type it: ``0151 ...``."""
    rest = phone.removeprefix("+49")
    return f"0{rest[:3]} {rest[3:]}"


def build_targets(persons: Sequence[Person], count: int, rng: random.Random) -> list[Target]:
    """``count`` lookups in the proportions of :data:`MIX`, shuffled."""
    with_phone = [p for p in persons if p.phone]
    with_id = [p for p in persons if p.customer_id]
    with_cookie = [p for p in persons if p.cookie]
    out: list[Target] = []
    for kind, share in MIX.items():
        for n in range(round(count * share)):
            if kind == "email":
                email = rng.choice(persons).email
                out.append(Target("email", email.title() if n % 10 == 0 else email, True))
            elif kind == "phone":
                phone = str(rng.choice(with_phone).phone)
                out.append(Target("phone", _national(phone) if n % 2 else phone, True))
            elif kind == "customer_id":
                out.append(Target("customer_id", str(rng.choice(with_id).customer_id), True))
            elif kind == "anonymous_id":
                out.append(Target("anonymous_id", str(rng.choice(with_cookie).cookie), True))
            elif kind == "unknown_email":
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                out.append(Target("email", f"{first}.{last}.{n}@nobody-here.de", False))
            elif kind == "unknown_phone":
                subscriber = _subscriber(n + len(persons) + 1, 4321)
                out.append(Target("phone", f"+49159{subscriber}", False))
            elif kind == "unknown_customer_id":
                out.append(Target("customer_id", f"Z{n:09d}", False))
            else:
                out.append(Target("anonymous_id", f"{rng.getrandbits(128):032x}", False))
    rng.shuffle(out)
    return out


def mix_summary(targets: Sequence[Target]) -> dict[str, float]:
    """Share of each parameter, known and unknown, in the targets."""
    counts = Counter(f"{t.param}{'' if t.known else ' (unknown)'}" for t in targets)
    return {name: round(n / len(targets), 3) for name, n in sorted(counts.items())}


# --- percentiles and results ------------------------------------------------------------------


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted samples."""
    if not ordered:
        return math.nan
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


@dataclass
class RateResult:
    """One path at one fixed rate."""

    path: str
    rate: int
    seconds: float
    requests: int
    sent_per_s: float
    done_per_s: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: int
    error_kinds: dict[str, int] = field(default_factory=dict)
    held: bool = False
    machine_busy: float | None = None  # share of all cores busy during the run
    extra: dict[str, float] = field(default_factory=dict)


def _latency_figures(latencies_s: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_s)
    return {
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
        "p999_ms": round(percentile(ordered, 0.999) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3) if ordered else math.nan,
    }


class CpuMeter:
    """Busy share of the whole machine between ``start`` and ``stop`` (from /proc/stat)."""

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[int, int] | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except OSError:
            return None
        values = [int(v) for v in fields]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values), idle

    def busy(self) -> float | None:
        """Share of CPU time that was not idle since the meter was made."""
        end = self._read()
        if self._start is None or end is None or end[0] == self._start[0]:
            return None
        total, idle = end[0] - self._start[0], end[1] - self._start[1]
        return round(1 - idle / total, 3)


def group_cpu_seconds(pgid: int) -> float:
    """User and system CPU time of every live process in process group ``pgid``."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # pgrp; utime and stime are fields 14 and 15 of stat
            total += int(fields[11]) + int(fields[12])
    return total / ticks


# --- HTTP with vegeta -------------------------------------------------------------------------


def ensure_vegeta() -> Path:
    """vegeta at the pinned version in ``.local/bin``; ``go install`` it when missing."""
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if VEGETA.exists():
        if not Path(go).exists():
            return VEGETA
        info = subprocess.run(
            [go, "version", "-m", str(VEGETA)], capture_output=True, text=True, check=False
        )
        if f"{VEGETA_MODULE}\t{VEGETA_VERSION}" in info.stdout:
            return VEGETA
    if not Path(go).exists():
        raise BenchError(f"vegeta is not at {VEGETA} and Go is not installed to build it")
    VEGETA.parent.mkdir(parents=True, exist_ok=True)
    print(f"installing vegeta {VEGETA_VERSION} into {VEGETA.parent} ...", flush=True)
    done = subprocess.run(
        [go, "install", f"{VEGETA_MODULE}@{VEGETA_VERSION}"],
        env={**os.environ, "GOBIN": str(VEGETA.parent)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not VEGETA.exists():
        raise BenchError(f"go install of vegeta failed:\n{done.stderr.strip()[-2000:]}")
    return VEGETA


def write_vegeta_targets(path: Path, port: int, targets: Sequence[Target]) -> None:
    """Targets in vegeta's HTTP format; the key goes in as a header flag."""
    base = f"http://127.0.0.1:{port}/v1/lookup?"
    with path.open("w") as out:
        for t in targets:
            out.write(f"GET {base}{t.param}={urllib.parse.quote(t.value, safe='')}\n\n")


def _error_kind(code: int, error: str) -> str:
    if "Timeout" in error or "deadline exceeded" in error:
        return "timeout (5 s)"
    if code == 0 or error:
        return error.rsplit(": ", 1)[-1][:80] or "transport error"
    return f"HTTP {code}"


def http_rate(
    vegeta: Path,
    targets_file: Path,
    key: str,
    rate: int,
    seconds: float,
    max_workers: int,
    workdir: Path,
    api_group: int,
) -> RateResult:
    """One vegeta attack at ``rate``; latencies from the scheduled send time."""
    results = workdir / f"http-{rate}.bin"
    meter = CpuMeter()
    api_cpu = group_cpu_seconds(api_group)
    attack = subprocess.run(
        [
            str(vegeta),
            "attack",
            f"-targets={targets_file}",
            "-format=http",
            f"-rate={rate}/1s",
            f"-duration={seconds}s",
            "-timeout=5s",
            f"-max-workers={max_workers}",
            f"-header=Authorization: Bearer {key}",
            f"-output={results}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    busy = meter.busy()
    api_cpu = group_cpu_seconds(api_group) - api_cpu
    if attack.returncode != 0:
        raise BenchError(f"vegeta attack at {rate}/s failed: {attack.stderr.strip()[-1000:]}")
    report = subprocess.run(
        [str(vegeta), "report", "-type=json", str(results)],
        capture_output=True,
        check=False,
    )
    if report.returncode != 0:
        raise BenchError(f"vegeta report failed: {report.stderr.decode()[-1000:]}")
    summary = orjson.loads(report.stdout)
    encoded = workdir / f"http-{rate}.csv"
    encode = subprocess.run(
        [str(vegeta), "encode", "-to=csv", f"-output={encoded}", str(results)],
        capture_output=True,
        text=True,
        check=False,
    )
    if encode.returncode != 0:
        raise BenchError(f"vegeta encode failed: {encode.stderr.strip()[-1000:]}")
    from_schedule: list[float] = []
    from_send: list[float] = []
    errors: Counter[str] = Counter()
    with encoded.open(newline="") as handle:
        # timestamp (ns), code, latency (ns), bytes out, bytes in, error, body, name, seq, ...
        rows = [
            (int(row[0]), int(row[1]), int(row[2]), int(row[8]), row[5])
            for row in csv.reader(handle)
        ]
    results.unlink()
    encoded.unlink()
    if not rows:
        raise BenchError(f"vegeta recorded no request at {rate}/s")
    began = min(r[0] for r in rows)
    last_done = began
    for sent_at, code, latency, seq, error in rows:
        due = began + seq * 1e9 / rate
        done_at = sent_at + latency
        last_done = max(last_done, done_at)
        from_schedule.append(max(done_at - due, latency) / 1e9)
        from_send.append(latency / 1e9)
        if code != 200 or error:
            errors[_error_kind(code, error)] += 1
    ok = len(rows) - sum(errors.values())
    done_per_s = ok / ((last_done - began) / 1e9)
    figures = _latency_figures(from_schedule)
    own = _latency_figures(from_send)
    return RateResult(
        path="http",
        rate=rate,
        seconds=seconds,
        requests=len(rows),
        sent_per_s=round(float(summary["rate"]), 1),
        done_per_s=round(done_per_s, 1),
        errors=sum(errors.values()),
        error_kinds=dict(errors.most_common(5)),
        held=not errors and done_per_s >= HELD_SHARE * rate and figures["p99_ms"] <= HELD_P99_MS,
        machine_busy=busy,
        extra={
            "vegeta_p50_ms": own["p50_ms"],
            "vegeta_p99_ms": own["p99_ms"],
            "vegeta_p999_ms": own["p999_ms"],
            "vegeta_throughput": round(float(summary["throughput"]), 1),
            "cpu_us_per_lookup": round(api_cpu / len(rows) * 1e6, 1),
        },
        **figures,
    )


@contextlib.contextmanager
def running_api(
    workers: int, port: int, env: dict[str, str], log: Path, server: str = "uvicorn"
) -> Iterator[int]:
    """``bestand api`` as a child process in its own process group, until the block ends."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bestand",
                "api",
                "--workers",
                str(workers),
                "--port",
                str(port),
                "--loglevel",
                "warning",
                "--server",
                server,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if api.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise BenchError(f"bestand api exited with {api.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"bestand api did not become ready in 60 s; see {log}")
            time.sleep(0.2)
        yield api.pid  # the process group of the API and its workers
    finally:
        if api.poll() is None:
            api.send_signal(signal.SIGTERM)
            try:
                api.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(api.pid, signal.SIGKILL)
                api.wait(timeout=10)


def probe_http(port: int, key: str, targets: Sequence[Target]) -> None:
    """Check answers before loading: known identifiers are known, unknown ones are not."""
    for t in targets:
        url = f"http://127.0.0.1:{port}/v1/lookup?{t.param}={urllib.parse.quote(t.value, safe='')}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                answer = orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise BenchError(f"lookup {t.param}={t.value!r} answered {exc.code}") from None
        if answer.get("known") is not t.known:
            raise BenchError(f"lookup {t.param}={t.value!r}: expected known={t.known}: {answer}")


# --- direct, in process -----------------------------------------------------------------------

Lookup = Callable[[str, str], Awaitable[object]]


async def open_loop(
    lookup: Lookup, targets: Sequence[Target], rate: int, seconds: float, max_in_flight: int
) -> RateResult:
    """Issue lookups at ``rate`` on a fixed schedule; time each from its scheduled start."""
    count = max(1, round(rate * seconds))
    latencies = [math.nan] * count
    lags = [0.0] * count
    errors: Counter[str] = Counter()
    in_flight = 0
    slot_free = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()
    last_done = 0.0

    async def one(n: int, due: float) -> None:
        nonlocal in_flight, last_done
        target = targets[n % len(targets)]
        try:
            await lookup(target.param, target.value)
        except (RedisError, OSError, TimeoutError) as exc:
            errors[type(exc).__name__] += 1
        now = time.perf_counter()
        latencies[n] = now - due
        last_done = max(last_done, now)
        in_flight -= 1
        slot_free.set()

    meter = CpuMeter()
    cpu = time.process_time()
    began = time.perf_counter() + 0.005
    issued = 0
    while issued < count:
        now = time.perf_counter()
        due = began + issued / rate
        if now < due:
            wait = due - now
            if in_flight == 0 and wait < 0.005:
                # Nothing to serve meanwhile: the thread's own sleep is precise to some
                # tens of microseconds, the loop's timers only to about a millisecond.
                time.sleep(wait)  # noqa: ASYNC251
            else:
                # Sleep on the loop until just before, then pass through it (serving
                # replies) until the time has come.
                await asyncio.sleep(wait - 0.0012 if wait > 0.0015 else 0)
            continue
        if in_flight >= max_in_flight:
            slot_free.clear()
            await slot_free.wait()
            continue
        while issued < count and in_flight < max_in_flight:
            due = began + issued / rate
            if due > now:
                break
            lags[issued] = now - due
            in_flight += 1
            task = asyncio.create_task(one(issued, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            issued += 1
    last_sent = time.perf_counter()
    while tasks:
        await asyncio.gather(*list(tasks))
    busy = meter.busy()
    cpu = time.process_time() - cpu
    done = count - sum(errors.values())
    done_per_s = done / (last_done - began) if last_done > began else 0.0
    figures = _latency_figures(latencies)
    lag = sorted(lags)
    return RateResult(
        path="direct",
        rate=rate,
        seconds=seconds,
        requests=count,
        sent_per_s=round((count - 1) / max(last_sent - began, 1e-9), 1),
        done_per_s=round(done_per_s, 1),
        errors=sum(errors.values()),
        error_kinds=dict(errors.most_common(5)),
        held=not errors and done_per_s >= HELD_SHARE * rate and figures["p99_ms"] <= HELD_P99_MS,
        machine_busy=busy,
        extra={
            "schedule_lag_p50_ms": round(percentile(lag, 0.5) * 1000, 3),
            "schedule_lag_p99_ms": round(percentile(lag, 0.99) * 1000, 3),
            "cpu_us_per_lookup": round(cpu / count * 1e6, 1),
        },
        **figures,
    )


async def direct_rates(
    targets: Sequence[Target], rates: Sequence[int], seconds: float, max_in_flight: int
) -> list[RateResult]:
    """The in-process read path at each rate, with the API's own service object."""
    from bestand.api import create_api
    from bestand.settings import Settings

    api = create_api(Settings())
    out = []
    try:
        lookup = api.service.lookup
        for t in targets[:500]:  # open connections, read value thresholds, check answers
            answer = await lookup(t.param, t.value)
            if answer["known"] is not t.known:
                raise BenchError(f"direct lookup {t.param}={t.value!r}: expected {t.known}")
        for rate in rates:
            result = await open_loop(lookup, targets, rate, seconds, max_in_flight)
            print_row(result)
            out.append(result)
            await asyncio.sleep(1)
    finally:
        await api.close()
    return out


# --- redis-benchmark --------------------------------------------------------------------------


def _holder(redis_url: str, key: str) -> tuple[str, int]:
    """Host and port of the cluster master that holds ``key``."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        slot = int(client.execute_command("CLUSTER KEYSLOT", key))
        for first, last, master, *_ in client.execute_command("CLUSTER SLOTS"):
            if int(first) <= slot <= int(last):
                return master[0].decode(), int(master[1])
    finally:
        client.close()
    raise BenchError(f"no master holds the slot of {key}")


def redis_benchmark(
    redis_url: str, requests: int, record: tuple[str, str], cluster: bool = False
) -> list[dict[str, Any]]:
    """GET with 50 connections, the same pipelined 16 deep, and HGET of a lookup record
    (``record``: its bucket and field); on a cluster, over its masters."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        raise BenchError("redis-benchmark is not installed (Debian package redis-tools)")
    url = urllib.parse.urlsplit(redis_url)
    if url.scheme != "redis":
        raise BenchError(f"redis-benchmark needs a redis:// URL, not {url.scheme}://")
    base = [binary, "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 6379), "--csv"]
    if url.password:
        base += ["-a", urllib.parse.unquote(url.password)]
    db = url.path.strip("/")
    if db and db != "0":
        base += ["--dbnum", db]
    if cluster:
        base.append("--cluster")
    runs = [
        ("GET, 50 connections", ["-t", "get", "-n", str(requests), "-c", "50"]),
        (
            "GET, 50 connections, pipeline 16",
            ["-t", "get", "-n", str(requests * 10), "-c", "50", "-P", "16"],
        ),
        ("HGET lookup record, 50 connections", ["-n", str(requests), "-c", "50"]),
    ]
    out = []
    for name, args in runs:
        command = base + args + (["HGET", *record] if "lookup record" in name else [])
        if cluster and "lookup record" in name:  # a command of its own goes to one node
            host, port = _holder(redis_url, record[0])
            command = [binary, "-h", host, "-p", str(port), "--csv", *command[len(base) :]]
            if url.password:
                command += ["-a", urllib.parse.unquote(url.password)]
        meter = CpuMeter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BenchError(f"redis-benchmark ({name}) failed: {done.stderr.strip()[-1000:]}")
        # ``--cluster`` prints the masters before the CSV: only quoted lines are the CSV.
        lines = (line for line in done.stdout.splitlines() if line.startswith('"'))
        rows = list(csv.DictReader(lines))
        if not rows:
            raise BenchError(f"redis-benchmark ({name}) printed no result: {done.stdout!r}")
        row = rows[-1]
        out.append(
            {
                "name": name,
                "requests": int(args[args.index("-n") + 1]),
                "rps": float(row["rps"]),
                "p50_ms": float(row["p50_latency_ms"]),
                "p99_ms": float(row["p99_latency_ms"]),
                "max_ms": float(row["max_latency_ms"]),
                "machine_busy": meter.busy(),
            }
        )
    return out


# --- output -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "vegeta": VEGETA_VERSION,
    }


def loadavg() -> list[float]:
    """1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


HEADER = (
    f"{'path':6} {'rate/s':>7} {'sent/s':>8} {'done/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
    f"{'p99.9 ms':>9} {'max ms':>9} {'errors':>7} {'held':>4} {'busy':>5} {'cpu us':>7}"
)


def print_row(r: RateResult) -> None:
    """One line of the table, as soon as a rate is done."""
    busy = "-" if r.machine_busy is None else f"{r.machine_busy:.0%}"
    print(
        f"{r.path:6} {r.rate:7d} {r.sent_per_s:8.0f} {r.done_per_s:8.0f} {r.p50_ms:8.3f} "
        f"{r.p99_ms:8.3f} {r.p999_ms:9.3f} {r.max_ms:9.3f} {r.errors:7d} "
        f"{'yes' if r.held else 'no':>4} {busy:>5} {r.extra.get('cpu_us_per_lookup', 0):7.0f}",
        flush=True,
    )


def best_held(rows: Sequence[RateResult]) -> float | None:
    """Lookups per second at the highest rate that was held."""
    held = [r.done_per_s for r in rows if r.held]
    return max(held) if held else None


def ratios(report: dict[str, Any]) -> dict[str, Any]:
    """Our held lookups/s against redis-benchmark's GET rates."""
    bench = {row["name"]: row["rps"] for row in report["redis_benchmark"]}
    get50 = bench.get("GET, 50 connections")
    get16 = bench.get("GET, 50 connections, pipeline 16")
    out: dict[str, Any] = {}
    for path in ("http", "direct"):
        rows = [RateResult(**r) for r in report[path]]
        held = best_held(rows)
        peak = max((r.done_per_s for r in rows), default=None)
        out[path] = {
            "highest_held_per_s": held,
            "peak_done_per_s": peak,
            "held_vs_get_c50": None if not held or not get50 else round(held / get50, 3),
            "held_vs_get_c50_p16": None if not held or not get16 else round(held / get16, 4),
            "peak_vs_get_c50": None if not peak or not get50 else round(peak / get50, 3),
        }
    return out


def compare_stores(single: dict[str, Any], cluster: dict[str, Any]) -> str:
    """p50 and p99 per path and rate on one Redis and on the cluster, with their ratio."""
    lines = [
        "",
        "| path | rate/s | one Redis p50 / p99 ms | cluster p50 / p99 ms | p99 cluster / one |",
        "|---|--:|--:|--:|--:|",
    ]
    for path in ("http", "direct"):
        theirs = {row["rate"]: row for row in cluster[path]}
        for row in single[path]:
            other = theirs.get(row["rate"])
            if other is None:
                continue
            ratio = other["p99_ms"] / row["p99_ms"] if row["p99_ms"] else float("nan")
            lines.append(
                f"| {path} | {row['rate']} | {row['p50_ms']:.3f} / {row['p99_ms']:.3f} | "
                f"{other['p50_ms']:.3f} / {other['p99_ms']:.3f} | {ratio:.2f} |"
            )
    return "\n".join(lines) + "\n"


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    m, c = report["machine"], report["conditions"]
    lines = [
        "# Lookup load",
        "",
        f"{m['nproc']} cores ({m['cpu_model']}), Python {m['python']}, vegeta {m['vegeta']}; "
        f"{report['config']['persons']} persons seeded, {report['config']['seconds']} s per "
        f"rate, {report['config']['api_workers']} API process(es). Load average before "
        f"{c['loadavg_before']}, after {c['loadavg_after']}.",
        "",
        "Latencies count from each request's scheduled send time (open loop). *held*: at "
        f"least {HELD_SHARE:.0%} of the rate completed, without errors, p99 at most "
        f"{HELD_P99_MS:.0f} ms. *busy*: share of all cores in use on the machine during the "
        "run. *cpu µs*: CPU time of the API processes (http) or of this process, scheduler "
        "included (direct), per lookup.",
        "",
        "Lookup mix: " + ", ".join(f"{k} {v:.0%}" for k, v in report["mix"].items()) + ".",
        "",
        "| path | rate/s | sent/s | done/s | p50 ms | p99 ms | p99.9 ms | max ms | errors "
        "| held | busy | cpu µs |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|",
    ]
    for row in report["http"] + report["direct"]:
        busy = "-" if row["machine_busy"] is None else f"{row['machine_busy']:.0%}"
        errors = str(row["errors"])
        if row["error_kinds"]:
            errors += " (" + ", ".join(f"{k}: {v}" for k, v in row["error_kinds"].items()) + ")"
        lines.append(
            f"| {row['path']} | {row['rate']} | {row['sent_per_s']:.0f} | "
            f"{row['done_per_s']:.0f} | {row['p50_ms']:.3f} | {row['p99_ms']:.3f} | "
            f"{row['p999_ms']:.3f} | {row['max_ms']:.3f} | {errors} | "
            f"{'yes' if row['held'] else 'no'} | {busy} | "
            f"{row['extra'].get('cpu_us_per_lookup', 0):.0f} |"
        )
    lines += [
        "",
        "| redis-benchmark | requests | per s | p50 ms | p99 ms | max ms |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for row in report["redis_benchmark"]:
        lines.append(
            f"| {row['name']} | {row['requests']} | {row['rps']:.0f} | {row['p50_ms']:.3f} | "
            f"{row['p99_ms']:.3f} | {row['max_ms']:.3f} |"
        )
    lines += ["", "| path | highest held /s | vs GET c50 | vs GET c50 P16 |", "|---|--:|--:|--:|"]
    for path, r in report["ratios"].items():
        held = "-" if r["highest_held_per_s"] is None else f"{r['highest_held_per_s']:.0f}"
        vs50 = "-" if r["held_vs_get_c50"] is None else f"{r['held_vs_get_c50']:.1%}"
        vs16 = "-" if r["held_vs_get_c50_p16"] is None else f"{r['held_vs_get_c50_p16']:.2%}"
        lines.append(f"| {path} | {held} | {vs50} | {vs16} |")
    if report.get("profile_http"):
        profile = report["profile_http"]
        lines += ["", profile_markdown(profile, f"API process at {profile['rate']} lookups/s")]
    return "\n".join(lines) + "\n"


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--persons", type=int, default=20_000, help="persons to seed through the stream handlers"
    )
    parser.add_argument("--rates", default="1000,5000,10000,20000", help="comma separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="per rate and path")
    parser.add_argument("--api-workers", type=int, default=1, help="bestand api --workers")
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("--paths", default="http,direct", help="which of http,direct to run")
    parser.add_argument("--prefix", default="benchlk", help="Redis key prefix of this run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--targets", type=int, default=100_000, help="distinct lookups")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=2048,
        help="most requests outstanding at once (vegeta's -max-workers; the direct path's cap)",
    )
    parser.add_argument("--redis-benchmark-requests", type=int, default=200_000)
    parser.add_argument("--seed-processes", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--keep", action="store_true", help="leave the seeded keys for reuse")
    parser.add_argument(
        "--cluster-url",
        help="a node of a Redis Cluster: run everything again there and compare "
        "(bestand stack up --redis-cluster 3 starts one at redis://127.0.0.1:7001/0)",
    )
    parser.add_argument(
        "--profile", type=float, default=0, help="seconds of py-spy on the API at the first rate"
    )
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    args = parser.parse_args(argv)
    try:
        args.rate_list = [int(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--rates must be integers separated by commas, not {args.rates!r}")
    args.path_list = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not args.rate_list or min(args.rate_list) <= 0:
        parser.error("--rates needs at least one positive rate")
    if set(args.path_list) - {"http", "direct"} or not args.path_list:
        parser.error("--paths takes http, direct or both")
    if args.persons < 100 or args.seconds <= 0 or args.api_workers < 1:
        parser.error("--persons must be at least 100, --seconds and --api-workers positive")
    if not args.prefix or args.prefix == "b":
        parser.error("--prefix must be a prefix of its own, not the service's 'b'")
    return args


def run(args: argparse.Namespace, cluster: bool = False) -> dict[str, Any]:
    """Every step, on one Redis or (``cluster``) on the Redis Cluster of ``--cluster-url``;
    returns the report."""
    from bestand.settings import Settings
    from bestand.stack import free_port

    key = secrets.token_urlsafe(24)
    os.environ["BESTAND_REDIS_PREFIX"] = args.prefix
    os.environ["BESTAND_API_KEYS"] = f"{key}:admin"
    if cluster:  # the API processes and the direct path read these too
        os.environ["BESTAND_REDIS_URL"] = args.cluster_url
        os.environ["BESTAND_REDIS_CLUSTER"] = "true"
    settings = Settings()
    redis_url = settings.redis_url
    print(f"--- {'a Redis Cluster' if cluster else 'one Redis'} at {redis_url.split('@')[-1]}",
          flush=True)  # fmt: skip
    report: dict[str, Any] = {
        "machine": machine(),
        "conditions": {"loadavg_before": loadavg()},
        "config": {
            "persons": args.persons,
            "rates": args.rate_list,
            "seconds": args.seconds,
            "api_workers": args.api_workers,
            "server": args.server,
            "max_in_flight": args.max_in_flight,
            "prefix": args.prefix,
            "redis_url": redis_url.split("@")[-1],
            "cluster": cluster,
        },
        "http": [],
        "direct": [],
    }
    vegeta = ensure_vegeta() if "http" in args.path_list else None
    print(
        f"{report['machine']['nproc']} cores, {report['machine']['cpu_model']}, Python "
        f"{report['machine']['python']}; load average {report['conditions']['loadavg_before']}",
        flush=True,
    )
    try:
        seeded = seed(redis_url, args.prefix, args.persons, args.seed, args.seed_processes, cluster)
    except RedisError as exc:
        raise BenchError(f"seeding failed, Redis at {redis_url}: {exc}") from None
    report["seed"] = seeded
    if seeded["reused"]:
        print(f"reusing the {args.persons} persons kept under '{args.prefix}:'", flush=True)
    else:
        print(
            f"seeded {args.persons} persons ({seeded['events']} events) through the stream "
            f"handlers in {seeded['seconds']} s",
            flush=True,
        )
    persons = [make_person(args.seed, i) for i in range(args.persons)]
    targets = build_targets(persons, args.targets, random.Random(args.seed))
    report["mix"] = mix_summary(targets)

    with tempfile.TemporaryDirectory(prefix="lookup-load-") as tmp:
        workdir = Path(tmp)
        print(HEADER, flush=True)
        if vegeta is not None:
            port = free_port()
            env = {**os.environ, "BESTAND_API_PORT": str(port)}
            targets_file = workdir / "targets.http"
            write_vegeta_targets(targets_file, port, targets)
            log = ROOT / ".local" / "logs" / "bench-lookup-load-api.log"
            with running_api(args.api_workers, port, env, log, args.server) as group:
                probe_http(port, key, targets[:300])
                warm = min(args.rate_list)  # warm every API process before measuring
                http_rate(vegeta, targets_file, key, warm, 2, args.max_in_flight, workdir, group)
                for n, rate in enumerate(args.rate_list):
                    recorder = None
                    if args.profile and n == 0:  # where the API's CPU goes, at the first rate
                        raw = ROOT / ".local" / "logs" / "bench-lookup-load-api-profile.txt"
                        seconds = min(args.profile, args.seconds)
                        recorder = record_cpu(group, seconds, raw, subprocesses=True)
                    result = http_rate(
                        vegeta,
                        targets_file,
                        key,
                        rate,
                        args.seconds,
                        args.max_in_flight,
                        workdir,
                        group,
                    )
                    print_row(result)
                    report["http"].append(asdict(result))
                    if recorder is not None:
                        recorder.wait()
                        if raw.exists():
                            report["profile_http"] = summarize(raw.read_text()) | {"rate": rate}
                    time.sleep(1)
        if "direct" in args.path_list:
            rows = uvloop.run(
                direct_rates(targets, args.rate_list, args.seconds, args.max_in_flight)
            )
            report["direct"] = [asdict(r) for r in rows]

    from bestand.identity import IdentityKeyer
    from bestand.identity.kinds import IdKind
    from bestand.store import Keys

    keyer = IdentityKeyer(
        settings.hmac_secret.get_secret_value().encode(), settings.default_phone_region
    )
    record = Keys(args.prefix).lookup_entry(keyer.key(IdKind.EMAIL, persons[0].email).token)
    print("redis-benchmark against the same Redis ...", flush=True)
    report["redis_benchmark"] = redis_benchmark(
        redis_url, args.redis_benchmark_requests, record, cluster
    )
    for row in report["redis_benchmark"]:
        print(
            f"  {row['name']:40} {row['rps']:10.0f}/s  p50 {row['p50_ms']:.3f} ms  "
            f"p99 {row['p99_ms']:.3f} ms"
        )
    report["ratios"] = ratios(report)
    for path, r in report["ratios"].items():
        if r["highest_held_per_s"] is not None:
            print(
                f"{path}: held {r['highest_held_per_s']:.0f} lookups/s = "
                f"{r['held_vs_get_c50']:.1%} of redis-benchmark GET (50 connections)"
            )
        else:
            print(f"{path}: no rate was held")
    report["conditions"]["loadavg_after"] = loadavg()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run, write the files, clean up; a failed step exits 1 with its reason."""
    args = parse_args(argv)
    redis_url = ""
    try:
        from bestand.settings import Settings

        redis_url = Settings(redis_prefix=args.prefix).redis_url
        report = run(args)
        text = markdown(report)
        if args.cluster_url:
            on_cluster = run(args, cluster=True)
            compared = compare_stores(report, on_cluster)
            print(compared, flush=True)
            report = {"one_redis": report, "cluster": on_cluster}
            text = "\n".join(["## One Redis", "", text, "## Redis Cluster", "",
                               markdown(on_cluster), compared])  # fmt: skip
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        if args.markdown:
            args.markdown.parent.mkdir(parents=True, exist_ok=True)
            args.markdown.write_text(text)
    except BenchError as exc:
        print(f"lookup_load: {exc}", file=sys.stderr)
        return 1
    except (RedisError, OSError) as exc:
        print(f"lookup_load: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lookup_load: interrupted", file=sys.stderr)
        return 130
    finally:
        if redis_url and not args.keep:
            with contextlib.suppress(RedisError, OSError):
                asyncio.run(_delete_prefix(redis_url, args.prefix))
            if args.cluster_url:
                with contextlib.suppress(RedisError, OSError):
                    asyncio.run(_delete_prefix(args.cluster_url, args.prefix, cluster=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
