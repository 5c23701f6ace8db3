"""``bestand backfill orders`` into Kafka: orders/s from a Shopify order export.

Writes a Shopify-style CSV export of ``--orders`` orders (one to three line items each, a
share of them cancelled or refunded; e-mails, names and addresses of ``--orders / 3``
buyers), then times ``bestand.ingest.backfill.backfill`` sending it into the input topics of
a namespace of its own on the local stack (``acks=all``, checkpoints every 20,000 orders).

    python bench/backfill.py [--orders 200000] [--json F] [--markdown F]

Goal (issue: fed by what shops already run): >= 20,000 orders/s into Kafka.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bestand.ingest.backfill import backfill, show_progress
from bestand.kafka.topics import ensure_topics
from bestand.namespace import namespaced, reset
from bestand.settings import Settings
from machine import machine, markdown_table, write_outputs

HEADER = ["Name", "Email", "Financial Status", "Currency", "Total", "Created at",
          "Lineitem quantity", "Lineitem name", "Billing Name", "Billing Address1",
          "Billing City", "Billing Zip", "Billing Country", "Billing Phone", "Cancelled at",
          "Refunded Amount", "Id", "Source"]  # fmt: skip


def write_export(path: Path, orders: int, seed: int = 7) -> int:
    """A Shopify-style export of ``orders`` orders; the number of rows written."""
    rng = random.Random(seed)
    buyers = max(orders // 3, 1)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for n in range(orders):
            buyer = rng.randrange(buyers)
            at = start + timedelta(seconds=n * 300)
            stamp = at.strftime("%Y-%m-%d %H:%M:%S +0000")
            total = f"{rng.randrange(500, 30000) / 100:.2f}"
            cancelled = stamp if rng.random() < 0.03 else ""
            refunded = f"{float(total) / 2:.2f}" if not cancelled and rng.random() < 0.05 else ""
            items = rng.randint(1, 3)
            for item in range(items):
                first = item == 0
                writer.writerow([
                    f"#{1000 + n}", f"buyer{buyer}@example.com" if first else "",
                    "paid" if first else "", "EUR" if first else "", total if first else "",
                    stamp if first else "", rng.randint(1, 3), f"item {item}",
                    f"Buyer {buyer}" if first else "", f"Street {buyer}" if first else "",
                    "Berlin" if first else "", f"{10000 + buyer % 9000}" if first else "",
                    "DE" if first else "", "", cancelled if first else "",
                    refunded if first else "", str(900000 + n) if first else "",
                    "web" if first else "",
                ])  # fmt: skip
                rows += 1
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    args = parser.parse_args(argv)
    settings = namespaced(Settings(), "bestand-bench-backfill", "bb")
    asyncio.run(reset(settings))
    asyncio.run(ensure_topics(settings))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "orders_export.csv"
        rows = write_export(path, args.orders)
        size = path.stat().st_size
        print(f"{args.orders:,} orders in {rows:,} rows, {size / 1e6:.1f} MB", flush=True)
        report = asyncio.run(backfill(settings, path, progress=show_progress))
        print(file=sys.stderr)
    asyncio.run(reset(settings))
    table = markdown_table(
        ["backfill of a Shopify order export into Kafka (acks=all)", "figure"],
        [
            ["orders (rows, file)", f"{report.orders:,} ({rows:,} rows, {size / 1e6:.1f} MB)"],
            ["events sent", f"{report.events:,}"],
            ["time", f"{report.seconds:.1f} s"],
            ["orders/s", f"{report.orders_per_second:,.0f}"],
            ["malformed rows", str(report.malformed)],
        ],
    )
    print(table)
    figures = {
        "machine": machine(),
        "orders": report.orders,
        "events": report.events,
        "seconds": report.seconds,
        "orders_per_second": report.orders_per_second,
    }
    write_outputs(figures, table, args.json, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
