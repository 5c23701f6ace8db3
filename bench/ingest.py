"""Ingest: events per second per worker process from Kafka to Redis, against the stack's ceiling.

A prepared set of input topics holds N realistic events (the simulated shop, generated once
and cached under ``.local/bench/``; the topics are kept for the next run). In the same run,
each in one process:

- **read + decode**: a minimal consumer that only reads every event and decodes it (the
  input contract's validation);
- **the stack ceiling**: the same consumer that also writes two Redis keys per event (a
  counter and a key with a TTL) in one Lua call per batch and commits each batch: the least a
  stream processor on this Kafka, Redis and Python does;
- **a faust-streaming agent that does nothing** (``stream.take(1000, within=0.05)``) over the
  first ``--faust-events`` events: what faust's per-event machinery alone allows (needs the
  dev extra's faust-streaming; bestand does not use it);
- **bestand**: K ``bestand worker`` processes in a fresh consumer group with fresh output
  topics and Redis keys, timed from the first committed input offset to the moment every
  input message is committed.

    python bench/ingest.py --events 1000000 [--workers 1] [--profile 20] [--json FILE]

``--profile S`` samples each worker process with py-spy for S seconds once ingest runs
(``bench/cpu_profile.py``) and adds where their CPU time goes to the output;
``--redis-profile S`` records the Redis server with ``perf`` for S seconds from the middle of
the run (``bench/redis_profile.py``: the Redis must run on this machine) and adds where
Redis's CPU goes.

Needs Kafka and Redis (``bestand stack up``). What runs that were stopped before their
cleanup left (their Redis keys, which would grow the keyspace this run measures, and their
internal topics) is removed first.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from redis.asyncio.cluster import RedisCluster

from bestand.children import start_workers, wait_caught_up
from bestand.events import decode_event
from bestand.ingest.producer import EventProducer
from bestand.kafka.options import client_options
from bestand.kafka.topics import consumer_lag, delete_topics, end_offsets, ensure_topics
from bestand.ops.rebuild import rebuild
from bestand.settings import Settings
from bestand.simulate import simulate
from bestand.store import Keys, Scripts, connect
from bestand.store.identity_graph import resolver_in_use
from bestand.store.profiles import fold_in_use
from bestand.store.router import connect_store, graph_master
from cpu_profile import markdown as profile_markdown
from cpu_profile import record, summarize
from machine import machine, markdown_table, write_outputs
from redis_profile import markdown as redis_profile_markdown
from redis_profile import perf
from redis_profile import profile as redis_profile
from redis_profile import record as redis_record
from redis_profile import server as redis_server

NAMESPACE = "bestand-bench-ingest"
#: Redis key prefixes of a run (bestand's keys, the stack ceiling's), each followed by the
#: run's id: what a run that was stopped left is found by them and removed by the next one.
RUN_PREFIX, CEILING_PREFIX = "bench-ingest-", "bench-ceiling-"
KINDS = ("clickstream", "orders", "email", "customer")
EVENTS_PER_PERSON = 9.0  # the simulated shop's average, a little under it to have enough


def bench_settings(run_id: str | None = None) -> Settings:
    """Input topics of the prepared set; internal topics, group and keys fresh per run."""
    base = Settings()
    update: dict[str, Any] = {f"topic_{kind}": f"{NAMESPACE}.{kind}" for kind in KINDS}
    if run_id:
        update |= {
            "app_id": f"{NAMESPACE}-{run_id}",
            "redis_prefix": f"{RUN_PREFIX}{run_id}",
            "topic_dlq": f"{NAMESPACE}.dlq.{run_id}",
            "topic_profile_changes": f"{NAMESPACE}.profile-changes.{run_id}",
        }
    return base.model_copy(update=update)


def shop_events(count: int, cache: Path) -> list[bytes]:
    """``count`` simulated events as JSON lines, generated once and cached."""
    persons = int(count / EVENTS_PER_PERSON) + 1
    path = cache / f"shop-{persons}-seed7.jsonl"
    if not path.exists():
        print(f"simulating a shop of {persons} persons (cached in {path}) …", flush=True)
        started = time.monotonic()
        shop = simulate(persons=persons, seed=7)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as out:
            for event in shop.events:
                out.write(orjson.dumps(event) + b"\n")
        tmp.rename(path)
        print(f"  {len(shop.events)} events in {time.monotonic() - started:.0f} s", flush=True)
    with path.open("rb") as lines:
        events = [line.rstrip(b"\n") for line in lines if line.strip()]
    if len(events) < count:
        raise SystemExit(f"the cached shop has {len(events)} events, fewer than {count}")
    return events[:count]


async def prepared_count(settings: Settings) -> int:
    """Messages in the prepared input topics (0 when they do not exist)."""
    try:
        ends = await end_offsets(settings, list(settings.input_topics))
    except Exception:  # noqa: BLE001 - missing topics: nothing prepared
        return 0
    return sum(ends.values())


async def prepare(settings: Settings, count: int, cache: Path) -> None:
    """Fill the input topics with exactly ``count`` events unless they hold them already."""
    have = await prepared_count(settings)
    if have == count:
        print(f"prepared topics {NAMESPACE}.* hold {have} events: reused", flush=True)
        return
    events = shop_events(count, cache)
    await delete_topics(settings, list(settings.input_topics))
    await ensure_topics(settings)  # and waits for their leaders: no produce retries
    print(f"producing {count} events to {NAMESPACE}.* …", flush=True)
    started = time.monotonic()
    async with EventProducer(settings) as producer:
        report = await producer.send_all(orjson.loads(line) for line in events)
    print(
        f"  {report.sent} sent in {time.monotonic() - started:.0f} s"
        f" ({report.unroutable} unroutable)",
        flush=True,
    )


async def decode_ceiling(settings: Settings, count: int) -> dict[str, Any]:
    """Read and decode every prepared event with a bare consumer: the ceiling."""
    kinds = {getattr(settings, f"topic_{kind}"): kind for kind in KINDS}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=16 << 20,
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in kinds
            for p in (consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        read = invalid = 0
        started = time.monotonic()
        while read < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, messages in batches.items():
                kind = kinds[tp.topic]
                for message in messages:
                    try:
                        decode_event(kind, message.value, max_bytes=settings.max_event_bytes)
                    except Exception:  # noqa: BLE001 - counted, like the worker's dead letters
                        invalid += 1
                    read += 1
            if not batches and time.monotonic() - started > 600:
                raise SystemExit(f"ceiling: only {read} of {count} events readable")
        seconds = time.monotonic() - started
    finally:
        await consumer.stop()
    return {"events": read, "invalid": invalid, "seconds": seconds, "per_second": read / seconds}


#: The stack ceiling's writes: per event a counter of its key and a marker with a TTL.
CEILING_LUA = """
local n = #ARGV / 2
for i = 1, n do
  redis.call('HINCRBY', KEYS[1] .. ARGV[i], 'n', 1)
  redis.call('SET', KEYS[2] .. ARGV[n + i], '1', 'EX', 3600)
end
return n
"""


def _ceiling_key(event: Any) -> str:
    """What the ceiling counts per event: its first identifier, as a worker keys a person."""
    ident = (
        getattr(event, "anonymous_id", None)
        or getattr(event, "email", None)
        or getattr(event, "order_id", None)
        or event.event_id
    )
    return hashlib.blake2b(str(ident).encode(), digest_size=8).hexdigest()


async def stack_ceiling(settings: Settings, count: int, prefix: str) -> dict[str, Any]:
    """Read, decode, two Redis writes per event in one Lua call per batch, commit per batch."""
    kinds = {getattr(settings, f"topic_{kind}"): kind for kind in KINDS}
    consumer = AIOKafkaConsumer(
        *kinds,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{NAMESPACE}-ceiling-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=16 << 20,
    )
    client = connect(settings.redis_url)
    script = await client.script_load(CEILING_LUA)
    await consumer.start()
    try:
        read = 0
        started = None
        deadline = time.monotonic() + 600
        while read < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=2000)
            if started is None and batches:
                started = time.monotonic()
            if not batches and time.monotonic() > deadline:
                raise SystemExit(f"stack ceiling: only {read} of {count} events readable")
            keys: list[str] = []
            ids: list[str] = []
            for tp, messages in batches.items():
                kind = kinds[tp.topic]
                for message in messages:
                    try:
                        event = decode_event(
                            kind, message.value, max_bytes=settings.max_event_bytes
                        )
                    except Exception:  # noqa: BLE001, S112 - a dead letter in a worker; skipped
                        continue
                    keys.append(_ceiling_key(event))
                    ids.append(event.event_id)
                read += len(messages)
            if keys:
                await client.evalsha(script, 2, f"{prefix}:p:", f"{prefix}:d:", *keys, *ids)
            if batches:
                await consumer.commit()
        seconds = time.monotonic() - (started or time.monotonic())
    finally:
        await consumer.stop()
        await _unlink_matching(client, f"{prefix}:*")
        await client.aclose()
    return {"events": read, "seconds": seconds, "per_second": read / seconds}


async def _unlink_matching(client: Any, pattern: str) -> int:
    """Delete every key matching a glob pattern; how many went."""
    batch: list[bytes] = []
    removed = 0
    async for key in client.scan_iter(match=pattern, count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            removed += await client.unlink(*batch)
            batch = []
    if batch:
        removed += await client.unlink(*batch)
    return removed


async def clear_stopped_runs(settings: Settings) -> str | None:
    """Remove what runs that were stopped before their cleanup left: Redis keys (which grow
    the keyspace every later run measures: a million-event run leaves millions) and internal
    topics. What was removed, or None. (Two runs at once on one stack would measure each
    other anyway.)"""
    client = connect(settings.redis_url)
    try:
        keys = 0
        for prefix in (RUN_PREFIX, CEILING_PREFIX):
            keys += await _unlink_matching(client, f"{prefix}*")
    finally:
        await client.aclose()
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        internal = (f"{NAMESPACE}.dlq.", f"{NAMESPACE}.profile-changes.")
        topics = [t for t in await admin.list_topics() if t.startswith(internal)]
    finally:
        await admin.close()
    await delete_topics(settings, topics)
    if not keys and not topics:
        return None
    return f"{keys} Redis keys and {len(topics)} topics of runs that were stopped"


def faust_agent(settings: Settings, count: int, logs: Path) -> dict[str, Any] | None:
    """A faust-streaming agent that does nothing over the first ``count`` events (a child
    process of its own); None when faust-streaming is not installed."""
    try:
        import faust  # noqa: F401 - only to learn whether it is there
    except ImportError:
        return None
    script = Path(__file__).with_name("faust_agent.py")
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TMPDIR": str(logs)}
    done = subprocess.run(
        [sys.executable, str(script), settings.kafka_bootstrap, str(count),
         *settings.input_topics],
        capture_output=True, text=True, timeout=1800, env=env, check=False,
    )  # fmt: skip
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            figures: dict[str, Any] = orjson.loads(line)
            return figures
    raise SystemExit(f"the faust agent failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):
        await consumer._client.force_metadata_update()  # no public call for this
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        await asyncio.sleep(0.1)
    raise SystemExit(f"topic {topic} has no partitions")


async def _lag(settings: Settings) -> int | None:
    """Input messages the group has not committed (None while the coordinator is elected)."""
    try:
        lag = await consumer_lag(settings, settings.app_id, list(settings.input_topics))
    except KafkaError:
        return None
    return sum(lag[t] for t in settings.input_topics)


def _cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds of a process so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _redis_cpu_by_node(settings: Settings) -> dict[str, float]:
    """CPU seconds of each Redis server's main thread so far, by ``host:port`` (one entry on
    one Redis, one per master on a cluster)."""
    client = connect_store(settings.redis_url, settings.redis_cluster)
    try:
        if settings.redis_cluster:
            by_node = await client.info("cpu", target_nodes=RedisCluster.PRIMARIES)  # type: ignore[call-arg]
        else:
            by_node = {"redis": await client.info("cpu")}
    finally:
        await client.aclose()
    return {
        node: float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"])
        for node, info in by_node.items()
    }


async def _redis_cpu_seconds(settings: Settings) -> float:
    """CPU seconds of the Redis server's main thread so far (a cluster's masters together)."""
    return sum((await _redis_cpu_by_node(settings)).values())


async def _worker_stages(children: list[Any]) -> dict[str, float]:
    """Sums over every worker of its batch metrics: seconds per stage, batches, messages,
    and the values its person-state writes sent to Redis, by what."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = {}
    for child in children:
        if child.web_port is None:
            continue
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", child.web_port)
            writer.write(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")
            await writer.drain()
            body = (await reader.read()).partition(b"\r\n\r\n")[2].decode()
            writer.close()
        except OSError:
            continue
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == "bestand_batch_processing_seconds_sum":
                    key = f"stage:{sample.labels['stage']}"
                elif sample.name in ("bestand_batch_messages_sum", "bestand_batch_messages_count"):
                    key = sample.name.removeprefix("bestand_batch_")
                elif sample.name == "bestand_store_writes_total":
                    key = f"writes:{sample.labels['what']}"
                else:
                    continue
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


async def worker_rate(
    settings: Settings,
    count: int,
    workers: int,
    logs: Path,
    profile_seconds: float = 0,
    redis_profile_seconds: float = 0,
) -> dict[str, Any]:
    """Run ``workers`` worker processes over the prepared events; time them (and sample
    their CPU with py-spy for ``profile_seconds`` once events flow, Redis's with perf for
    ``redis_profile_seconds`` from half way). Also measures where the time goes: the workers'
    and Redis's CPU per event, and each batch stage's share."""
    await ensure_topics(settings)
    children = start_workers(settings, workers, logs, "bench-ingest")
    recorders = []
    redis_recording: tuple[Any, int, str, Path] | None = None
    cpu_at_start: list[float | None] = []
    redis_at_start = 0.0
    by_node_at_start: dict[str, float] = {}
    try:
        first: float | None = None
        last_report = 0.0
        while True:
            for child in children:
                child.check()
            pending_input = await _lag(settings)
            if pending_input is None:
                await asyncio.sleep(0.5)
                continue
            now = time.monotonic()
            if first is None and pending_input < count:
                first = now
                cpu_at_start = [_cpu_seconds(c.process.pid) for c in children]
                by_node_at_start = await _redis_cpu_by_node(settings)
                redis_at_start = sum(by_node_at_start.values())
                if profile_seconds:
                    recorders = [
                        (record(c.process.pid, profile_seconds, logs / f"profile-{n}.txt"), n)
                        for n, c in enumerate(children)
                    ]
            if redis_profile_seconds and redis_recording is None and pending_input <= count / 2:
                pid, binary = redis_server(settings.redis_url)
                data = logs / "redis-perf.data"
                redis_recording = (
                    redis_record(pid, redis_profile_seconds, data),
                    pid,
                    binary,
                    data,
                )
            if first is not None and pending_input == 0:
                break
            if first is not None and now - first >= 2 and now - last_report > 5:
                done = count - pending_input
                rate = done / (now - first)
                print(f"  {done}/{count} events ({rate:.0f}/s)", flush=True)
                last_report = now
            await asyncio.sleep(0.5)
        seconds = now - first
        done_in = count
        cpu_now = [_cpu_seconds(c.process.pid) for c in children]
        worker_cpu = [
            None if a is None or b is None else b - a
            for a, b in zip(cpu_at_start, cpu_now, strict=True)
        ]
        by_node_now = await _redis_cpu_by_node(settings)
        redis_cpu = sum(by_node_now.values()) - redis_at_start
        by_node = {n: by_node_now[n] - by_node_at_start.get(n, 0.0) for n in by_node_now}
        stages = await _worker_stages(children)
    finally:
        redis_summary = None
        if redis_recording is not None:
            recording, pid, binary, data = redis_recording
            recording.wait()
            redis_summary = redis_profile(pid, binary, data)
        profiles = []
        for recorder, n in recorders:
            recorder.wait()
            raw = logs / f"profile-{n}.txt"
            if raw.exists():
                profiles.append(summarize(raw.read_text()))
        for child in children:
            child.stop()
    known_cpu = [c for c in worker_cpu if c is not None]
    return {
        "profiles": profiles,
        "redis_profile": redis_summary,
        "workers": workers,
        "events": count,
        "seconds": seconds,
        "per_second": count / seconds,
        "per_second_per_worker": count / seconds / workers,
        # CPU from the first event read to the last: what one event costs each process.
        "worker_cpu_us_per_event": sum(known_cpu) / done_in * 1e6 if known_cpu else None,
        "worker_busy": sum(known_cpu) / seconds / workers if known_cpu else None,
        "redis_cpu_us_per_event": redis_cpu / done_in * 1e6,
        "redis_cpu_us_per_event_by_node": {n: c / done_in * 1e6 for n, c in by_node.items()},
        "stages": stages,
    }


async def rebuild_time(settings: Settings, count: int, workers: int, logs: Path) -> dict[str, Any]:
    """``bestand rebuild`` after the run: empty the run's Redis keys, rewind its group, and
    time ``workers`` workers replaying the whole history, from the command to caught up; also
    the replay alone (workers started to caught up) and its CPU per event (the workers'
    from their start, Redis's main thread over the replay)."""
    started = time.monotonic()
    done = await rebuild(settings, report=lambda line: print(f"  {line}", flush=True))
    reset = time.monotonic() - started
    redis_at_start = await _redis_cpu_seconds(settings)
    children = start_workers(settings, workers, logs, "bench-rebuild")
    try:
        await wait_caught_up(settings, children, count, report=lambda line: print(line, flush=True))
        caught_up = time.monotonic()
        worker_cpu = [_cpu_seconds(c.process.pid) for c in children]
        redis_cpu = await _redis_cpu_seconds(settings) - redis_at_start
    finally:
        for child in children:
            child.stop()
    events = done.events_to_replay
    known_cpu = [c for c in worker_cpu if c is not None]
    return {
        "events": events,
        "workers": workers,
        "reset_seconds": reset,
        "replay_seconds": caught_up - started - reset,
        "seconds": caught_up - started,
        "per_second": events / (caught_up - started),
        "worker_cpu_us_per_event": sum(known_cpu) / events * 1e6 if known_cpu and events else None,
        "redis_cpu_us_per_event": redis_cpu / events * 1e6 if events else None,
    }


async def cleanup(settings: Settings) -> None:
    """Drop the run's internal topics and Redis keys (the prepared input stays)."""
    await delete_topics(settings, [settings.topic_dlq, settings.topic_profile_changes])
    client = connect_store(settings.redis_url, settings.redis_cluster)
    try:
        await _unlink_matching(client, f"{settings.redis_prefix}:*")
    finally:
        await client.aclose()


def cost_table(ours: dict[str, Any]) -> str:
    """Where one event's time goes: CPU of the worker processes and of Redis per event, and
    the wall time of each batch stage (stages overlap: a worker reads, resolves, applies and
    commits different batches at once)."""
    rows: list[list[Any]] = []
    if ours.get("worker_cpu_us_per_event") is not None:
        rows.append(["worker process CPU", f"{ours['worker_cpu_us_per_event']:.0f}",
                     f"busy {ours['worker_busy']:.0%} of the run"])  # fmt: skip
    rows.append(["Redis CPU (main thread)", f"{ours['redis_cpu_us_per_event']:.0f}", ""])
    by_node = ours.get("redis_cpu_us_per_event_by_node") or {}
    if len(by_node) > 1:  # a cluster: each master's share
        rows += [[f"Redis CPU of master {node}", f"{cpu:.0f}", ""]
                 for node, cpu in sorted(by_node.items())]  # fmt: skip
    stages = ours.get("stages") or {}
    messages = stages.get("messages_sum") or 0
    if messages:
        batches = stages.get("messages_count") or 1
        for stage in ("decode", "resolve", "apply", "produce", "commit", "batch"):
            seconds = stages.get(f"stage:{stage}")
            if seconds is not None:
                note = f"mean batch {messages / batches:.0f} events" if stage == "batch" else ""
                rows.append([f"stage `{stage}` (wall)", f"{seconds / messages * 1e6:.0f}", note])
    table = markdown_table(["per event", "µs", ""], rows)
    written = [
        [what.replace("_", " ") + "s", f"{stages[f'writes:{what}'] / messages:.2f}"]
        for what in ("person_state", "lookup_record", "dedupe_marker")
        if messages and f"writes:{what}" in stages
    ]
    if written:
        table += "\n\n" + markdown_table(["sent to Redis per event", "values"], written)
    return table


async def redis_scripts(settings: Settings) -> str:
    """How the workers of this run find their Redis scripts: bestand's module or Lua (on a
    cluster: the graph's master's, and the persons' cluster scripts)."""
    client = connect_store(settings.redis_url, settings.redis_cluster)
    graph, router = await graph_master(client, Keys(settings.redis_prefix), settings.redis_url)
    try:
        compiled = await Scripts.load().use_module(graph, settings.redis_module)
    finally:
        await (client.aclose() if router is None else router.aclose())
    if router is not None:
        graph_runs = [n for n in compiled if n.startswith("graph_")]
        how = f"the module's commands ({len(graph_runs)})" if graph_runs else "Lua scripts"
        return f"a Redis Cluster: {how} for the graph, cluster Lua scripts for persons"
    return f"bestand's module's commands ({len(compiled)})" if compiled else "Lua scripts"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--faust-events",
        type=int,
        default=200_000,
        help="events the do-nothing faust agent reads (0: leave it out)",
    )
    parser.add_argument("--profile", type=float, default=0, help="seconds of py-spy per worker")
    parser.add_argument(
        "--redis-profile", type=float, default=0, help="seconds of perf on Redis, from half way"
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="then time `bestand rebuild` of the same history"
    )
    parser.add_argument(
        "--cluster-url",
        help="a node of a Redis Cluster: bestand's workers run there (the ceilings stay on "
        "BESTAND_REDIS_URL); `bestand stack up --redis-cluster 3` starts one",
    )
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    args = parser.parse_args(argv)
    if args.cluster_url and args.redis_profile:
        parser.error("--redis-profile samples one Redis: leave it out with --cluster-url")
    if args.redis_profile:
        perf()  # exits with how to install it, before the long run rather than half way
    prepared = bench_settings()
    cache = prepared.stack_dir / "bench"
    logs = prepared.stack_dir / "logs"
    if (removed := asyncio.run(clear_stopped_runs(prepared))) is not None:
        print(f"removed {removed}", flush=True)
    asyncio.run(prepare(prepared, args.events, cache))
    print("read + decode: a consumer that only decodes every event …", flush=True)
    ceiling = asyncio.run(decode_ceiling(prepared, args.events))
    print(f"  {ceiling['per_second']:.0f} events/s", flush=True)
    print("stack ceiling: decode, two Redis writes per event in one Lua call per batch …",
          flush=True)  # fmt: skip
    stack = asyncio.run(
        stack_ceiling(prepared, args.events, f"{CEILING_PREFIX}{uuid.uuid4().hex[:8]}")
    )
    print(f"  {stack['per_second']:.0f} events/s", flush=True)
    faust_figures = None
    if args.faust_events:
        faust_count = min(args.faust_events, args.events)
        print(f"faust-streaming: an agent that does nothing, {faust_count} events …", flush=True)
        faust_figures = faust_agent(prepared, faust_count, logs)
        shown = "not installed" if faust_figures is None else f"{faust_figures['per_second']:.0f}"
        print(f"  {shown} events/s", flush=True)
    run_settings = bench_settings(uuid.uuid4().hex[:8])
    if args.cluster_url:
        run_settings = run_settings.model_copy(
            update={"redis_url": args.cluster_url, "redis_cluster": True}
        )
    fold, resolver = fold_in_use(Settings().fold), resolver_in_use(Settings().resolve)
    scripts = asyncio.run(redis_scripts(run_settings))
    print(
        f"bestand: {args.workers} worker process(es), {resolver} resolver, {fold} fold, "
        f"Redis runs {scripts} …",
        flush=True,
    )
    rebuilt = None
    try:
        ours = asyncio.run(
            worker_rate(
                run_settings, args.events, args.workers, logs, args.profile, args.redis_profile
            )
        )
        if args.rebuild:
            print(f"bestand rebuild, then {args.workers} worker process(es) replay …", flush=True)
            rebuilt = asyncio.run(rebuild_time(run_settings, args.events, args.workers, logs))
    finally:
        asyncio.run(cleanup(run_settings))
    per_worker = ours["per_second_per_worker"]
    figures = {
        "redis_scripts": scripts,
        "benchmark": "ingest",
        "machine": machine(),
        "events": args.events,
        "ceiling": ceiling,
        "stack_ceiling": stack,
        "faust": faust_figures,
        "bestand": ours,
        "rebuild": rebuilt,
        "ratio_to_ceiling": per_worker / ceiling["per_second"],
        "ratio_to_stack_ceiling": per_worker / stack["per_second"],
    }
    rows = [
        ["read + decode only", ceiling["events"], f"{ceiling['seconds']:.1f}",
         f"{ceiling['per_second']:.0f}"],
        ["stack ceiling: read, decode, 2 Redis writes per event in one Lua call per batch, "
         "commit", stack["events"], f"{stack['seconds']:.1f}", f"{stack['per_second']:.0f}"],
    ]  # fmt: skip
    if faust_figures is not None:
        rows.append(
            ["faust-streaming agent doing nothing (`stream.take(1000, within=0.05)`)",
             faust_figures["events"], f"{faust_figures['seconds']:.1f}",
             f"{faust_figures['per_second']:.0f}"]
        )  # fmt: skip
    rows += [
        [f"bestand, {args.workers} worker process(es)", ours["events"],
         f"{ours['seconds']:.1f}", f"{ours['per_second']:.0f}"],
        ["bestand per worker process / stack ceiling", "", "",
         f"{figures['ratio_to_stack_ceiling']:.1%}"],
        ["bestand per worker process / read + decode", "", "",
         f"{figures['ratio_to_ceiling']:.1%}"],
    ]  # fmt: skip
    if rebuilt is not None:
        rows.append(
            [f"`bestand rebuild`, {args.workers} worker process(es) replaying (reset "
             f"{rebuilt['reset_seconds']:.1f} s, replay {rebuilt['replay_seconds']:.1f} s)",
             rebuilt["events"], f"{rebuilt['seconds']:.1f}", f"{rebuilt['per_second']:.0f}"]
        )  # fmt: skip
    table = markdown_table(["what", "events", "seconds", "events/s"], rows)
    table += f"\n\nThe worker's Redis scripts ran as {scripts}."
    table += "\n\n" + cost_table(ours)
    if rebuilt is not None and rebuilt.get("redis_cpu_us_per_event") is not None:
        worker = rebuilt.get("worker_cpu_us_per_event")
        table += "\n\n" + markdown_table(
            ["rebuild's replay, per event", "µs"],
            [["worker process CPU (from its start)", "-" if worker is None else f"{worker:.0f}"],
             ["Redis CPU (main thread)", f"{rebuilt['redis_cpu_us_per_event']:.0f}"]],
        )  # fmt: skip
    for n, profile in enumerate(ours["profiles"]):
        table += "\n\n" + profile_markdown(profile, f"Worker process {n + 1}")
    if ours["redis_profile"] is not None:
        table += "\n\n" + redis_profile_markdown(ours["redis_profile"], "Redis (perf)")
    print()
    print(table)
    write_outputs(figures, table, args.json, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
