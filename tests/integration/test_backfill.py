"""``bestand backfill orders`` into real Kafka, through a worker into Redis: a shop's order
export makes its existing customers known, a run stopped half way goes on where it stopped,
and the same file sent again changes nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from support import Deployment, Process, bestand_cli, consume_all, lookup, run, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_backfill_orders import ROWS, export

from bestand.ingest.backfill import backfill, state_path

pytestmark = pytest.mark.integration


def test_an_export_stopped_half_way_goes_on_and_makes_existing_customers(
    deployment: Deployment, worker: Process, tmp_path: Path
) -> None:
    path = tmp_path / "orders_export.csv"
    path.write_text(export(ROWS), encoding="utf-8")
    settings = deployment.settings
    first = run(backfill(settings, path, max_orders=2))
    assert (first.orders, first.resumed_after_line) == (2, 0)
    assert state_path(path).exists()
    second = run(backfill(settings, path))
    assert (second.orders, second.resumed_after_line, second.malformed) == (2, 4, 2)
    sent = run(consume_all(settings.kafka_bootstrap, deployment.topic("orders"), expect=7))
    ids = sorted(event["event_id"] for event in sent)
    assert ids == sorted([
        "backfill-5001", "backfill-5002", "backfill-5002-cancelled", "backfill-5003",
        "backfill-5003-refunded", "backfill-5006", "backfill-5006-refunded",
    ])  # fmt: skip
    # The whole file once more (a restart from the top): the same events, applied once.
    again = bestand_cli(deployment, "backfill", "orders", str(path), "--restart")
    assert again.returncode == 0, again.stderr
    assert "4 orders (7 events)" in again.stdout
    assert "line 6: order 5004: total is not a number: 'lots'" in again.stdout
    answer = wait_for(
        lambda: (a := lookup(deployment, email="anna@example.com"))["existing_customer"] and a,
        timeout=60,
        what="the backfilled order to make an existing customer",
    )
    assert answer["orders_count"] == 1
    cleo = wait_for(
        lambda: (a := lookup(deployment, email="cleo@example.com"))["known"] and a,
        timeout=60,
        what="the refunded order's customer",
    )
    assert cleo["orders_count"] == 1
    assert wait_for(lambda: not lookup(deployment, email="ben@example.com")["existing_customer"]
                    if lookup(deployment, email="ben@example.com")["known"] else False,
                    timeout=60, what="the cancelled order's buyer to be no customer")  # fmt: skip
