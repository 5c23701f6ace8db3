"""Scopes: which routes a key may use and which lookup fields it sees."""

from __future__ import annotations

import pytest

from bestand.access import ROUTE_SCOPES, split_api_key, visible_answer
from bestand.api.auth import ApiKeys
from bestand.profile import unknown_answer

ANSWER = {
    **unknown_answer(),
    "known": True,
    "person_id": "P1",
    "existing_customer": True,
    "orders_count": 3,
    "interests": ["shoes"],
    "value": {
        "band": "top10",
        "rfm": "555",
        "recency": 5,
        "frequency": 5,
        "monetary": 5,
        "lifetime_value": 912.5,
        "predicted_value": 400.0,
        "expected_next_order_at": "2026-12-01T00:00:00Z",
    },
}


def test_an_ad_server_sees_only_the_yes_no_answer() -> None:
    seen = visible_answer(ANSWER, "ads")
    assert seen == {
        "known": True,
        "existing_customer": True,
        "lifecycle_stage": "prospect",
        "new_customer_offer_eligible": True,
    }
    assert visible_answer(ANSWER, "affiliate") == seen


def test_personalization_sees_band_and_interests_but_no_amounts() -> None:
    seen = visible_answer(ANSWER, "personalization")
    assert seen["interests"] == ["shoes"]
    assert seen["value"] == {
        "band": "top10",
        "rfm": "555",
        "expected_next_order_at": "2026-12-01T00:00:00Z",
    }
    assert seen["person_id"] == "P1"


def test_admin_sees_everything() -> None:
    assert visible_answer(ANSWER, "admin") == ANSWER


def test_only_admin_reads_reports_and_explanations() -> None:
    assert ROUTE_SCOPES["report"] == {"admin"}
    assert ROUTE_SCOPES["explain"] == {"admin"}
    assert ROUTE_SCOPES["classification"] == {"affiliate", "admin"}


def test_keys_map_to_their_scope() -> None:
    keys = ApiKeys([split_api_key("k-ads:ads"), split_api_key("k:with:colon:admin")])
    assert keys.scope_of("k-ads") == "ads"
    assert keys.scope_of("k:with:colon") == "admin"
    assert keys.scope_of("k-ads:ads") is None
    assert keys.scope_of(None) is None
    assert not keys.accepts("nope")


@pytest.mark.parametrize("entry", ["bare", ":ads", "k:superuser"])
def test_malformed_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="scope"):
        split_api_key(entry)
