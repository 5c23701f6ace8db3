"""The widget's rate limit and what a widget key may see (``api/widget.py``, ``access.py``)."""

from __future__ import annotations

from bestand.access import LOOKUP_FIELDS, ROUTE_SCOPES, visible_answer
from bestand.api.widget import SNIPPET, RateLimit


def test_the_rate_limit_is_a_bucket_per_client_that_refills() -> None:
    limit = RateLimit(per_minute=3)
    assert [limit.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.take("a", now=0.0) == 20.0  # one request every 20 s
    assert limit.take("b", now=0.0) == 0.0  # another client has its own budget
    assert limit.take("a", now=20.0) == 0.0  # refilled by one
    assert limit.take("a", now=20.0) > 0


def test_the_rate_limit_forgets_the_least_recent_clients_first() -> None:
    limit = RateLimit(per_minute=1, clients=2)
    limit.take("a", now=0.0)
    limit.take("b", now=0.0)
    limit.take("c", now=0.0)  # "a" is forgotten: a full budget again
    assert limit.take("a", now=0.0) == 0.0
    assert limit.take("c", now=0.0) > 0


def test_a_widget_key_sees_no_person_id_and_no_amounts_and_only_its_route() -> None:
    answer = {"known": True, "person_id": "P1", "existing_customer": True, "orders_count": 3,
              "lifecycle_stage": "repeat", "new_customer_offer_eligible": False,
              "loyalty_offers": ["free_shipping"], "interests": ["shoes"],
              "value": {"band": "high", "lifetime_value": 420.0},
              "consent": {"ads": True}}  # fmt: skip
    assert visible_answer(answer, "widget") == {
        "known": True, "existing_customer": True, "lifecycle_stage": "repeat",
        "new_customer_offer_eligible": False, "loyalty_offers": ["free_shipping"],
        "interests": ["shoes"],
    }  # fmt: skip
    assert "widget" not in ROUTE_SCOPES["lookup"]
    assert ROUTE_SCOPES["widget"] == {"widget", "admin"}
    assert LOOKUP_FIELDS["widget"] is not None
    assert b"ajs_anonymous_id" in SNIPPET
