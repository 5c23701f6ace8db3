"""Answers from Redis on the command line: lookups, explanations, exports and reports."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import IO, Any

from bestand.api.models import IDENTIFIER_PARAMS
from bestand.commands.common import load_settings

#: The identifier flags of `lookup` and `explain` (exactly one is given).
LOOKUP_FLAGS = IDENTIFIER_PARAMS


def cmd_lookup(args: argparse.Namespace) -> int:
    """Look up one identifier straight from Redis and print the answer as JSON."""
    from bestand.api import create_api
    from bestand.identity import InvalidIdentifier

    given = [
        (name, value)
        for name, value in vars(args).items()
        if name in LOOKUP_FLAGS and value is not None
    ]
    if len(given) != 1:
        print(
            "give exactly one of: " + ", ".join(f"--{n.replace('_', '-')}" for n in LOOKUP_FLAGS),
            file=sys.stderr,
        )
        return 2

    async def run() -> dict[str, object]:
        api = create_api(load_settings())
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


def cmd_explain(args: argparse.Namespace) -> int:
    """Show why identifiers belong to one person, by any identifier or a person id."""
    from bestand.api import create_api
    from bestand.identity import InvalidIdentifier
    from bestand.identity.explain import text_lines
    from bestand.store.explain_log import Explanation

    given = [
        (name, value)
        for name, value in vars(args).items()
        if name in LOOKUP_FLAGS and value is not None
    ]
    if len(given) + (args.person is not None) != 1:
        flags = ", ".join(f"--{n.replace('_', '-')}" for n in ("person", *LOOKUP_FLAGS))
        print(f"give exactly one of: {flags}", file=sys.stderr)
        return 2

    async def run() -> tuple[Explanation | None, Any]:
        api = create_api(load_settings())
        try:
            person = args.person or await api.service.person_of(*given[0])
            if person is None:
                return None, None
            if args.json:
                return Explanation(person, [], []), await api.service.explain(person)
            found = await api.service.find_person(person)
            return found, None if found is None else await api.service.history(found)
        finally:
            await api.close()

    try:
        found, shown = asyncio.run(run())
    except InvalidIdentifier as exc:
        print(f"invalid {given[0][0]}: {exc}", file=sys.stderr)
        return 2
    if found is None or (args.json and shown is None):
        print("unknown: no person has this identifier", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(shown, indent=2, ensure_ascii=False))
    else:
        history, complete = shown
        print("\n".join(text_lines(found.person_id, found.identifiers, history)))
        if not complete:
            print(
                "the explain topic could not be read in time: links and new persons are "
                "missing (BESTAND_EXPLAIN_READ_SECONDS)",
                file=sys.stderr,
            )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write a platform's upload file for the contacts in a segment whose consent allows it."""
    from bestand.api import create_api
    from bestand.audience.contacts import ContactListError, read_contacts
    from bestand.audience.export import ExportSummary, export_audience

    settings = load_settings()

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
        api = create_api(load_settings())
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
        "coupon",
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
        f"{'day':10} {'campaign':20} {'affiliate':18} {'channel':7} {'coupon':14} "
        f"{'new':>5} {'new €':>11} {'existing':>8} {'existing €':>11}"
    )
    for row in rows:
        print(
            f"{row['day']:10} {row['campaign'] or '-':20} {row['affiliate'] or '-':18} "
            f"{row['channel'] or '-':7} {row['coupon'] or '-':14} {row['new_orders']:5} "
            f"{row['new_revenue_cents'] / 100:11.2f} {row['existing_orders']:8} "
            f"{row['existing_revenue_cents'] / 100:11.2f}"
        )
    return 0
