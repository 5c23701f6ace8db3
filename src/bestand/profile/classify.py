"""Order classification: was an order placed by a new or an existing customer, at its time?

An order is ``existing`` when the same person has an order that counts (kept, or under the
``placed`` rule not cancelled) with an earlier event time (ties broken by order id), ``new``
otherwise. The classification first given for an order is
kept; when later knowledge changes it (a merge reveals earlier orders, an earlier order
arrives late, an earlier order is cancelled), the change is recorded as a reclassification
with its cause, because affiliate commissions were paid on the first answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from bestand.profile.state import CustomerRule, OrderRecord

Classification = Literal["new", "existing"]


@dataclass(frozen=True, slots=True)
class Reclassification:
    """One change of an order's classification and what caused it."""

    order_id: str
    before: Classification
    after: Classification
    event_id: str
    at: int
    reason: str


def classify(
    orders: Mapping[str, OrderRecord], rule: CustomerRule = "kept"
) -> dict[str, Classification]:
    """The classification of every placed order as of what is known now."""
    placed = sorted(
        ((order.at, oid) for oid, order in orders.items() if order.at is not None),
    )
    out: dict[str, Classification] = {}
    kept_before = False
    for _, oid in placed:
        out[oid] = "existing" if kept_before else "new"
        kept_before = kept_before or orders[oid].counts(rule)
    return out


def reclassify(
    orders: dict[str, OrderRecord],
    *,
    event_id: str,
    at: int,
    reason: str,
    rule: CustomerRule = "kept",
) -> tuple[dict[str, OrderRecord], list[Reclassification]]:
    """Record first classifications and the changes against the current knowledge.

    ``orders`` itself comes back when no classification changed (the common case: an order
    of a person whose orders arrived in order), so a caller tells that without comparing.
    """
    updated: dict[str, OrderRecord] | None = None
    changes: list[Reclassification] = []
    for oid, now in classify(orders, rule).items():
        order = orders[oid]
        if order.cls == now:
            continue
        if order.cls is not None:
            changes.append(Reclassification(oid, order.cls, now, event_id, at, reason))
        if updated is None:
            updated = dict(orders)
        updated[oid] = replace(order, cls=now)
    return (orders if updated is None else updated), changes


@dataclass(frozen=True, slots=True)
class OrderContext:
    """What an affiliate network asks about one order, as of its event time."""

    classification: Classification
    orders_before: int  # orders of the person before this one that count under the rule
    days_since_last_order: int | None  # since the person's previous such order


def order_context(
    orders: Mapping[str, OrderRecord], order_id: str, rule: CustomerRule = "kept"
) -> OrderContext | None:
    """Orders before an order and the days since the previous one; ``None`` if not placed."""
    order = orders.get(order_id)
    if order is None or order.at is None:
        return None
    key = (order.at, order_id)
    earlier = [
        (o.at, oid)
        for oid, o in orders.items()
        if o.counts(rule) and o.at is not None and (o.at, oid) < key
    ]
    last = max(earlier)[0] if earlier else None
    return OrderContext(
        classification="existing" if earlier else "new",
        orders_before=len(earlier),
        days_since_last_order=None if last is None else (order.at - last) // 86400,
    )
