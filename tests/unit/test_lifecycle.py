"""Lifecycle stages follow the thresholds, and time passing makes a buyer lapsed."""

from __future__ import annotations

import pytest

from bestand.profile import LifecycleRules, lifecycle_stage

DAY = 86400
NOW = 1_800_000_000
RULES = LifecycleRules(
    repeat_min_orders=2, loyal_min_orders=4, at_risk_after_days=180, lapsed_after_days=365
)


@pytest.mark.parametrize(
    ("orders", "days_ago", "stage"),
    [
        (0, None, "prospect"),
        (1, 10, "first_time"),
        (2, 10, "repeat"),
        (3, 10, "repeat"),
        (4, 10, "loyal"),
        (9, 180, "loyal"),  # exactly at the limit still counts as active
        (9, 181, "at_risk"),
        (9, 365, "at_risk"),
        (9, 366, "lapsed"),
        (1, 400, "lapsed"),
    ],
)
def test_stages(orders: int, days_ago: int | None, stage: str) -> None:
    last = None if days_ago is None else NOW - days_ago * DAY
    assert lifecycle_stage(orders, last, NOW, RULES) == stage


def test_thresholds_come_from_the_rules() -> None:
    strict = LifecycleRules(
        repeat_min_orders=3, loyal_min_orders=10, at_risk_after_days=20, lapsed_after_days=30
    )
    assert lifecycle_stage(2, NOW - DAY, NOW, strict) == "first_time"
    assert lifecycle_stage(5, NOW - DAY, NOW, strict) == "repeat"
    assert lifecycle_stage(5, NOW - 31 * DAY, NOW, strict) == "lapsed"


def test_a_buyer_back_after_a_lapse_is_reactivated_until_at_risk_again() -> None:
    previous = NOW - 500 * DAY
    assert lifecycle_stage(3, NOW - 10 * DAY, NOW, RULES, previous) == "reactivated"
    assert lifecycle_stage(3, NOW - 200 * DAY, NOW, RULES, previous) == "at_risk"
    # Back after 200 days only: not a lapse, so just a repeat buyer.
    assert lifecycle_stage(3, NOW - 10 * DAY, NOW, RULES, NOW - 210 * DAY) == "repeat"


def test_settings_keep_the_thresholds_in_order() -> None:
    import pytest
    from pydantic import ValidationError

    from bestand.settings import Settings

    with pytest.raises(ValidationError, match="AT_RISK"):
        Settings(_env_file=None, at_risk_after_days=400, lapsed_after_days=365)
