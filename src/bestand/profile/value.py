"""A customer's value: RFM scores, lifetime value so far, a predicted value, a value band.

Everything here is a plain function of a few figures from the lookup record and the current
time, so it is computed at read time and is right even when no event has come for months.

The prediction is deliberately simple and explainable (no fitted model): a buyer with two or
more orders is expected to buy again after their own average gap between orders; a first-time
buyer after ``first_repurchase_days``, with the probability ``first_repeat_rate`` that they
buy again at all. Past the expected date the chance that they are still a customer decays with
each further gap that passes without an order. Expected orders in the horizon times the
average net order value gives the predicted value.

The value band compares the lifetime value with the whole customer base (top 10 %, top 30 %,
the rest); the thresholds come from Redis (a sorted set of every customer's value) and are
refreshed periodically by the reader.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

_DAY = 86400

ValueBand = Literal["top10", "top30", "rest"]


@dataclass(frozen=True, slots=True)
class ValueRules:
    """Breakpoints and assumptions of the value figures; defaults come from settings."""

    #: Days since the last order from which the recency score drops to 4, 3, 2, 1.
    recency_days: tuple[int, ...] = (30, 90, 180, 365)
    #: Order counts from which the frequency score rises to 2, 3, 4, 5.
    frequency_orders: tuple[int, ...] = (2, 3, 5, 8)
    #: Expected gap after a first order; a share of first-time buyers that buys again at all.
    first_repurchase_days: int = 90
    first_repeat_rate: float = 0.3
    horizon_days: int = 365


@dataclass(frozen=True, slots=True)
class ValueThresholds:
    """Lifetime values (cents) that mark the customer base's top 10 %, top 30 % and quintiles.

    ``quintiles`` are the values at 20, 40, 60 and 80 % of the base, ascending; an empty
    tuple (no customers yet) scores every customer's monetary value 3.
    """

    customers: int = 0
    top10_cents: int | None = None
    top30_cents: int | None = None
    quintiles: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Value:
    """The value figures of one customer as of ``now``."""

    recency: int  # 1 (long ago) .. 5 (recent)
    frequency: int  # 1 (one order) .. 5 (many)
    monetary: int  # 1 (lowest fifth of the base) .. 5 (highest)
    lifetime_value_cents: int
    predicted_value_cents: int
    expected_next_order_at: int | None
    band: ValueBand

    @property
    def rfm(self) -> str:
        """The three scores as the usual three-digit code, e.g. ``"545"``."""
        return f"{self.recency}{self.frequency}{self.monetary}"


def recency_score(days: float, breakpoints: tuple[int, ...]) -> int:
    """5 for an order within the first breakpoint's days, one less per breakpoint passed."""
    return 5 - sum(1 for limit in breakpoints if days > limit)


def frequency_score(orders: int, breakpoints: tuple[int, ...]) -> int:
    """1 for one order, one more for each breakpoint reached."""
    return 1 + sum(1 for limit in breakpoints if orders >= limit)


def monetary_score(cents: int, quintiles: tuple[int, ...]) -> int:
    """1..5 by the customer base's quintiles; 3 while there is no base to compare with."""
    if not quintiles:
        return 3
    return 1 + sum(1 for limit in quintiles if cents >= limit)


def value_band(cents: int, thresholds: ValueThresholds) -> ValueBand:
    """Top 10 %, top 30 % or the rest of the customer base, by lifetime value."""
    if thresholds.top10_cents is not None and cents >= thresholds.top10_cents:
        return "top10"
    if thresholds.top30_cents is not None and cents >= thresholds.top30_cents:
        return "top30"
    return "rest"


def customer_value(
    *,
    orders_count: int,
    revenue_cents: int,
    first_order_at: int | None,
    last_order_at: int | None,
    now: int,
    rules: ValueRules,
    thresholds: ValueThresholds,
) -> Value | None:
    """The value figures of a customer; ``None`` for someone without an order that counts."""
    if orders_count <= 0 or last_order_at is None:
        return None
    first = first_order_at if first_order_at is not None else last_order_at
    if orders_count >= 2 and last_order_at > first:
        gap = (last_order_at - first) / (orders_count - 1)
        repeat = 1.0
    else:
        gap = float(rules.first_repurchase_days * _DAY)
        repeat = rules.first_repeat_rate if orders_count == 1 else 1.0
    gap = max(gap, float(_DAY))
    overdue = max(0.0, now - last_order_at - gap)
    alive = repeat * math.exp(-overdue / gap)
    expected_orders = alive * rules.horizon_days * _DAY / gap
    average = revenue_cents / orders_count
    return Value(
        recency=recency_score((now - last_order_at) / _DAY, rules.recency_days),
        frequency=frequency_score(orders_count, rules.frequency_orders),
        monetary=monetary_score(revenue_cents, thresholds.quintiles),
        lifetime_value_cents=revenue_cents,
        predicted_value_cents=max(0, round(average * expected_orders)),
        expected_next_order_at=round(last_order_at + gap) if alive >= 0.05 else None,
        band=value_band(revenue_cents, thresholds),
    )


def thresholds_from_ranks(customers: int, value_at_rank: dict[int, int]) -> ValueThresholds:
    """Thresholds from the values at the ranks that :func:`threshold_ranks` asked for."""
    if customers <= 0:
        return ValueThresholds()
    top10, top30, *quintiles = (value_at_rank[rank] for rank in threshold_ranks(customers))
    return ValueThresholds(
        customers=customers,
        top10_cents=top10,
        top30_cents=top30,
        quintiles=tuple(sorted(quintiles)),
    )


def threshold_ranks(customers: int) -> tuple[int, ...]:
    """Ranks (0 = highest value) whose values are the top-10 %, top-30 % and quintile marks."""
    if customers <= 0:
        return ()

    def rank(share: float) -> int:
        return min(customers - 1, max(0, math.ceil(customers * share) - 1))

    return (rank(0.1), rank(0.3), rank(0.8), rank(0.6), rank(0.4), rank(0.2))
