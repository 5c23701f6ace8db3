"""The ``bestand`` command: the parser of every subcommand (see :mod:`bestand.commands`)."""

from __future__ import annotations

import argparse
import logging
import logging.config
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from bestand.commands.data import (
    cmd_backfill,
    cmd_evaluate,
    cmd_produce,
    cmd_rebuild,
    cmd_schemas,
    cmd_simulate,
)
from bestand.commands.ops import cmd_bench, cmd_explain_prune, cmd_health, cmd_status
from bestand.commands.query import LOOKUP_FLAGS, cmd_explain, cmd_export, cmd_lookup, cmd_report
from bestand.commands.run import cmd_api, cmd_collector, cmd_demo, cmd_stack, cmd_worker
from bestand.ops.logs import LogFormat, logging_config
from bestand.settings import Settings

E_RECEIPTS_HELP = (
    "share of store sales (0-1) whose buyer gives their own e-mail for a digital receipt "
    "(default 0: store buyers identify only as the simulator's habits say)"
)


def _share(text: str) -> float:
    """A share between 0 and 1, for options such as ``--e-receipts 0.8``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="bestand",
        description="Is this an existing customer? Streams events into live person state.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stack = sub.add_parser("stack", help="local Kafka and Redis without Docker")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.add_argument(
        "--redis-cluster",
        type=int,
        default=0,
        metavar="N",
        help="up: also start a local Redis Cluster of N masters (down and status include it)",
    )
    stack.add_argument(
        "--redis-cluster-port",
        type=int,
        default=7001,
        metavar="PORT",
        help="port of the cluster's first node; the others follow (default 7001)",
    )
    stack.set_defaults(func=cmd_stack)

    worker = sub.add_parser("worker", help="run a worker: input topics to Redis, batch by batch")
    worker.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    worker.set_defaults(func=cmd_worker)

    api = sub.add_parser("api", help="serve the lookup API")
    api.add_argument("--host")
    api.add_argument("--port", type=int)
    api.add_argument("--workers", type=int, default=1, help="processes (one per core)")
    api.add_argument(
        "--server",
        choices=("uvicorn", "granian"),
        default="uvicorn",
        help="HTTP server (granian needs the granian package)",
    )
    api.add_argument("--loglevel", default="info")
    api.set_defaults(func=cmd_api)

    collector = sub.add_parser(
        "collector", help="serve Segment's tracking API: a shop's analytics feed Kafka"
    )
    collector.add_argument("--host")
    collector.add_argument("--port", type=int)
    collector.add_argument("--workers", type=int, default=1, help="processes (one per core)")
    collector.add_argument("--loglevel", default="info")
    collector.set_defaults(func=cmd_collector)

    lookup = sub.add_parser("lookup", help="look up one identifier in Redis")
    for flag in LOOKUP_FLAGS:
        lookup.add_argument(f"--{flag.replace('_', '-')}", dest=flag)
    lookup.set_defaults(func=cmd_lookup)

    explain = sub.add_parser("explain", help="why identifiers belong to one person")
    explain.add_argument("--person", help="a person id")
    for flag in LOOKUP_FLAGS:
        explain.add_argument(f"--{flag.replace('_', '-')}", dest=flag)
    explain.add_argument("--json", action="store_true", help="print the API's JSON")
    explain.set_defaults(func=cmd_explain)

    backfill = sub.add_parser("backfill", help="send a shop's history into the input topics")
    backfill_sub = backfill.add_subparsers(dest="what", required=True)
    orders = backfill_sub.add_parser(
        "orders", help="an order export (Shopify's CSV, another layout with --mapping, JSONL)"
    )
    orders.add_argument("file", help="CSV or JSON lines (.jsonl)")
    orders.add_argument("--mapping", help="JSON file: bestand's fields -> the file's columns")
    orders.add_argument("--format", choices=("csv", "jsonl"), help="default: by the file's name")
    orders.add_argument("--restart", action="store_true", help="start over, not where it stopped")
    orders.add_argument("--max-orders", type=int, help="send at most this many orders this run")
    orders.set_defaults(func=cmd_backfill)

    produce = sub.add_parser("produce", help="send a JSONL file of events to their topics")
    produce.add_argument("file", help="JSONL file, one event per line; '-' for stdin")
    produce.set_defaults(func=cmd_produce)

    schemas = sub.add_parser("schemas", help="write or check the JSON Schemas in schemas/")
    schemas.add_argument("--dir", default="schemas")
    schemas.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    schemas.set_defaults(func=cmd_schemas)

    report = sub.add_parser("report", help="campaign truth: new vs existing customers' orders")
    report.add_argument("kind", choices=["campaigns"])
    report.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    report.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD")
    report.add_argument("--csv", action="store_true", help="CSV instead of a table")
    report.set_defaults(func=cmd_report)

    from bestand.audience import FORMATS, SEGMENTS

    export = sub.add_parser("export", help="hashed audiences for ad platforms")
    export.add_argument("kind", choices=["audience"])
    export.add_argument(
        "--segment", default="existing", choices=sorted(SEGMENTS), help="who (default existing)"
    )
    export.add_argument("--format", dest="platform", required=True, choices=FORMATS)
    export.add_argument(
        "--input", required=True, help="the shop's contact list: CSV or JSON lines (- stdin)"
    )
    export.add_argument("--out", default="-", help="file to write (default stdout)")
    export.add_argument(
        "--include-unstated-consent",
        action="store_true",
        help="also persons who never stated ads consent (default: only those who gave it)",
    )
    export.set_defaults(func=cmd_export)
    sim = sub.add_parser("simulate", help="write a labelled simulated shop (events + truth)")
    sim.add_argument("--persons", type=int, default=2000)
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--out", required=True, help="directory for events.jsonl and truth.json")
    sim.add_argument("--e-receipts", type=_share, default=0.0, help=E_RECEIPTS_HELP)
    sim.set_defaults(func=cmd_simulate)

    ev = sub.add_parser("evaluate", help="replay a labelled shop and score identity resolution")
    ev.add_argument(
        "--dir",
        help="a directory written by `bestand simulate` (default: simulate a shop from "
        "--persons, --seed and --e-receipts)",
    )
    ev.add_argument("--persons", type=int, default=2000)
    ev.add_argument("--seed", type=int, default=7)
    ev.add_argument("--e-receipts", type=_share, default=0.0, help=E_RECEIPTS_HELP)
    ev.add_argument("--workers", type=int, default=2, help="worker processes")
    ev.add_argument("--json", help="also write the report as JSON to this file")
    ev.add_argument(
        "--no-stack", action="store_true", help="use the configured Kafka and Redis as they are"
    )
    ev.set_defaults(func=cmd_evaluate)

    status = sub.add_parser(
        "status", help="lag per partition, events/s, workers, dead letters, Redis memory"
    )
    status.add_argument(
        "--watch", type=float, nargs="?", const=2.0, default=None, metavar="SECONDS",
        help="refresh every SECONDS (default 2) until Ctrl-C",
    )  # fmt: skip
    status.add_argument("--json", action="store_true", help="JSON for scripts (one per refresh)")
    status.set_defaults(func=cmd_status)

    health = sub.add_parser("health", help="probe: exit 0 when healthy, 1 when not")
    health.add_argument("target", choices=("worker", "api"))
    health.add_argument(
        "--ready", action="store_true", help="worker: also caught up (not only alive)"
    )
    health.add_argument(
        "--this-host", action="store_true", help="worker: only heartbeats of this host (a pod)"
    )
    health.add_argument("--url", help="api: the /ready URL (default from the settings)")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds")
    health.set_defaults(func=cmd_health)

    prune = sub.add_parser(
        "explain-prune",
        help="tombstones for erased persons' entries in the explain topic (a daily job)",
    )
    prune.set_defaults(func=cmd_explain_prune)

    rebuild = sub.add_parser(
        "rebuild", help="make Redis again from Kafka (workers stopped): empty, rewind, replay"
    )
    rebuild.add_argument("--yes", action="store_true", help="really do it")
    rebuild.set_defaults(func=cmd_rebuild)

    bench = sub.add_parser(
        "bench",
        help="run the benchmarks and print one table against the goals (project checkout)",
        description="Options go to bench/run.py: --quick, --only lookup,ingest,freshness,memory, "
        "--out DIR.",
    )
    bench.set_defaults(func=cmd_bench)

    demo = sub.add_parser("demo", help="simulated shop on the local stack, then lookups")
    demo.add_argument("--persons", type=int, default=300)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--no-wait", action="store_true", help="exit after showing the lookups")
    demo.set_defaults(func=cmd_demo)
    return parser


def _log_format() -> LogFormat:
    """``BESTAND_LOG_FORMAT`` from the settings; text when the settings do not load (the
    command then reports why)."""
    try:
        return Settings().log_format
    except ValidationError:
        return "text"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bestand`` console script."""
    logging.config.dictConfig(logging_config(_log_format()))
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "bench":
        args.bench_args = extra  # bench/run.py's own options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        result: int = args.func(args)
    except BrokenPipeError:  # `bestand report ... | head`: the reader left, that is fine
        sys.stderr.close()
        return 0
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
