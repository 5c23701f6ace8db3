"""For operators: status, health probes and the benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bestand.commands.common import load_settings


def cmd_status(args: argparse.Namespace) -> int:
    """Lag per partition, events per second, workers, dead letters and Redis memory."""
    from rich.console import Console
    from rich.live import Live

    from bestand.ops.status import StatusReader, first_snapshot, render
    from bestand.store.router import connect_store

    settings = load_settings()
    title = f"bestand {settings.app_id}"

    async def main() -> int:
        client = connect_store(settings.redis_url, settings.redis_cluster)
        reader = StatusReader(settings, client)
        try:
            shot = await first_snapshot(reader)
            if args.json and not args.watch:
                print(json.dumps(shot.as_dict(), indent=2))
                return 0
            if args.json:  # one JSON object per line, for scripts that follow along
                while True:
                    print(json.dumps(shot.as_dict()), flush=True)
                    await asyncio.sleep(args.watch)
                    shot = await reader.snapshot()
            if not args.watch:
                Console().print(render(shot, title))
                return 0
            with Live(render(shot, title), refresh_per_second=4, screen=False) as live:
                while True:
                    await asyncio.sleep(args.watch)
                    live.update(render(await reader.snapshot(), title))
        finally:
            await reader.close()
            await client.aclose()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0


def cmd_health(args: argparse.Namespace) -> int:
    """Probe: exit 0 when healthy, 1 when not, with one line that says why."""
    import socket
    import urllib.error
    import urllib.request

    from bestand.ops.heartbeat import verdict
    from bestand.ops.status import heartbeats
    from bestand.store import Keys
    from bestand.store.router import connect_store

    settings = load_settings()
    if args.target == "api":
        url = args.url or f"http://{settings.api_host}:{settings.api_port}/ready"
        try:
            with urllib.request.urlopen(url, timeout=args.timeout) as answer:  # noqa: S310
                print(f"api ready: {url} answered {answer.status}")
                return 0
        except urllib.error.HTTPError as exc:
            print(f"api not ready: {url} answered {exc.code} {exc.read().decode(errors='replace')}")
        except (OSError, urllib.error.URLError) as exc:
            print(f"api not reachable: {url}: {exc}")
        return 1

    async def beats() -> list[Any]:
        client = connect_store(settings.redis_url, settings.redis_cluster)
        try:
            return await asyncio.wait_for(
                heartbeats(client, Keys(settings.redis_prefix)), args.timeout
            )
        finally:
            await client.aclose()

    try:
        found = asyncio.run(beats())
    except Exception as exc:  # noqa: BLE001 - a probe reports, it does not crash
        print(f"worker health unknown: Redis not reachable: {exc}")
        return 1
    if args.this_host:
        mine = f"{socket.gethostname()}-"
        found = [b for b in found if b.worker.startswith(mine)]
    ok, why = verdict(found, need_ready=args.ready)
    print(("worker ok: " if ok else "worker not ok: ") + why)
    return 0 if ok else 1


def bench_runner(start: Path | None = None) -> Path | None:
    """``bench/run.py`` of the project checkout around ``start`` (default: here), if any."""
    places = [start or Path.cwd(), Path(__file__).resolve().parents[3]]
    for place in places:
        for folder in (place, *place.parents):
            runner = folder / "bench" / "run.py"
            if runner.is_file() and (folder / "pyproject.toml").is_file():
                return runner
    return None


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmarks of a project checkout (``bench/run.py``) with the given options."""
    runner = bench_runner()
    if runner is None:
        print(
            "bench: the benchmarks live in the project checkout (bench/run.py); "
            "run this inside a clone of the bestand repository",
            file=sys.stderr,
        )
        return 2
    forwarded = [a for a in args.bench_args if a != "--"]
    return subprocess.call([sys.executable, str(runner), *forwarded])  # noqa: S603 - our script


def cmd_explain_prune(args: argparse.Namespace) -> int:
    """Tombstones for every explain-topic entry of an erased person (``kafka/explain_topic``)."""
    from aiokafka.errors import KafkaError

    from bestand.kafka.explain_topic import prune_erased

    settings = load_settings()
    try:
        done = asyncio.run(prune_erased(settings, progress=print))
    except (KafkaError, OSError) as exc:
        print(f"explain-prune: Kafka at {settings.kafka_bootstrap}: {exc}", file=sys.stderr)
        return 1
    print(
        f"{settings.topic_explain}: {done.partitions} partitions, {done.records:,} records read, "
        f"{done.erased:,} erased persons, {done.tombstones:,} tombstones sent"
    )
    return 0
