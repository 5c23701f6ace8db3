"""The ceiling: what the data allows without a single wrong merge."""

from __future__ import annotations

from typing import Any

from bestand.evaluation.oracle import ceiling
from bestand.evaluation.replay import returning_guest_orders
from bestand.identity import IdentityKeyer, IdKind
from bestand.identity.policy import IdentityPolicy
from bestand.simulate import simulate


def order(n: int, **customer: Any) -> dict[str, Any]:
    return {
        "type": "order_placed",
        "event_id": f"e{n}",
        "event_time": f"2026-11-0{n}T10:00:00Z",
        "order_id": f"o{n}",
        "total": "10.00",
        "currency": "EUR",
        "channel": "store",
        "customer": {"guest": True, **customer},
    }


KEYER = IdentityKeyer(b"secret", "DE")


def test_orders_sharing_nothing_cannot_be_joined() -> None:
    events = [
        order(1, email="anna@example.org"),
        order(2, email="ANNA@example.org", phone="0151 23847561"),
        order(3, first_name="Anna", last_name="Berg"),  # only a name: nothing links
        order(4, email="kunde@shop.de", phone="0160 9182 7364"),  # Ben
        order(5, email="kunde@shop.de"),  # Carl: a dummy joins nobody
    ]
    truth = {"e1": "anna", "e2": "anna", "e3": "anna", "e4": "ben", "e5": "carl"}
    best = ceiling(events, truth, KEYER, IdentityPolicy.default())
    assert best.scores.true_pairs == 3
    assert best.scores.correct_pairs == 1  # o1 and o2; o3 shares nothing
    assert best.scores.precision == 1.0
    # o3 (a name only) and o5 (a dummy only) name nobody: anonymous sales, nobody's customer.
    assert best.anonymous == {"o3", "o5"}
    assert best.customers == 2  # anna, ben
    # The dummy is junk by pattern: the evaluation counts any merge through it.
    assert best.junk == {KEYER.key_all([(IdKind.EMAIL, "kunde@shop.de", False)]).junk[0][0].token}


def test_identifiers_that_never_link_are_counted_by_kind_and_why() -> None:
    events = [
        order(1, email="kunde@shop.de", phone="12"),
        order(2, email="kunde@shop.de", phone="0171 234567"),  # a digit short: it links
        order(3, phone="0151 11111111"),
    ]
    truth = {"e1": "anna", "e2": "anna", "e3": "ben"}
    best = ceiling(events, truth, KEYER, IdentityPolicy.default())
    assert best.unused == {
        ("email", "junk by pattern", "dummy e-mail local part 'kunde'"): 2,
        ("phone", "refused", "not a possible phone number for its region (its length)"): 1,
        ("phone", "junk by pattern", "all subscriber digits are equal"): 1,
    }


def test_the_ceiling_of_a_simulated_shop_is_never_wrong() -> None:
    shop = simulate(persons=200, seed=5)
    best = ceiling(shop.events, shop.truth, KEYER, IdentityPolicy.default())
    assert best.scores.precision == 1.0
    assert 0.5 < best.scores.recall <= 1.0


def test_returning_guests_are_scored_on_the_sales_that_name_someone() -> None:
    truth = {"o1": "anna", "o2": "anna", "o3": "anna", "o4": "rita", "o5": "walt"}
    kinds = {"anna": "loyal_guest", "rita": "registered", "walt": "walk_in"}
    named, left_out = returning_guest_orders(truth, kinds, anonymous={"o3", "o5"})
    # Rita has an account, not a guest; Anna's cash sale o3 and Walt's only sale name nobody.
    assert named == {"o1": "anna", "o2": "anna"}
    assert left_out == 2
    named, left_out = returning_guest_orders(truth, kinds, anonymous=set())
    assert set(named) == {"o1", "o2", "o3", "o5"}
    assert left_out == 0
