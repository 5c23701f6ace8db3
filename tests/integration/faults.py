"""What the fault tests compare: a deployment's state in terms that do not depend on person ids.

Person ids are minted by whichever worker meets a person first, so two runs name people
differently; here a person is named by the smallest of their order ids. Everything an order,
a person or the campaign report says is compared: orders, net revenue, first and last order,
existing customer, each order's classification with its context, and every report figure.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from support import Deployment

from bestand.api import create_api
from bestand.ingest.producer import EventProducer


def placed_orders(events: list[dict[str, Any]]) -> list[str]:
    """Order ids of every ``order_placed`` event, sorted."""
    return sorted({str(e["order_id"]) for e in events if e["type"] == "order_placed"})


async def send(deployment: Deployment, events: list[dict[str, Any]]) -> None:
    """Produce events to their topics (keyed like a shop's producer does)."""
    async with EventProducer(deployment.settings) as producer:
        report = await producer.send_all(events)
    assert report.unroutable == 0


async def snapshot(deployment: Deployment, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The deployment's answers about every order of ``events``, person ids replaced."""
    order_ids = placed_orders(events)
    api = create_api(deployment.settings)
    try:
        found = await api.service.lookup_many([("order_id", oid) for oid in order_ids])
        classes = [await api.service.classification(oid) for oid in order_ids]
        report = await api.service.campaign_report(date(2000, 1, 1), date(2100, 1, 1))
    finally:
        await api.close()
    answers = {oid: item["answer"] for oid, item in zip(order_ids, found, strict=True)}
    missing = [oid for oid, answer in answers.items() if not answer or not answer["known"]]
    name: dict[str, str] = {}
    for oid in order_ids:  # sorted: a person's first order id names them
        if oid not in missing:
            name.setdefault(answers[oid]["person_id"], oid)
    persons = {
        name[a["person_id"]]: (
            a["existing_customer"], a["orders_count"], a["first_order_at"], a["last_order_at"],
            (a["value"] or {}).get("lifetime_value"),
        )
        for oid, a in answers.items()
        if oid not in missing
    }  # fmt: skip
    orders = {
        oid: None
        if c is None
        else (
            name.get(c["person_id"]), c["classification"], c["orders_before"],
            c["days_since_last_order"], c["cancelled"], c["campaign"], c["affiliate_id"],
        )
        for oid, c in zip(order_ids, classes, strict=True)
    }  # fmt: skip
    rows = sorted(tuple(sorted((k, str(v)) for k, v in row.items())) for row in report["rows"])
    return {"missing": missing, "persons": persons, "orders": orders, "report": rows}


def differences(clean: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """Human-readable differences between two snapshots (empty when identical)."""
    out = []
    if other["missing"] != clean["missing"]:
        out.append(f"orders unknown: {other['missing']} (clean run: {clean['missing']})")
    for kind in ("persons", "orders"):
        keys = sorted(set(clean[kind]) | set(other[kind]))
        out.extend(
            f"{kind} {key}: {other[kind].get(key)} != clean {clean[kind].get(key)}"
            for key in keys
            if clean[kind].get(key) != other[kind].get(key)
        )
    if clean["report"] != other["report"]:
        out.append("campaign report differs")
    return out


def lost_and_double(clean: dict[str, Any], other: dict[str, Any]) -> tuple[int, int]:
    """Orders the fault run lost and orders it counted more than once, over all persons."""
    lost = double = 0
    for key, figures in clean["persons"].items():
        mine = other["persons"].get(key)
        count = 0 if mine is None else mine[1]
        lost += max(figures[1] - count, 0)
        double += max(count - figures[1], 0)
    return lost, double
