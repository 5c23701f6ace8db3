"""Campaign truth: every figure of the report equals a recount from the raw events.

A simulated shop goes through the real pipeline with a tenth of its events delivered twice
and everything out of event-time order (as the simulator writes it: store uploads and returns
arrive late). The recount below is written from the raw events alone, independently of
bestand's reducer; it only takes from bestand who is who (the person of each order).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from support import Deployment, Process, run

from bestand.api import create_api
from bestand.children import wait_caught_up
from bestand.ingest.producer import EventProducer
from bestand.simulate import simulate

Key = tuple[
    str, str | None, str | None, str | None, str | None
]  # day, campaign, affiliate, channel, coupon


def _cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


def _epoch(event: Mapping[str, Any]) -> int:
    return int(datetime.fromisoformat(str(event["event_time"]).replace("Z", "+00:00")).timestamp())


def recount(events: list[dict[str, Any]], person_of: Mapping[str, str]) -> dict[Key, list[int]]:
    """Orders and net revenue of new and existing customers per day and source."""
    unique = {str(e["event_id"]): e for e in events}.values()
    placed: dict[str, dict[str, Any]] = {}
    cancelled: set[str] = set()
    refunds: dict[str, dict[str, int | None]] = defaultdict(dict)
    for event in unique:
        order_id = str(event.get("order_id"))
        match event["type"]:
            case "order_placed":
                placed[order_id] = event
            case "order_cancelled":
                cancelled.add(order_id)
            case "order_returned" | "order_refunded":
                amount = event.get("amount")
                refunds[order_id][str(event["event_id"])] = (
                    None if amount is None else _cents(amount)
                )

    def refunded(order_id: str) -> tuple[int, bool]:
        total = _cents(placed[order_id]["total"])
        parts = refunds[order_id].values()
        back = sum(total if cents is None else cents for cents in parts)
        wholly = any(cents is None for cents in parts) or (total > 0 and back >= total)
        return min(back, total), wholly

    by_person: dict[str, list[str]] = defaultdict(list)
    for order_id in placed:
        by_person[person_of[order_id]].append(order_id)
    rows: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for orders in by_person.values():
        ordered = sorted(orders, key=lambda oid: (_epoch(placed[oid]), oid))
        kept_before = False
        for order_id in ordered:
            event = placed[order_id]
            back, wholly = refunded(order_id)
            kept = order_id not in cancelled and not wholly
            if order_id not in cancelled:
                attribution = event.get("attribution") or {}
                day = datetime.fromtimestamp(_epoch(event), UTC).date().isoformat()
                key = (
                    day,
                    attribution.get("campaign") or attribution.get("utm_campaign"),
                    attribution.get("affiliate_id"),
                    event.get("channel"),
                    event.get("coupon"),
                )
                offset = 2 if kept_before else 0
                rows[key][offset] += 1
                rows[key][offset + 1] += _cents(event["total"]) - back
            kept_before = kept_before or kept
    return dict(rows)


async def _send(deployment: Deployment, events: list[dict[str, Any]]) -> None:
    async with EventProducer(deployment.settings) as producer:
        report = await producer.send_all(events)
    assert report.unroutable == 0


async def _report_and_persons(
    deployment: Deployment, order_ids: list[str]
) -> tuple[dict[Key, list[int]], dict[str, str]]:
    api = create_api(deployment.settings)
    try:
        body = await api.service.campaign_report(date(2000, 1, 1), date(2100, 1, 1))
        answers = await api.service.lookup_many([("order_id", oid) for oid in order_ids])
    finally:
        await api.close()
    report = {
        (r["day"], r["campaign"], r["affiliate"], r["channel"], r["coupon"]): [
            r["new_orders"],
            r["new_revenue_cents"],
            r["existing_orders"],
            r["existing_revenue_cents"],
        ]
        for r in body["rows"]
    }
    persons = {oid: a["answer"]["person_id"] for oid, a in zip(order_ids, answers, strict=True)}
    return report, persons


def test_every_figure_of_the_campaign_report_equals_a_recount(
    deployment: Deployment, worker: Process
) -> None:
    shop = simulate(persons=150, seed=11)
    events = list(shop.events)
    rng = random.Random(4)
    redelivered = rng.sample(events, k=len(events) // 10)
    stream = events + redelivered
    rng.shuffle(stream)
    assert any(e["type"] == "order_refunded" for e in events)
    assert any(e["type"] == "order_returned" for e in events)
    assert any(e["type"] == "order_cancelled" for e in events)

    run(_send(deployment, stream))
    run(wait_caught_up(deployment.settings, [], len(stream), report=lambda _: None))
    worker.assert_running()

    order_ids = sorted({str(e["order_id"]) for e in events if e["type"] == "order_placed"})
    report, persons = run(_report_and_persons(deployment, order_ids))
    missing = sorted(oid for oid, person in persons.items() if not person)
    assert not missing, f"orders without a person: {missing}"
    expected = recount(events, persons)
    assert report == expected
    # The shuffle made bestand see later orders first: some orders were reclassified on the
    # way, and the report shows their final classification.
    assert sum(row[2] for row in expected.values()) > 0
    assert sum(row[0] for row in expected.values()) > 0
    # The affiliates' first-order voucher, redeemed by existing customers too, is told apart.
    first_order = [row for key, row in expected.items() if key[4] == "FIRST10"]
    assert sum(row[0] for row in first_order) > 0
    assert sum(row[2] for row in first_order) > 0
