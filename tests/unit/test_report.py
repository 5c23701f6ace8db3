"""Campaign truth from person state: exact, and following reclassifications."""

from __future__ import annotations

from datetime import date
from typing import Any

from bestand.events import ResolvedEvent
from bestand.profile import PersonState, apply, merge
from bestand.profile.report import CampaignRow, campaign_rows


def placed(
    person: str,
    event_id: str,
    order_id: str,
    day: int,
    cents: int,
    coupon: str | None = None,
    **attribution: str,
) -> ResolvedEvent:
    data: dict[str, Any] = {
        "event_id": event_id,
        "event_time": f"2026-11-{day:02d}T10:00:00Z",
        "kind": "order",
        "type": "order_placed",
        "topic": "t",
        "person_id": person,
        "identifiers": ["o:" + order_id],
        "order": {
            "order_id": order_id,
            "status": "placed",
            "total_cents": cents,
            "channel": "web",
            "attribution": attribution or None,
            "coupon": coupon,
        },
    }
    return ResolvedEvent.of(data)


def test_rows_split_new_and_existing_customers_per_day_and_source() -> None:
    anna = PersonState("A")
    for event in (
        placed("A", "e1", "o1", 1, 1000, campaign="sem"),
        placed("A", "e2", "o2", 2, 500, campaign="sem"),
        placed("A", "e2", "o2", 2, 500, campaign="sem"),
    ):  # redelivered
        anna = apply(anna, event)
    ben = apply(PersonState("B"), placed("B", "e3", "o3", 2, 700, campaign="sem"))
    rows = campaign_rows([anna, ben], date(2026, 11, 1), date(2026, 11, 30))
    assert rows == [
        CampaignRow("2026-11-01", "sem", None, "web", None, 1, 1000, 0, 0),
        CampaignRow("2026-11-02", "sem", None, "web", None, 1, 700, 1, 500),
    ]
    assert campaign_rows([anna, ben], date(2026, 11, 2), date(2026, 11, 2))[0].day == "2026-11-02"


def test_a_merge_moves_an_order_from_new_to_existing_in_the_report() -> None:
    loyal = apply(PersonState("A"), placed("A", "e1", "o1", 1, 1000))
    guest = apply(PersonState("B"), placed("B", "e2", "o2", 5, 900, affiliate_id="aff-1"))
    before = campaign_rows([loyal, guest], date(2026, 11, 5), date(2026, 11, 5))
    assert (before[0].new_orders, before[0].existing_orders) == (1, 0)
    merged = merge(loyal, guest, event_id="m", at=0)
    after = campaign_rows([merged], date(2026, 11, 5), date(2026, 11, 5))
    assert after == [CampaignRow("2026-11-05", None, "aff-1", "web", None, 0, 0, 1, 900)]


def test_a_first_order_coupon_redeemed_by_existing_customers_shows_as_such() -> None:
    loyal = apply(PersonState("A"), placed("A", "e1", "o1", 1, 1000))
    loyal = apply(loyal, placed("A", "e2", "o2", 3, 800, "FIRST10", affiliate_id="aff-1"))
    stranger = apply(
        PersonState("B"), placed("B", "e3", "o3", 3, 600, "FIRST10", affiliate_id="aff-1")
    )
    rows = campaign_rows([loyal, stranger], date(2026, 11, 3), date(2026, 11, 3))
    assert rows == [CampaignRow("2026-11-03", None, "aff-1", "web", "FIRST10", 1, 600, 1, 800)]
