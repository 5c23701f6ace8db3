"""Shopify's order webhooks as bestand's events: ``orders/create``, ``orders/cancelled`` and
``refunds/create``, by the ``X-Shopify-Topic`` header.

| topic | bestand event |
|---|---|
| ``orders/create`` | ``order_placed``: e-mail, phone, customer id, name and address, total, |
| | currency, channel from ``source_name``, UTM and click ids from ``landing_site`` |
| ``orders/cancelled`` | ``order_cancelled`` with Shopify's ``cancel_reason`` |
| ``refunds/create`` | ``order_refunded``: the refund's successful transactions summed |

The event id is the webhook's id (``X-Shopify-Webhook-Id``): Shopify sends a webhook again
until it is acknowledged, with the same id, and the worker applies a redelivery once. The
body's authenticity is the caller's to check first (:func:`signed`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bestand.collector.mapping import (
    Mapped,
    Refused,
    Skipped,
    mapped,
    parse_time,
    quantity_of,
    text_of,
    url_attribution,
)
from bestand.ingest.orders import CHANNELS

TOPICS = ("orders/create", "orders/cancelled", "refunds/create")
SOURCE = "shopify"


def signed(body: bytes, signature: bytes | None, secret: bytes) -> bool:
    """Whether ``X-Shopify-Hmac-Sha256`` is the Base64 HMAC-SHA256 of the raw body under the
    app's secret, compared in constant time."""
    if not signature:
        return False
    expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.strip())


def from_shopify(
    topic: str, webhook_id: str, payload: Mapping[str, Any], *, received_at: datetime
) -> Mapped | Skipped:
    """One webhook as a bestand event (validated), or skipped for a topic bestand has no use
    for (the shop may subscribe more topics to the same address); raises :class:`Refused`."""
    if topic not in TOPICS:
        return Skipped(f"shopify topic {topic}"[:64])
    if not webhook_id.strip():
        raise Refused("schema", "X-Shopify-Webhook-Id is missing")
    base = {"event_id": f"shopify-{webhook_id.strip()}", "source": SOURCE}
    if topic == "refunds/create":
        return _refund(base, payload, received_at)
    order_id = text_of(payload, "id")
    if order_id is None:
        raise Refused("schema", "the order has no id")
    if topic == "orders/cancelled":
        event = {
            **base,
            "type": "order_cancelled",
            "event_time": _time(payload, ("cancelled_at", "updated_at"), received_at),
            "order_id": order_id,
        }
        if reason := text_of(payload, "cancel_reason"):
            event["reason"] = reason
        return mapped(event)
    return mapped(_order(base, order_id, payload, received_at))


def _order(
    base: dict[str, Any], order_id: str, order: Mapping[str, Any], received_at: datetime
) -> dict[str, Any]:
    total = _amount(order.get("total_price"), "total_price")
    if total is None:
        raise Refused("schema", "the order has no total_price")
    currency = text_of(order, "currency") or text_of(order, "presentment_currency")
    if currency is None:
        raise Refused("schema", "the order has no currency")
    buyer = _object(order, "customer")
    billing, shipping = _object(order, "billing_address"), _object(order, "shipping_address")
    customer_id = text_of(buyer, "id")
    customer: dict[str, Any] = {"customer_id": customer_id} if customer_id else {"guest": True}
    email = text_of(order, "email") or text_of(order, "contact_email") or text_of(buyer, "email")
    if email:
        customer["email"] = email
    phone = (
        text_of(order, "phone")
        or text_of(buyer, "phone")
        or text_of(billing, "phone")
        or text_of(shipping, "phone")
    )
    if phone:
        customer["phone"] = phone
    for field in ("first_name", "last_name"):
        value = text_of(billing, field) or text_of(shipping, field) or text_of(buyer, field)
        if value:
            customer[field] = value
    if address := _address(billing or shipping):
        customer["address"] = address
    event: dict[str, Any] = {
        **base,
        "type": "order_placed",
        "event_time": _time(order, ("processed_at", "created_at"), received_at),
        "order_id": order_id,
        "total": total,
        "currency": currency.upper(),
        "channel": CHANNELS.get(text_of(order, "source_name") or "web", "web"),
        "customer": customer,
    }
    if attribution := url_attribution(text_of(order, "landing_site")):
        event["attribution"] = attribution
    items = order.get("line_items")
    if isinstance(items, list) and items:
        event["items"] = sum(quantity_of(item) for item in items)
    codes = order.get("discount_codes")
    first_code = codes[0] if isinstance(codes, list) and codes else None
    if isinstance(first_code, Mapping) and (coupon := text_of(first_code, "code")):
        event["coupon"] = coupon
    return event


def _refund(base: dict[str, Any], refund: Mapping[str, Any], received_at: datetime) -> Mapped:
    order_id = text_of(refund, "order_id")
    if order_id is None:
        raise Refused("schema", "the refund has no order_id")
    event: dict[str, Any] = {
        **base,
        "type": "order_refunded",
        "event_time": _time(refund, ("processed_at", "created_at"), received_at),
        "order_id": order_id,
    }
    amount, currency = Decimal(0), None
    for transaction in refund.get("transactions") or ():
        if not isinstance(transaction, Mapping) or transaction.get("kind") != "refund":
            continue
        if transaction.get("status") not in (None, "success"):
            continue
        value = _amount(transaction.get("amount"), "a transaction's amount")
        if value is not None:
            amount += Decimal(value)
            currency = currency or text_of(transaction, "currency")
    if amount > 0 and currency:
        event["amount"] = str(amount)
        event["currency"] = currency.upper()
    if note := text_of(refund, "note"):
        event["reason"] = note
    return mapped(event)


def _address(address: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for source, field in (("address1", "street"), ("zip", "postcode"), ("city", "city")):
        if value := text_of(address, source):
            out[field] = value
    country = text_of(address, "country_code")
    if country and len(country) == 2 and country.isalpha():
        out["country"] = country.upper()
    return out


def _time(payload: Mapping[str, Any], fields: tuple[str, ...], received_at: datetime) -> str:
    """The first of ``fields`` that holds a time, else the time received."""
    for field in fields:
        value = payload.get(field)
        if isinstance(value, str) and value.strip():
            return parse_time(value, field).isoformat()
    return received_at.isoformat()


def _amount(value: Any, what: str) -> str | None:
    """Shopify's money (a decimal text such as "59.90")."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Refused("schema", f"{what} must be a decimal number")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise Refused("schema", f"{what} is not a number: {str(value)[:32]!r}") from None
    return str(amount)


def _object(holder: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    value = holder.get(field)
    return value if isinstance(value, Mapping) else {}
