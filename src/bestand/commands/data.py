"""Data in and out of the system: producing events, schemas, the simulated shop, rebuilds."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from bestand.commands.common import load_settings

if TYPE_CHECKING:
    from bestand.simulate import SimulatedShop


def cmd_backfill(args: argparse.Namespace) -> int:
    """Send a shop's order history to the input topics, resumably, with progress."""
    import asyncio

    from bestand.ingest.backfill import backfill, load_layout, show_progress, state_path
    from bestand.kafka.topics import ensure_topics

    settings = load_settings()
    path = Path(args.file)
    if not path.is_file():
        print(f"backfill: no file {path}", file=sys.stderr)
        return 2
    try:
        layout = load_layout(Path(args.mapping) if args.mapping else None)
    except (OSError, ValueError) as exc:
        print(f"backfill: mapping {args.mapping}: {exc}", file=sys.stderr)
        return 2

    async def run() -> Any:
        await ensure_topics(settings)
        return await backfill(
            settings,
            path,
            layout=layout,
            fmt=args.format,
            restart=args.restart,
            max_orders=args.max_orders,
            progress=show_progress,
        )

    try:
        report = asyncio.run(run())
    except KeyboardInterrupt:
        print(
            f"\nbackfill: stopped; run it again to go on from {state_path(path)}",
            file=sys.stderr,
        )
        return 130
    print(file=sys.stderr)
    if report.resumed_after_line:
        print(f"went on after line {report.resumed_after_line:,} (an earlier run got there)")
    print(
        f"backfill: {report.orders:,} orders ({report.events:,} events) in {report.seconds:.1f} s, "
        f"{report.orders_per_second:,.0f} orders/s; {report.malformed} malformed rows"
    )
    for example in report.examples:
        print(f"  {example}")
    if report.malformed > len(report.examples):
        print(f"  ... and {report.malformed - len(report.examples)} more")
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    """Send the events of a JSONL file to their topics (routed by ``type``)."""
    from bestand.ingest import EventProducer
    from bestand.kafka.topics import ensure_topics

    settings = load_settings()
    path = Path(args.file)
    lines = sys.stdin.buffer.readlines() if args.file == "-" else path.read_bytes().splitlines()
    events, broken = [], 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            broken += 1
            print(f"line {number}: not JSON ({exc}); skipped", file=sys.stderr)
            continue
        if not isinstance(event, dict):
            broken += 1
            print(f"line {number}: not a JSON object; skipped", file=sys.stderr)
            continue
        events.append(event)

    async def run() -> tuple[int, int]:
        await ensure_topics(settings)
        async with EventProducer(settings) as producer:
            report = await producer.send_all(events)
        return report.sent, report.unroutable

    sent, unroutable = asyncio.run(run())
    print(
        f"sent {sent} events; {unroutable} with an unknown type and {broken} broken lines skipped"
    )
    return 0 if not (unroutable or broken) else 1


def cmd_schemas(args: argparse.Namespace) -> int:
    """Write the JSON Schemas of every event and API payload to ``schemas/`` (or check them)."""
    from bestand.contracts import check_schemas, write_schemas

    target = Path(args.dir)
    if args.check:
        stale = check_schemas(target)
        for name in stale:
            print(f"out of date: {target / name}", file=sys.stderr)
        if stale:
            print("run `bestand schemas` to regenerate", file=sys.stderr)
        return 1 if stale else 0
    for name in write_schemas(target):
        print(f"wrote {target / name}")
    return 0


def _shop_params(shop: SimulatedShop) -> str:
    """How a shop was simulated, as a run's first line says it."""
    receipts = f", e-receipts {shop.e_receipts:.0%} of store sales" if shop.e_receipts else ""
    return f"seed {shop.seed}{receipts}"


def cmd_simulate(args: argparse.Namespace) -> int:
    """Write a labelled simulated shop: events and the truth of who is who."""
    from bestand.simulate import simulate, write_shop

    shop = simulate(persons=args.persons, seed=args.seed, e_receipts=args.e_receipts)
    for path in write_shop(shop, Path(args.out)):
        print(f"wrote {path}")
    print(f"{len(shop.events)} events of {len(shop.personas)} persons ({_shop_params(shop)})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Replay a labelled shop through Kafka into Redis and report how well persons resolve."""
    from bestand.children import ChildFailed
    from bestand.evaluation.replay import evaluate, format_report
    from bestand.namespace import NamespaceBusy
    from bestand.simulate import read_shop, simulate
    from bestand.stack import LocalStack, StackError

    settings = load_settings()
    if args.dir:
        try:
            shop = read_shop(Path(args.dir))
        except FileNotFoundError as exc:
            print(
                f"evaluate: {args.dir} holds no simulated shop ({exc.filename} is missing); "
                f"write one with `bestand simulate --out {args.dir}`",
                file=sys.stderr,
            )
            return 2
        print(
            f"read {len(shop.events)} events of {len(shop.personas)} persons from {args.dir} "
            f"({_shop_params(shop)})"
        )
    else:
        shop = simulate(persons=args.persons, seed=args.seed, e_receipts=args.e_receipts)
        print(
            f"simulated {len(shop.events)} events of {len(shop.personas)} persons "
            f"({_shop_params(shop)})"
        )
    if not args.no_stack:
        try:
            LocalStack.from_settings(settings).up()
        except StackError as exc:
            print(f"stack: {exc}", file=sys.stderr)
            return 1
    try:
        report = evaluate(settings, shop, workers=args.workers, log_dir=settings.stack_dir / "logs")
    except (ChildFailed, NamespaceBusy) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 1
    print(format_report(report))
    if args.json:
        Path(args.json).write_bytes(
            orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2) + b"\n"
        )
        print(f"wrote {args.json}")
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Make Redis again from Kafka: empty the prefix, rewind the group, let workers replay."""
    from bestand.namespace import NamespaceBusy
    from bestand.ops.rebuild import rebuild

    settings = load_settings()
    if not args.yes:
        print(
            f"rebuild deletes every key of prefix {settings.redis_prefix!r} in "
            f"{settings.redis_url.rsplit('@', 1)[-1]} (erasure tombstones stay) "
            f"and rewinds group {settings.app_id!r} to the first retained input event.\n"
            "Stop every worker first; run again with --yes to do it.",
            file=sys.stderr,
        )
        return 2
    try:
        done = asyncio.run(rebuild(settings))
    except NamespaceBusy as exc:
        print(f"rebuild: {exc}", file=sys.stderr)
        return 1
    print(
        f"deleted {done.keys_deleted:,} keys; rewound {done.partitions_rewound} partitions; "
        f"{done.events_to_replay:,} events to replay: start the workers (bestand worker)"
    )
    return 0
