"""Profile changes: what one event changed in a person's answer."""

from __future__ import annotations

from bestand.profile.changes import profile_changes
from bestand.profile.lifecycle import LifecycleRules
from bestand.profile.summary import LookupSummary

DAY = 86400
NOW = 1_800_000_000
RULES = LifecycleRules()


def summary(
    orders: int, last_days_ago: int | None = None, previous: int | None = None
) -> LookupSummary:
    last = None if last_days_ago is None else NOW - last_days_ago * DAY
    return LookupSummary(
        person_id="P1",
        version=1,
        orders_count=orders,
        first_order_at=last,
        last_order_at=last,
        consent={},
        previous_order_at=None if previous is None else NOW - previous * DAY,
    )


def kinds(
    before: LookupSummary | None, after: LookupSummary, absorbed: tuple[str, ...] = ()
) -> list[str]:
    return [c.change for c in profile_changes(before, after, NOW, RULES, absorbed)]


def test_a_first_order_makes_a_customer_and_moves_the_stage() -> None:
    changes = profile_changes(summary(0), summary(1, 0), NOW, RULES)
    assert [c.change for c in changes] == ["became_customer", "stage_changed"]
    assert (changes[1].stage_before, changes[1].stage_after) == ("prospect", "first_time")
    assert kinds(None, summary(1, 0)) == ["became_customer", "stage_changed"]


def test_a_second_order_only_moves_the_stage() -> None:
    changes = profile_changes(summary(1, 30), summary(2, 0, previous=30), NOW, RULES)
    assert [(c.change, c.stage_after) for c in changes] == [("stage_changed", "repeat")]


def test_a_return_of_the_only_order_ends_the_customer() -> None:
    assert kinds(summary(1, 3), summary(0)) == ["no_longer_customer", "stage_changed"]


def test_nothing_changes_for_a_click() -> None:
    assert kinds(summary(2, 5, previous=40), summary(2, 5, previous=40)) == []


def test_a_merge_is_reported_with_the_absorbed_persons() -> None:
    changes = profile_changes(
        summary(2, 5, previous=9), summary(2, 5, previous=9), NOW, RULES, ["P7"]
    )
    assert [(c.change, c.absorbed) for c in changes] == [("merged", ("P7",))]
