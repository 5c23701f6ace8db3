"""Profile changes: what one event changed in a person's answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from bestand.events.changes import ProfileChange, change_json
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


@pytest.mark.parametrize(
    "event_time",
    [
        datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
        datetime(2026, 11, 20, 18, 3, 11, 250_000, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_a_change_written_without_the_model_is_the_models_json(event_time: datetime) -> None:
    values: dict[str, Any] = {
        "person_id": "P1",
        "event_id": "ev-1",
        "event_time": event_time,
        "changed_at": datetime(2026, 11, 20, 10, 0, 1, 123_456, tzinfo=UTC),
        "existing_customer": True,
        "orders_count": 2,
        "stage_before": "first_time",
        "stage_after": "repeat",
        "absorbed": ["P2"],
    }
    for change in ("merged", "erased"):
        expected = ProfileChange(change=change, **values).model_dump_json().encode()
        assert change_json(change, **values) == expected
    bare = {k: values[k] for k in ("person_id", "event_id", "event_time", "changed_at")}
    assert (
        change_json("erased", **bare)
        == ProfileChange(change="erased", **bare).model_dump_json().encode()
    )
