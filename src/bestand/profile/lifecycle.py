"""Lifecycle stage of a person, computed from order figures and the current time.

Time-dependent answers (lapsed after N days) are computed at read time by this same
function, so a lookup is right even when no event has arrived for a year.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LifecycleStage = Literal["prospect", "first_time", "repeat", "loyal", "lapsed"]

_DAY = 86400


@dataclass(frozen=True, slots=True)
class LifecycleRules:
    """Thresholds of the stages; defaults come from settings."""

    repeat_min_orders: int = 2
    loyal_min_orders: int = 4
    lapsed_after_days: int = 365


def lifecycle_stage(
    orders_count: int, last_order_at: int | None, now: int, rules: LifecycleRules
) -> LifecycleStage:
    """Stage of a person with ``orders_count`` kept orders, the last at ``last_order_at``.

    prospect: no kept order; lapsed: no order for ``lapsed_after_days``; otherwise
    first_time (one order), repeat (from ``repeat_min_orders``), loyal (from ``loyal_min_orders``).
    """
    if orders_count <= 0 or last_order_at is None:
        return "prospect"
    if now - last_order_at > rules.lapsed_after_days * _DAY:
        return "lapsed"
    if orders_count >= rules.loyal_min_orders:
        return "loyal"
    if orders_count >= rules.repeat_min_orders:
        return "repeat"
    return "first_time"
