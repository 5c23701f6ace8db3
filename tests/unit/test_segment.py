"""Segment's calls as bestand's events: the mapping of ``bestand.collector.segment``.

The calls follow Segment's documented examples (the Spec's identify, page and track calls and
the e-commerce v2 events); every mapped event must be valid under bestand's contracts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bestand.collector.mapping import Mapped, Refused, Skipped
from bestand.collector.segment import from_segment
from bestand.events.decode import ADAPTERS

RECEIVED = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)


def mapped(call: dict[str, Any], **options: Any) -> dict[str, Any]:
    outcome = from_segment(call, received_at=RECEIVED, default_currency="EUR", **options)
    assert isinstance(outcome, Mapped), outcome
    ADAPTERS[outcome.kind].validate_python(outcome.event)  # valid under its contract
    return outcome.event


def refused(call: dict[str, Any]) -> Refused:
    with pytest.raises(Refused) as caught:
        from_segment(call, received_at=RECEIVED, default_currency="EUR")
    return caught.value


ORDER_COMPLETED: dict[str, Any] = {
    "type": "track",
    "event": "Order Completed",
    "userId": "019mr8mf4r",
    "anonymousId": "507f191e810c19729de860ea",
    "messageId": "ajs-next-1",
    "timestamp": "2026-11-20T11:58:00.000Z",
    "context": {
        "ip": "8.8.8.8",
        "campaign": {"name": "TPS Innovation Newsletter", "source": "Newsletter",
                     "medium": "email", "term": "tps reports", "content": "image link"},
        "page": {"url": "https://shop.example/checkout?gclid=Cj0KCQ", "referrer": ""},
        "traits": {"email": "Peter.Gibbons@Initech.com", "firstName": "Peter",
                   "lastName": "Gibbons",
                   "address": {"street": "6th St", "city": "Berlin", "postalCode": "10115",
                               "country": "de"}},
    },
    "properties": {
        "checkout_id": "fksdjfsdjfisjf9sdfjsd9f",
        "order_id": "50314b8e9bcf000000000000",
        "affiliation": "Google Store",
        "total": 27.5,
        "subtotal": 22.5,
        "revenue": 25.0,
        "shipping": 3,
        "tax": 2,
        "discount": 2.5,
        "coupon": "hasbros",
        "currency": "USD",
        "products": [
            {"product_id": "507f1f77bcf86cd799439011", "sku": "45790-32", "price": 19,
             "quantity": 1},
            {"product_id": "505bd76785ebb509fc183733", "sku": "46493-32", "price": 3,
             "quantity": 2},
        ],
    },
}  # fmt: skip


def test_order_completed_is_an_order_placed_with_customer_attribution_and_items() -> None:
    event = mapped(ORDER_COMPLETED)
    assert event == {
        "event_id": "ajs-next-1",
        "event_time": "2026-11-20T11:58:00+00:00",
        "source": "segment",
        "type": "order_placed",
        "order_id": "50314b8e9bcf000000000000",
        "total": "27.50",
        "currency": "USD",
        "channel": "web",
        "customer": {
            "customer_id": "019mr8mf4r",
            "email": "Peter.Gibbons@Initech.com",
            "first_name": "Peter",
            "last_name": "Gibbons",
            "address": {"street": "6th St", "postcode": "10115", "city": "Berlin",
                        "country": "DE"},
        },
        "anonymous_id": "507f191e810c19729de860ea",
        "attribution": {
            "utm_campaign": "TPS Innovation Newsletter",
            "utm_source": "Newsletter",
            "utm_medium": "email",
            "utm_term": "tps reports",
            "utm_content": "image link",
            "click_id": "Cj0KCQ",
        },
        "items": 3,
        "coupon": "hasbros",
    }  # fmt: skip


def test_an_order_without_user_id_is_a_guest_order_and_floats_become_cents() -> None:
    properties = {"order_id": "o-9", "revenue": 19.990000000000002}
    call = {"type": "track", "event": "Order Completed", "anonymousId": "a-1",
            "messageId": "m-9", "properties": properties,
            "context": {"app": {"name": "Shop"}}}  # fmt: skip
    event = mapped(call)
    assert event["customer"] == {"guest": True}
    assert (event["total"], event["currency"], event["channel"]) == ("19.99", "EUR", "app")


@pytest.mark.parametrize(
    ("name", "properties", "expected"),
    [
        ("Order Cancelled", {"order_id": "o-1", "reason": "changed mind"},
         {"type": "order_cancelled", "order_id": "o-1", "reason": "changed mind"}),
        ("Order Refunded", {"order_id": "o-1", "total": 30, "currency": "chf"},
         {"type": "order_refunded", "order_id": "o-1", "amount": "30.00", "currency": "CHF"}),
        ("Order Refunded", {"order_id": "o-1"}, {"type": "order_refunded", "order_id": "o-1"}),
    ],
)  # fmt: skip
def test_cancellations_and_refunds(
    name: str, properties: dict[str, Any], expected: dict[str, Any]
) -> None:
    call = {"type": "track", "event": name, "userId": "u-1", "messageId": "m",
            "properties": properties}  # fmt: skip
    event = mapped(call)
    assert {k: v for k, v in event.items() if k in expected} == expected
    assert set(event) - set(expected) == {"event_id", "event_time", "source"}


def test_product_viewed_and_added_are_clickstream_events() -> None:
    context = {"page": {"url": "https://shop.example/p/1?utm_source=google&utm_medium=cpc",
                        "referrer": "https://google.com/"},
               "device": {"advertisingId": "7A3CBEA0-BDF5-11E4-8DFC-AA07A5B093DB"}}  # fmt: skip
    viewed = mapped({"type": "track", "event": "Product Viewed", "anonymousId": "a-2",
                     "userId": "u-2", "messageId": "v", "context": context,
                     "properties": {"sku": "G-32", "category": "Games"}})  # fmt: skip
    assert viewed["type"] == "product_view"
    assert (viewed["product_id"], viewed["category"]) == ("G-32", "Games")
    assert (viewed["anonymous_id"], viewed["customer_id"]) == ("a-2", "u-2")
    assert viewed["device_id"] == "7A3CBEA0-BDF5-11E4-8DFC-AA07A5B093DB"
    assert viewed["url"].startswith("https://shop.example/p/1")
    assert viewed["referrer"] == "https://google.com/"
    assert viewed["attribution"] == {"utm_source": "google", "utm_medium": "cpc"}
    added = mapped({"type": "track", "event": "Product Added", "anonymousId": "a-2",
                    "messageId": "add", "properties": {"product_id": "p-1", "quantity": 2,
                                                       "price": 9.5}})  # fmt: skip
    assert (added["type"], added["quantity"], added["price"]) == ("add_to_cart", 2, "9.50")


def test_identify_takes_traits_and_page_takes_the_page() -> None:
    identify = mapped({"type": "identify", "userId": 97980, "anonymousId": "a-3",
                       "messageId": 123, "traits": {"email": "x@example.com",
                                                    "phone": "+49 30 1234567"}})  # fmt: skip
    assert identify["identifiers"] == {
        "customer_id": "97980", "anonymous_id": "a-3", "email": "x@example.com",
        "phone": "+49 30 1234567",
    }  # fmt: skip
    assert identify["event_id"] == "123"
    properties = {"url": "https://shop.example/", "referrer": "https://x.y/"}
    page = mapped({"type": "page", "anonymousId": "a-3", "messageId": "p", "name": "Home",
                   "properties": properties})  # fmt: skip
    assert (page["type"], page["url"], page["referrer"]) == (
        "page_view", "https://shop.example/", "https://x.y/"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("call", "why"),
    [
        ({"type": "track", "event": "Checkout Step Viewed", "userId": "u"}, "other track event"),
        ({"type": "screen", "userId": "u", "name": "Home"}, "screen"),
        ({"type": "alias", "userId": "u", "previousId": "old"}, "alias"),
        ({"type": "page", "userId": "u"}, "page without anonymousId"),
        ({"type": "track", "event": "Product Viewed", "userId": "u",
          "properties": {"product_id": "p"}}, "Product Viewed without anonymousId"),
    ],
)  # fmt: skip
def test_calls_of_no_use_are_skipped(call: dict[str, Any], why: str) -> None:
    assert from_segment(call, received_at=RECEIVED, default_currency="EUR") == Skipped(why)


@pytest.mark.parametrize(
    ("call", "reason", "says"),
    [
        ({"type": "identify", "traits": {"email": "a@b.de"}}, "no_identifier", "userId"),
        ({"type": "track", "userId": "u"}, "schema", "event name"),
        ({"type": "track", "event": "Order Completed", "userId": "u",
          "properties": {"order_id": "o"}}, "schema", "total"),
        ({"type": "track", "event": "Order Completed", "userId": "u",
          "properties": {"total": 10}}, "schema", "order_id"),
        ({"type": "track", "event": "Order Completed", "userId": "u",
          "properties": {"order_id": "o", "total": "ten"}}, "schema", "not a number"),
        ({"type": "track", "event": "Order Completed", "userId": "u",
          "properties": {"order_id": "o", "total": -5}}, "schema", "total"),
        ({"type": "track", "event": "Order Completed", "userId": "u",
          "properties": {"order_id": "o", "total": 5, "currency": "euro"}}, "schema",
         "currency"),
        ({"type": "track", "event": "Product Added", "anonymousId": "a"}, "schema",
         "product_id"),
        ({"type": "identify", "userId": "u", "traits": {"email": "x" * 400}}, "schema",
         "identifiers.email"),
        ({"type": "identify", "userId": "u", "timestamp": "yesterday"}, "schema", "timestamp"),
        ({"type": "identify", "userId": "u", "timestamp": "2026-11-20T10:00:00"}, "schema",
         "time zone"),
        ({"type": "fly", "userId": "u"}, "schema", "unknown call type"),
    ],
)  # fmt: skip
def test_calls_that_make_no_valid_event_are_refused_with_the_reason(
    call: dict[str, Any], reason: str, says: str
) -> None:
    error = refused(call)
    assert error.reason == reason
    assert says in error.detail


def test_the_event_time_corrects_the_device_clock_as_segment_does() -> None:
    # The device's clock runs 10 minutes ahead: it stamped the call 11:55 by its clock and
    # sent it at 12:05 by its clock, received 11:55:30 by the collector's.
    call = {"type": "identify", "userId": "u", "messageId": "m",
            "originalTimestamp": "2026-11-20T11:55:00Z",
            "sentAt": "2026-11-20T12:05:00Z"}  # fmt: skip
    received = datetime(2026, 11, 20, 11, 55, 30, tzinfo=UTC)
    outcome = from_segment(call, received_at=received, default_currency="EUR")
    assert isinstance(outcome, Mapped)
    assert outcome.event["event_time"] == "2026-11-20T11:45:30+00:00"
    no_stamp = mapped({"type": "identify", "userId": "u", "messageId": "n"})
    assert no_stamp["event_time"] == RECEIVED.isoformat()
    batch_sent = {k: v for k, v in call.items() if k != "sentAt"}
    outcome = from_segment(
        batch_sent, received_at=received, default_currency="EUR", sent_at=call["sentAt"]
    )
    assert isinstance(outcome, Mapped)
    assert outcome.event["event_time"] == "2026-11-20T11:45:30+00:00"


def test_a_call_without_message_id_gets_one_from_its_content() -> None:
    call = {"type": "identify", "userId": "u-5", "traits": {"email": "a@example.com"}}
    first, again = mapped(call), mapped(dict(reversed(list(call.items()))))
    assert first["event_id"] == again["event_id"]
    assert first["event_id"].startswith("segment-")
    assert mapped({**call, "userId": "u-6"})["event_id"] != first["event_id"]
