"""Offers: no first-order offer for existing customers; loyalty offers by rule."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bestand.profile.offers import (
    DEFAULT_OFFERS,
    LoyaltyOffer,
    loyalty_offers,
    new_customer_offer_eligible,
)
from bestand.settings import Settings

DAY = 86400
NOW = 1_800_000_000


def test_only_people_without_an_order_get_the_first_order_offer() -> None:
    assert new_customer_offer_eligible(0)
    assert not new_customer_offer_eligible(1)
    assert not new_customer_offer_eligible(7)


@pytest.mark.parametrize(
    ("orders", "days_ago", "stage", "expected"),
    [
        (0, None, "prospect", []),
        (1, 10, "first_time", []),
        (2, 10, "repeat", ["loyalty-thank-you"]),
        (5, 400, "lapsed", ["win-back"]),
        (1, 500, "lapsed", ["win-back"]),
    ],
)
def test_default_loyalty_offers(
    orders: int, days_ago: int | None, stage: str, expected: list[str]
) -> None:
    last = None if days_ago is None else NOW - days_ago * DAY
    got = loyalty_offers(
        DEFAULT_OFFERS, orders_count=orders, last_order_at=last, stage=stage, now=NOW
    )  # type: ignore[arg-type]
    assert got == expected


def test_offers_come_from_settings() -> None:
    settings = Settings(
        _env_file=None,
        loyalty_offers=[
            {"name": "vip", "min_orders": 4, "stages": ["loyal"]},
        ],
    )
    assert settings.offers == (LoyaltyOffer("vip", 4, None, ("loyal",)),)
    with pytest.raises(ValidationError, match="loyalty offer"):
        Settings(_env_file=None, loyalty_offers=[{"min_orders": 2}])
