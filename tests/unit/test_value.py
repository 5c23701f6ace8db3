"""Customer value: RFM scores, lifetime and predicted value, value band."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bestand.profile.value import (
    ValueRules,
    ValueThresholds,
    customer_value,
    frequency_score,
    monetary_score,
    recency_score,
    threshold_ranks,
    thresholds_from_ranks,
    value_band,
)

DAY = 86400
NOW = 1_800_000_000
RULES = ValueRules()


@pytest.mark.parametrize(
    ("days", "score"), [(0, 5), (30, 5), (31, 4), (90, 4), (91, 3), (200, 2), (400, 1)]
)
def test_recency_score(days: int, score: int) -> None:
    assert recency_score(days, RULES.recency_days) == score


@pytest.mark.parametrize(("orders", "score"), [(1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (9, 5)])
def test_frequency_score(orders: int, score: int) -> None:
    assert frequency_score(orders, RULES.frequency_orders) == score


def test_monetary_score_by_quintiles() -> None:
    quintiles = (1000, 2000, 3000, 4000)
    assert [monetary_score(c, quintiles) for c in (0, 1000, 2500, 3999, 4000)] == [1, 2, 3, 4, 5]
    assert monetary_score(123, ()) == 3  # no base to compare with yet


def test_thresholds_of_a_base_of_ten() -> None:
    values = [100 * (10 - rank) for rank in range(10)]  # rank 0 holds 1000 .. rank 9 holds 100
    ranks = threshold_ranks(10)
    thresholds = thresholds_from_ranks(10, {rank: values[rank] for rank in ranks})
    assert thresholds.top10_cents == 1000
    assert thresholds.top30_cents == 800
    assert thresholds.quintiles == (300, 500, 700, 900)
    bands = [value_band(v, thresholds) for v in values]
    assert bands.count("top10") == 1
    assert bands.count("top30") == 2
    assert bands.count("rest") == 7
    assert value_band(5, ValueThresholds()) == "rest"


@given(st.lists(st.integers(0, 10**7), min_size=1, max_size=300))
def test_bands_hold_about_their_share_of_distinct_values(values: list[int]) -> None:
    ranked = sorted(values, reverse=True)
    ranks = threshold_ranks(len(ranked))
    thresholds = thresholds_from_ranks(len(ranked), {r: ranked[r] for r in ranks})
    top10 = sum(1 for v in ranked if value_band(v, thresholds) == "top10")
    top30 = sum(1 for v in ranked if value_band(v, thresholds) != "rest")
    # At least the share (ties can only add members), and the top is always in the top band.
    assert top10 >= max(1, -(-len(ranked) // 10))
    assert top30 >= top10
    assert value_band(ranked[0], thresholds) == "top10"
    assert all(1 <= monetary_score(v, thresholds.quintiles) <= 5 for v in ranked)


def test_a_regular_buyer_is_expected_back_after_their_own_gap() -> None:
    value = customer_value(
        orders_count=5,
        revenue_cents=50_000,
        first_order_at=NOW - 200 * DAY,
        last_order_at=NOW - 10 * DAY,
        now=NOW,
        rules=RULES,
        thresholds=ValueThresholds(),
    )
    assert value is not None
    gap = 190 * DAY / 4
    assert value.expected_next_order_at == round(NOW - 10 * DAY + gap)
    # Not overdue: 365 / 47.5 orders of 100.00 each.
    assert value.predicted_value_cents == round(10_000 * 365 * DAY / gap)
    assert value.lifetime_value_cents == 50_000
    assert value.rfm == "543"


def test_an_overdue_buyer_is_worth_less_and_a_lost_one_has_no_next_order() -> None:
    def predicted(days_since_last: int) -> tuple[int, int | None]:
        value = customer_value(
            orders_count=3,
            revenue_cents=30_000,
            first_order_at=NOW - (days_since_last + 60) * DAY,
            last_order_at=NOW - days_since_last * DAY,
            now=NOW,
            rules=RULES,
            thresholds=ValueThresholds(),
        )
        assert value is not None
        return value.predicted_value_cents, value.expected_next_order_at

    fresh, fresh_next = predicted(5)
    overdue, _ = predicted(90)
    lost, lost_next = predicted(400)
    assert fresh > overdue > lost
    assert fresh_next is not None
    assert lost_next is None


def test_a_first_time_buyer_counts_with_the_repeat_rate() -> None:
    value = customer_value(
        orders_count=1,
        revenue_cents=8_000,
        first_order_at=NOW - DAY,
        last_order_at=NOW - DAY,
        now=NOW,
        rules=RULES,
        thresholds=ValueThresholds(),
    )
    assert value is not None
    assert value.predicted_value_cents == round(8_000 * 0.3 * 365 / 90)
    assert value.expected_next_order_at == NOW - DAY + 90 * DAY


def test_no_value_without_an_order() -> None:
    assert (
        customer_value(
            orders_count=0,
            revenue_cents=0,
            first_order_at=None,
            last_order_at=None,
            now=NOW,
            rules=RULES,
            thresholds=ValueThresholds(),
        )
        is None
    )
