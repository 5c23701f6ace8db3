"""Lifecycle stage of a person, computed from order figures and the current time.

Time-dependent answers (lapsed after N days) are computed at read time by this same
function, so a lookup is right even when no event has arrived for a year.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LifecycleStage = Literal[
    "prospect", "first_time", "repeat", "loyal", "at_risk", "lapsed", "reactivated"
]

_DAY = 86400


@dataclass(frozen=True, slots=True)
class LifecycleRules:
    """Thresholds of the stages; defaults come from settings."""

    repeat_min_orders: int = 2
    loyal_min_orders: int = 4
    at_risk_after_days: int = 180
    lapsed_after_days: int = 365


def lifecycle_stage(
    orders_count: int,
    last_order_at: int | None,
    now: int,
    rules: LifecycleRules,
    previous_order_at: int | None = None,
) -> LifecycleStage:
    """Stage of a person with ``orders_count`` kept orders, the last at ``last_order_at``.

    prospect: no kept order; lapsed: no order for ``lapsed_after_days``; at_risk: none for
    ``at_risk_after_days``; reactivated: the last order came after a lapse (more than
    ``lapsed_after_days`` since ``previous_order_at``); otherwise first_time (one order),
    repeat (from ``repeat_min_orders``), loyal (from ``loyal_min_orders``).
    """
    if orders_count <= 0 or last_order_at is None:
        return "prospect"
    since = now - last_order_at
    if since > rules.lapsed_after_days * _DAY:
        return "lapsed"
    if since > rules.at_risk_after_days * _DAY:
        return "at_risk"
    if (
        previous_order_at is not None
        and last_order_at - previous_order_at > rules.lapsed_after_days * _DAY
    ):
        return "reactivated"
    if orders_count >= rules.loyal_min_orders:
        return "loyal"
    if orders_count >= rules.repeat_min_orders:
        return "repeat"
    return "first_time"
