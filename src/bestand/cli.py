"""The ``bestand`` command: local stack, worker, API, demo, lookups, producing events, schemas."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import logging.config
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import orjson
from pydantic import ValidationError

from bestand.ops.logs import LogFormat, logging_config
from bestand.settings import Settings


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        ]
        raise SystemExit("invalid settings (BESTAND_* environment):\n" + "\n".join(lines)) from None


def cmd_stack(args: argparse.Namespace) -> int:
    """Install, start, stop or show the local Kafka and Redis."""
    from bestand.stack import LocalStack, StackError

    stack = LocalStack.from_settings(_settings())
    try:
        if args.action == "up":
            stack.up()
            print(f"Kafka  {stack.kafka_bootstrap}\nRedis  {stack.redis_url}")
        elif args.action == "down":
            stack.down()
        else:
            for status in stack.status():
                state = (
                    "answering"
                    if status.answering
                    else ("running" if status.running else "stopped")
                )
                owner = "managed" if status.managed else "external" if status.running else "-"
                pid = status.pid or "-"
                line = f"{status.name:6} {status.address:22} {state:10} {owner:8} pid={pid}"
                print(f"{line} {status.detail}")
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the identity and profile agents until SIGTERM or Ctrl-C."""
    import faust
    import mode.loop

    from bestand.stream.app import create_app
    from bestand.stream.topics import ensure_topics

    settings = _settings()
    # uvloop for every loop of the worker (its own and the Kafka consumer thread's): the worker
    # spends a third of its CPU in the event loop, and uvloop's is several times cheaper.
    mode.loop.use("uvloop")
    asyncio.run(ensure_topics(settings))
    worker = create_app(settings)
    # quiet: no banner and no terminal spinner; everything still goes through logging.
    faust.Worker(
        worker.app,
        loglevel=args.loglevel,
        logging_config=logging_config(settings.log_format, args.loglevel),
        quiet=True,
    ).execute_from_commandline()
    return 0  # pragma: no cover - execute_from_commandline exits the process


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the lookup API with uvicorn (uvloop + httptools) or granian."""
    settings = _settings()
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    if args.server == "granian":
        return _serve_granian(host, port, args.workers, args.loglevel)
    import uvicorn

    uvicorn.run(
        "bestand.api.app:app_from_environment",
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


def cmd_lookup(args: argparse.Namespace) -> int:
    """Look up one identifier straight from Redis and print the answer as JSON."""
    from bestand.api import create_api
    from bestand.identity import InvalidIdentifier

    given = [
        (name, value)
        for name, value in vars(args).items()
        if name in _LOOKUP_FLAGS and value is not None
    ]
    if len(given) != 1:
        print(
            "give exactly one of: " + ", ".join(f"--{n.replace('_', '-')}" for n in _LOOKUP_FLAGS),
            file=sys.stderr,
        )
        return 2

    async def run() -> dict[str, object]:
        api = create_api(_settings())
        try:
            return await api.service.lookup(*given[0])
        finally:
            await api.close()

    try:
        answer = asyncio.run(run())
    except InvalidIdentifier as exc:
        print(f"invalid {given[0][0]}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0


_LOOKUP_FLAGS = (
    "customer_id",
    "email",
    "email_sha256",
    "phone",
    "anonymous_id",
    "device_id",
    "loyalty_card",
    "order_id",
)


def cmd_explain(args: argparse.Namespace) -> int:
    """Show why identifiers belong to one person, by any identifier or a person id."""
    from bestand.api import create_api
    from bestand.identity import InvalidIdentifier
    from bestand.identity.explain import text_lines
    from bestand.store.identity_graph import Explanation

    given = [
        (name, value)
        for name, value in vars(args).items()
        if name in _LOOKUP_FLAGS and value is not None
    ]
    if len(given) + (args.person is not None) != 1:
        flags = ", ".join(f"--{n.replace('_', '-')}" for n in ("person", *_LOOKUP_FLAGS))
        print(f"give exactly one of: {flags}", file=sys.stderr)
        return 2

    async def run() -> tuple[Explanation | None, dict[str, object] | None]:
        api = create_api(_settings())
        try:
            person = args.person or await api.service.person_of(*given[0])
            if person is None:
                return None, None
            return await api.service.find_person(person), await api.service.explain(person)
        finally:
            await api.close()

    try:
        found, as_json = asyncio.run(run())
    except InvalidIdentifier as exc:
        print(f"invalid {given[0][0]}: {exc}", file=sys.stderr)
        return 2
    if found is None:
        print("unknown: no person has this identifier", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(as_json, indent=2, ensure_ascii=False))
    else:
        print("\n".join(text_lines(found.person_id, found.identifiers, found.history)))
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    """Send the events of a JSONL file to their topics (routed by ``type``)."""
    from bestand.ingest import EventProducer
    from bestand.stream.topics import ensure_topics

    settings = _settings()
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


def cmd_export(args: argparse.Namespace) -> int:
    """Write a platform's upload file for the contacts in a segment whose consent allows it."""
    from bestand.api import create_api
    from bestand.audience.contacts import ContactListError, read_contacts
    from bestand.audience.export import ExportSummary, export_audience

    settings = _settings()

    def progress(summary: ExportSummary) -> None:
        print(
            f"  {summary.contacts} contacts looked up, {summary.rows} rows written",
            file=sys.stderr,
            end="\r" if sys.stderr.isatty() else "\n",
        )

    async def run(source: IO[str], out: IO[str]) -> ExportSummary:
        api = create_api(settings)
        try:
            return await export_audience(
                api.service,
                read_contacts(source),
                out,
                segment=args.segment,
                platform=args.platform,
                default_region=settings.default_phone_region,
                unstated_consent=args.include_unstated_consent,
                progress=progress,
            )
        finally:
            await api.close()

    try:
        with contextlib.ExitStack() as stack:
            source = (
                sys.stdin
                if args.input == "-"
                else stack.enter_context(open(args.input, encoding="utf-8", newline=""))
            )
            out = (
                sys.stdout
                if args.out == "-"
                else stack.enter_context(open(args.out, "w", encoding="utf-8", newline=""))
            )
            summary = asyncio.run(run(source, out))
    except (OSError, ContactListError) as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2
    for line in summary.lines():
        print(line, file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Print campaign truth: orders and net revenue from new vs existing customers."""
    import csv
    from datetime import date

    from bestand.api import create_api

    try:
        start, end = date.fromisoformat(args.start), date.fromisoformat(args.end)
    except ValueError as exc:
        print(f"report: not a day: {exc}", file=sys.stderr)
        return 2

    async def run() -> dict[str, Any]:
        api = create_api(_settings())
        try:
            return await api.service.campaign_report(start, end)
        finally:
            await api.close()

    rows = asyncio.run(run())["rows"]
    columns = [
        "day",
        "campaign",
        "affiliate",
        "channel",
        "new_orders",
        "new_revenue_cents",
        "existing_orders",
        "existing_revenue_cents",
    ]
    if args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        return 0
    print(
        f"{'day':10} {'campaign':20} {'affiliate':18} {'channel':7} "
        f"{'new':>5} {'new €':>11} {'existing':>8} {'existing €':>11}"
    )
    for row in rows:
        print(
            f"{row['day']:10} {row['campaign'] or '-':20} {row['affiliate'] or '-':18} "
            f"{row['channel'] or '-':7} {row['new_orders']:5} "
            f"{row['new_revenue_cents'] / 100:11.2f} {row['existing_orders']:8} "
            f"{row['existing_revenue_cents'] / 100:11.2f}"
        )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Write a labelled simulated shop: events and the truth of who is who."""
    from bestand.simulate import simulate, write_shop

    shop = simulate(persons=args.persons, seed=args.seed)
    for path in write_shop(shop, Path(args.out)):
        print(f"wrote {path}")
    print(f"{len(shop.events)} events of {len(shop.personas)} persons (seed {args.seed})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Replay a labelled shop through Kafka into Redis and report how well persons resolve."""
    from bestand.children import ChildFailed
    from bestand.evaluation.replay import evaluate, format_report
    from bestand.namespace import NamespaceBusy
    from bestand.simulate import read_shop, simulate
    from bestand.stack import LocalStack, StackError

    settings = _settings()
    if args.dir:
        shop = read_shop(Path(args.dir))
        print(f"read {len(shop.events)} events of {len(shop.personas)} persons from {args.dir}")
    else:
        shop = simulate(persons=args.persons, seed=args.seed)
        print(
            f"simulated {len(shop.events)} events of {len(shop.personas)} persons "
            f"(seed {args.seed})"
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


def cmd_status(args: argparse.Namespace) -> int:
    """Lag per partition, events per second, workers, dead letters and Redis memory."""
    from rich.console import Console
    from rich.live import Live

    from bestand.ops.status import StatusReader, first_snapshot, render
    from bestand.store import connect

    settings = _settings()
    title = f"bestand {settings.app_id}"

    async def main() -> int:
        client = connect(settings.redis_url)
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
    from bestand.store import Keys, connect

    settings = _settings()
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
        client = connect(settings.redis_url)
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


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Make Redis again from Kafka: empty the prefix, rewind the group, let workers replay."""
    from bestand.namespace import NamespaceBusy
    from bestand.ops.rebuild import rebuild

    settings = _settings()
    if not args.yes:
        print(
            f"rebuild deletes every key of prefix {settings.redis_prefix!r} in "
            f"{settings.redis_url.rsplit('@', 1)[-1]}, replaces topic {settings.topic_resolved} "
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


def bench_runner(start: Path | None = None) -> Path | None:
    """``bench/run.py`` of the project checkout around ``start`` (default: here), if any."""
    places = [start or Path.cwd(), Path(__file__).resolve().parents[2]]
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


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the whole system on the local stack with a simulated shop and show lookups."""
    from bestand.demo import run_demo

    return run_demo(_settings(), persons=args.persons, seed=args.seed, wait=not args.no_wait)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="bestand",
        description="Is this an existing customer? Streams events into live person state.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stack = sub.add_parser("stack", help="local Kafka and Redis without Docker")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.set_defaults(func=cmd_stack)

    worker = sub.add_parser("worker", help="run the stream agents")
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

    lookup = sub.add_parser("lookup", help="look up one identifier in Redis")
    for flag in _LOOKUP_FLAGS:
        lookup.add_argument(f"--{flag.replace('_', '-')}", dest=flag)
    lookup.set_defaults(func=cmd_lookup)

    explain = sub.add_parser("explain", help="why identifiers belong to one person")
    explain.add_argument("--person", help="a person id")
    for flag in _LOOKUP_FLAGS:
        explain.add_argument(f"--{flag.replace('_', '-')}", dest=flag)
    explain.add_argument("--json", action="store_true", help="print the API's JSON")
    explain.set_defaults(func=cmd_explain)

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
    sim.set_defaults(func=cmd_simulate)

    ev = sub.add_parser("evaluate", help="replay a labelled shop and score identity resolution")
    ev.add_argument("--dir", help="a directory written by `bestand simulate` (default: simulate)")
    ev.add_argument("--persons", type=int, default=2000)
    ev.add_argument("--seed", type=int, default=7)
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
