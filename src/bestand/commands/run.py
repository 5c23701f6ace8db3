"""Long-running parts: the local stack, the worker, the lookup API, the collector and the
demo."""

from __future__ import annotations

import argparse
import sys

from bestand.commands.common import load_settings
from bestand.ops.logs import logging_config
from bestand.settings import Settings


def cmd_stack(args: argparse.Namespace) -> int:
    """Install, start, stop or show the local Kafka and Redis."""
    from bestand.stack import LocalStack, StackError

    stack = LocalStack.from_settings(load_settings())
    try:
        if args.action == "up":
            stack.up()
            print(f"Kafka  {stack.kafka_bootstrap}\nRedis  {stack.redis_url}")
            if args.redis_cluster:
                cluster = stack.cluster(args.redis_cluster, args.redis_cluster_port)
                cluster.start()
                ports = ", ".join(str(port) for port in cluster.ports)
                print(f"Redis Cluster  {cluster.url} ({args.redis_cluster} masters: {ports})")
                hint = f"BESTAND_REDIS_URL={cluster.url} BESTAND_REDIS_CLUSTER=true"
                print(f"  bestand on it: {hint}")
        elif args.action == "down":
            stack.down()
        else:
            statuses = stack.status()
            width = max(len(status.name) for status in statuses)
            for status in statuses:
                state = (
                    "answering"
                    if status.answering
                    else ("running" if status.running else "stopped")
                )
                owner = "managed" if status.managed else "external" if status.running else "-"
                pid = status.pid or "-"
                line = f"{status.name:{width}} {status.address:22} {state:10} {owner:8} pid={pid}"
                print(f"{line} {status.detail}")
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the worker's batch loop until SIGTERM or Ctrl-C."""
    import logging.config

    import uvloop

    from bestand.store import ClusterNotSupported, StoreLayoutError
    from bestand.store.scripts import ModuleMissing
    from bestand.stream.worker import run_worker

    settings = load_settings()
    logging.config.dictConfig(logging_config(settings.log_format, args.loglevel))
    # uvloop: the worker spends much of its time in the event loop, and uvloop's is cheaper.
    try:
        return uvloop.run(run_worker(settings))
    except (StoreLayoutError, ModuleMissing, ClusterNotSupported) as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 2


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the lookup API with uvicorn (uvloop + httptools) or granian."""
    settings = load_settings()
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    if args.server == "granian":
        return _serve_granian(host, port, args.workers, args.loglevel)
    return _serve_uvicorn("bestand.api.app:app_from_environment", host, port, args, settings)


def cmd_collector(args: argparse.Namespace) -> int:
    """Serve the collector (Segment's tracking API) with uvicorn."""
    settings = load_settings()
    if not settings.write_keys:
        print(
            "collector: set BESTAND_COLLECTOR_WRITE_KEYS (the write keys your Segment "
            f"libraries send; BESTAND_ENV={settings.env})",
            file=sys.stderr,
        )
        return 2
    host = args.host or settings.collector_host
    port = args.port or settings.collector_port
    factory = "bestand.collector.app:collector_from_environment"
    return _serve_uvicorn(factory, host, port, args, settings)


def _serve_uvicorn(
    factory: str, host: str, port: int, args: argparse.Namespace, settings: Settings
) -> int:
    """An ASGI app factory under uvicorn: uvloop, httptools, bestand's log format."""
    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        log_level=args.loglevel,
        log_config=logging_config(settings.log_format, args.loglevel),
        access_log=False,
    )
    return 0


def _serve_granian(host: str, port: int, workers: int, loglevel: str) -> int:
    """The same ASGI application under granian (HTTP in Rust, one uvloop per worker)."""
    try:
        from granian.constants import Interfaces, Loops, RuntimeModes
        from granian.log import LogLevels
        from granian.server import Server
    except ImportError:
        print("api: granian is not installed (pip install granian)", file=sys.stderr)
        return 2
    Server(
        "bestand.api.app:app_from_environment",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        runtime_mode=RuntimeModes.st,
        loop=Loops.uvloop,
        log_level=LogLevels(loglevel),
        log_access=False,
        factory=True,
    ).serve()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the whole system on the local stack with a simulated shop and show lookups."""
    from bestand.demo import run_demo

    return run_demo(load_settings(), persons=args.persons, seed=args.seed, wait=not args.no_wait)
