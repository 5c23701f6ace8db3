"""Campaign truth: orders and net revenue from new versus existing customers, per day,
campaign, affiliate, channel and coupon: a first-order coupon redeemed by existing customers
shows up as such.

Derived from person state, where every order is counted once by its id, carries the
classification as it stands now (merges and late events included) and its net revenue after
returns; so the report is exact under redelivery and reclassification by construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from bestand.profile.state import PersonState


@dataclass(frozen=True, slots=True)
class CampaignRow:
    """One day of one campaign / affiliate / channel / coupon."""

    day: str
    campaign: str | None
    affiliate: str | None
    channel: str | None
    coupon: str | None
    new_orders: int = 0
    new_revenue_cents: int = 0
    existing_orders: int = 0
    existing_revenue_cents: int = 0


def campaign_rows(states: Iterable[PersonState], start: date, end: date) -> list[CampaignRow]:
    """Rows for orders placed from ``start`` to ``end`` (inclusive, UTC days), sorted."""
    totals: dict[tuple[str, str | None, str | None, str | None, str | None], list[int]] = {}
    for state in states:
        for order in state.orders.values():
            if not order.active or order.at is None or order.cls is None:
                continue
            day = datetime.fromtimestamp(order.at, UTC).date()
            if not start <= day <= end:
                continue
            key = (day.isoformat(), order.campaign, order.affiliate, order.channel, order.coupon)
            counts = totals.setdefault(key, [0, 0, 0, 0])
            offset = 0 if order.cls == "new" else 2
            counts[offset] += 1
            counts[offset + 1] += order.net_cents
    return [
        CampaignRow(day, campaign, affiliate, channel, coupon, *counts)
        for (day, campaign, affiliate, channel, coupon), counts in sorted(
            totals.items(), key=lambda item: tuple(str(part) for part in item[0])
        )
    ]
