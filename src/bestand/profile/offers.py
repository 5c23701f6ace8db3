"""Offer eligibility: no "10 % on your first order" for someone who already ordered.

Computed at read time from the lookup summary, so the hot path still reads one key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bestand.profile.lifecycle import LifecycleStage


@dataclass(frozen=True, slots=True)
class LoyaltyOffer:
    """An offer for existing customers, by order count, recency and stage."""

    name: str
    min_orders: int = 1
    max_days_since_last_order: int | None = None
    stages: tuple[str, ...] = field(default_factory=tuple)  # empty: any stage


#: Defaults: a thank-you for repeat buyers, a win-back for lapsed ones.
DEFAULT_OFFERS = (
    LoyaltyOffer("loyalty-thank-you", min_orders=2, max_days_since_last_order=365),
    LoyaltyOffer("win-back", min_orders=1, stages=("lapsed",)),
)


def new_customer_offer_eligible(orders_count: int) -> bool:
    """A first-order offer is for people without a kept order, and for nobody else."""
    return orders_count == 0


def loyalty_offers(
    offers: Sequence[LoyaltyOffer],
    *,
    orders_count: int,
    last_order_at: int | None,
    stage: LifecycleStage,
    now: int,
) -> list[str]:
    """Names of the loyalty offers a person qualifies for, in the configured order."""
    out = []
    for offer in offers:
        if orders_count < offer.min_orders or (offer.stages and stage not in offer.stages):
            continue
        if offer.max_days_since_last_order is not None and (
            last_order_at is None or now - last_order_at > offer.max_days_since_last_order * 86400
        ):
            continue
        out.append(offer.name)
    return out
