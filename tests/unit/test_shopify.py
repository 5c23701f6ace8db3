"""Shopify's order webhooks as bestand's events: ``bestand.collector.shopify``.

The payloads follow the shape of Shopify's documented webhook samples (an order with its
customer, billing and shipping address and line items; a refund with its transactions);
every mapped event must be valid under bestand's contracts.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import pytest

from bestand.collector.mapping import Mapped, Refused, Skipped
from bestand.collector.shopify import from_shopify, signed
from bestand.events.decode import ADAPTERS

RECEIVED = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)

ORDER: dict[str, Any] = {
    "id": 820982911946154508,
    "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
    "email": "jon@example.com",
    "phone": None,
    "created_at": "2026-11-20T09:15:00-05:00",
    "processed_at": "2026-11-20T09:15:00-05:00",
    "currency": "USD",
    "presentment_currency": "USD",
    "total_price": "403.00",
    "subtotal_price": "393.00",
    "total_tax": "0.00",
    "financial_status": "paid",
    "name": "#9999",
    "source_name": "web",
    "landing_site": "/products/ipod?utm_source=newsletter&utm_medium=email&gclid=EAIaIQ",
    "referring_site": "https://www.google.com/",
    "cancelled_at": None,
    "cancel_reason": None,
    "discount_codes": [{"code": "TENOFF", "amount": "10.00", "type": "fixed_amount"}],
    "customer": {
        "id": 115310627314723954,
        "email": "john@example.com",
        "first_name": "John",
        "last_name": "Smith",
        "phone": None,
    },
    "billing_address": {
        "first_name": "Steve",
        "last_name": "Shipper",
        "address1": "123 Shipping Street",
        "city": "Shippington",
        "zip": "40003",
        "province": "Kentucky",
        "country": "United States",
        "country_code": "US",
        "phone": "555-555-SHIP",
    },
    "shipping_address": {
        "first_name": "Steve",
        "last_name": "Shipper",
        "address1": "123 Shipping Street",
        "city": "Shippington",
        "zip": "40003",
        "country_code": "US",
    },
    "line_items": [
        {"id": 866550311766439020, "quantity": 1, "price": "199.00", "sku": "IPOD2008BLACK"},
        {"id": 141249953214522974, "quantity": 1, "price": "199.00", "sku": "IPOD2008BLACK"},
    ],
}


def mapped(topic: str, payload: dict[str, Any], webhook: str = "b54557e4-bdd9") -> dict[str, Any]:
    outcome = from_shopify(topic, webhook, payload, received_at=RECEIVED)
    assert isinstance(outcome, Mapped), outcome
    ADAPTERS[outcome.kind].validate_python(outcome.event)
    return outcome.event


def test_orders_create_is_an_order_placed() -> None:
    event = mapped("orders/create", ORDER)
    assert event == {
        "event_id": "shopify-b54557e4-bdd9",
        "source": "shopify",
        "type": "order_placed",
        "event_time": "2026-11-20T09:15:00-05:00",
        "order_id": "820982911946154508",
        "total": "403.00",
        "currency": "USD",
        "channel": "web",
        "customer": {
            "customer_id": "115310627314723954",
            "email": "jon@example.com",
            "phone": "555-555-SHIP",
            "first_name": "Steve",
            "last_name": "Shipper",
            "address": {"street": "123 Shipping Street", "postcode": "40003",
                        "city": "Shippington", "country": "US"},
        },
        "attribution": {"utm_source": "newsletter", "utm_medium": "email", "click_id": "EAIaIQ"},
        "items": 2,
        "coupon": "TENOFF",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("source", "channel"),
    [("pos", "store"), ("iphone", "app"), ("android", "app"), ("shopify_draft_order", "phone"),
     ("web", "web"), ("some_sales_app", "web")],
)  # fmt: skip
def test_the_order_source_is_the_sales_channel(source: str, channel: str) -> None:
    assert mapped("orders/create", {**ORDER, "source_name": source})["channel"] == channel


def test_an_order_without_a_customer_is_a_guest_order() -> None:
    order = copy.deepcopy(ORDER)
    order["customer"] = None
    order["landing_site"] = None
    event = mapped("orders/create", order)
    assert event["customer"]["guest"] is True
    assert "customer_id" not in event["customer"]
    assert "attribution" not in event


def test_a_cancellation_and_a_refund() -> None:
    cancelled = {**ORDER, "cancelled_at": "2026-11-21T10:00:00-05:00", "cancel_reason": "customer"}
    event = mapped("orders/cancelled", cancelled, webhook="c-1")
    assert event == {
        "event_id": "shopify-c-1", "source": "shopify", "type": "order_cancelled",
        "event_time": "2026-11-21T10:00:00-05:00", "order_id": "820982911946154508",
        "reason": "customer",
    }  # fmt: skip
    refund = {
        "id": 509562969,
        "order_id": 820982911946154508,
        "created_at": "2026-11-22T10:00:00-05:00",
        "note": "wrong size",
        "transactions": [
            {"kind": "refund", "status": "success", "amount": "41.94", "currency": "USD"},
            {"kind": "refund", "status": "failure", "amount": "99.00", "currency": "USD"},
            {"kind": "refund", "status": "success", "amount": "8.06", "currency": "USD"},
        ],
    }
    event = mapped("refunds/create", refund, webhook="r-1")
    assert (event["type"], event["order_id"]) == ("order_refunded", "820982911946154508")
    assert (event["amount"], event["currency"], event["reason"]) == ("50.00", "USD", "wrong size")


def test_other_topics_are_skipped_and_broken_webhooks_refused() -> None:
    skipped = from_shopify("orders/updated", "w", ORDER, received_at=RECEIVED)
    assert skipped == Skipped("shopify topic orders/updated")
    for topic, webhook, payload, says in [
        ("orders/create", "", ORDER, "X-Shopify-Webhook-Id"),
        ("orders/create", "w", {**ORDER, "total_price": None}, "total_price"),
        ("orders/create", "w", {**ORDER, "total_price": "a lot"}, "not a number"),
        ("orders/create", "w", {**ORDER, "currency": None, "presentment_currency": None},
         "currency"),
        ("orders/create", "w", {k: v for k, v in ORDER.items() if k != "id"}, "no id"),
        ("orders/create", "w", {**ORDER, "email": "x" * 400}, "customer.email"),
        ("refunds/create", "w", {"transactions": []}, "order_id"),
    ]:  # fmt: skip
        with pytest.raises(Refused) as caught:
            from_shopify(topic, webhook, payload, received_at=RECEIVED)
        assert says in caught.value.detail


def test_the_signature_is_the_hmac_of_the_raw_body() -> None:
    body, secret = b'{"id":1}', b"app-secret"
    good = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
    assert signed(body, good, secret)
    assert signed(body, good + b"\n", secret)
    assert not signed(body + b" ", good, secret)
    assert not signed(body, good, b"other-secret")
    assert not signed(body, None, secret)
    assert not signed(body, b"", secret)
