"""The cookie check of the evaluation: whose a cookie is now, and what the data allows."""

from __future__ import annotations

from typing import Any

from bestand.evaluation.cookies import cookie_truths, kept_orders, score_cookies
from bestand.evaluation.oracle import ceiling
from bestand.identity import IdentityKeyer
from bestand.identity.policy import IdentityPolicy


def _at(day: int) -> str:
    return f"2026-11-{day:02d}T10:00:00Z"


def identify(event_id: str, day: int, **identifiers: str) -> dict[str, Any]:
    return {"type": "identify", "event_id": event_id, "event_time": _at(day),
            "identifiers": identifiers}  # fmt: skip


def view(event_id: str, day: int, cookie: str, **more: str) -> dict[str, Any]:
    return {"type": "page_view", "event_id": event_id, "event_time": _at(day),
            "anonymous_id": cookie, "url": "/", **more}  # fmt: skip


def order(event_id: str, day: int, order_id: str, **more: Any) -> dict[str, Any]:
    customer = more.pop("customer")
    return {"type": "order_placed", "event_id": event_id, "event_time": _at(day),
            "order_id": order_id, "total": "20.00", "currency": "EUR", "channel": "web",
            "customer": {"guest": True, **customer}, **more}  # fmt: skip


EVENTS = [
    # Anna signs up on her laptop, then orders with her e-mail on her phone.
    identify("a1", 1, anonymous_id="ck-anna", email="anna@example.org"),
    order("a2", 2, "o-anna", customer={"email": "anna@example.org"}, anonymous_id="ck-phone"),
    # The family laptop: Anna ordered on it, now Ben logs in there; Ben has bought nothing.
    order("a3", 3, "o-anna-2", customer={"email": "anna@example.org"}, anonymous_id="ck-family"),
    identify("b1", 5, anonymous_id="ck-family", customer_id="K-ben"),
    # Carl buys (with his e-mail) and browses on a cookie he never logs in with.
    order("c1", 4, "o-carl", customer={"email": "carl@example.org"}, anonymous_id="ck-carl"),
    view("c2", 6, "ck-carl-anon"),
    # Dora's only order is cancelled: she is no customer.
    order("d1", 4, "o-dora", customer={"email": "dora@example.org"}, anonymous_id="ck-dora"),
    {"type": "order_cancelled", "event_id": "d2", "event_time": _at(5), "order_id": "o-dora"},
]
TRUTH = {"a1": "anna", "a2": "anna", "a3": "anna", "b1": "ben", "c1": "carl", "c2": "carl",
         "d1": "dora", "d2": "dora"}  # fmt: skip


def _truths() -> dict[str, Any]:
    best = ceiling(EVENTS, TRUTH, IdentityKeyer(b"s", "DE"), IdentityPolicy.default())
    return {t.cookie: t for t in cookie_truths(EVENTS, TRUTH, best.groups.__getitem__)}


def test_each_cookie_answers_for_its_last_user() -> None:
    truths = _truths()
    anna, family = truths["ck-anna"], truths["ck-family"]
    assert (anna.last_user, anna.tie, anna.customer, anna.data_allows, anna.naive) == (
        "anna", "login or sign-up", True, True, False,
    )  # fmt: skip
    # The laptop is Ben's now: no customer, although an order was placed on it.
    assert (family.last_user, family.users, family.customer, family.data_allows, family.naive) == (
        "ben", 2, False, False, True,
    )  # fmt: skip
    # A cookie never tied to anyone: nothing can tell that its user is a customer.
    carl = truths["ck-carl-anon"]
    assert (carl.tie, carl.customer, carl.data_allows) == ("never", True, False)
    assert truths["ck-phone"].tie == "order"
    assert truths["ck-dora"].customer is False


def test_kept_orders_leave_out_cancelled_and_wholly_returned_ones() -> None:
    events = [
        order("x1", 1, "o1", customer={"email": "x@example.org"}),
        order("x2", 1, "o2", customer={"email": "x@example.org"}),
        order("x3", 1, "o3", customer={"email": "x@example.org"}),
        {"type": "order_returned", "event_id": "x4", "event_time": _at(2), "order_id": "o2"},
        {
            "type": "order_refunded",
            "event_id": "x5",
            "event_time": _at(2),
            "order_id": "o3",
            "amount": "5.00",
            "currency": "EUR",
        },
        {"type": "order_cancelled", "event_id": "x6", "event_time": _at(2), "order_id": "o1"},
    ]
    assert kept_orders(events) == {"o3": "x3"}


def test_scores_by_tie_and_for_shared_cookies() -> None:
    truths = _truths()
    answers = {"ck-anna": True, "ck-phone": True, "ck-family": True, "ck-carl": True}
    scores = score_cookies(truths.values(), answers)
    assert scores.cookies["all"] == len(truths) == 6
    assert scores.cookies["shared by several persons"] == 1
    assert scores.right["shared by several persons"] == 0  # answered for Anna, Ben's now
    assert scores.naive["shared by several persons"] == 0
    assert scores.cookies["can be tied"] == 5
    assert scores.right["can be tied"] == 4  # all but the family laptop
    assert scores.allows["can be tied"] == 5
    assert scores.share(scores.right, "can be tied") == 0.8
