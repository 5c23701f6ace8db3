"""Segment's tracking calls as bestand's events: what a shop's analytics.js or Segment library
already sends, mapped to the contracts of ``bestand.events``.

A call becomes one event or none. ``identify`` becomes ``identify``, ``page`` a ``page_view``,
and the e-commerce events of Segment's spec (v2) their orders and clickstream events:

| Segment call | bestand event |
|---|---|
| ``identify`` | ``identify`` (``userId``, ``anonymousId``, traits' e-mail and phone) |
| ``page`` | ``page_view`` |
| ``track`` "Order Completed" | ``order_placed`` |
| ``track`` "Order Cancelled" | ``order_cancelled`` |
| ``track`` "Order Refunded" | ``order_refunded`` |
| ``track`` "Product Viewed" | ``product_view`` |
| ``track`` "Product Added" | ``add_to_cart`` |

Every other call (other track events, ``screen``, ``group``, ``alias``) is valid Segment and
of no use to bestand: it is skipped, and counted. So is a clickstream call without an
``anonymousId`` (bestand's clickstream is a visitor's). A call that breaks Segment's spec or
makes no valid bestand event (no ``userId`` nor ``anonymousId``, an order without a total,
an e-mail of 400 characters) is refused with the reason.

``messageId`` is the event id: a library that sends a message again (after a timeout) sends
a redelivery, which the worker applies once. The event time is Segment's: ``timestamp`` when
given, else the device's ``originalTimestamp`` corrected by the skew between its clock and
the collector's (``sentAt`` against the time received), else the time received.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import orjson

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

#: What every event from this collector names as its source.
SOURCE = "segment"
#: Segment's e-commerce (v2) track events and the bestand event each becomes.
ECOMMERCE = {
    "Order Completed": "order_placed",
    "Order Cancelled": "order_cancelled",
    "Order Refunded": "order_refunded",
    "Product Viewed": "product_view",
    "Product Added": "add_to_cart",
}
_CENT = Decimal("0.01")


def from_segment(
    call: Mapping[str, Any],
    *,
    received_at: datetime,
    default_currency: str,
    sent_at: Any = None,
) -> Mapped | Skipped:
    """Map one Segment call (``type`` set: the route's or the batch item's own).

    ``sent_at`` is the batch's ``sentAt`` where the call has none of its own. Raises
    :class:`Refused`.
    """
    if not isinstance(call, Mapping):
        raise Refused("schema", "a call must be a JSON object")
    kind = call.get("type")
    user, anonymous = text_of(call, "userId"), text_of(call, "anonymousId")
    if user is None and anonymous is None:
        raise Refused("no_identifier", "a call needs a userId or an anonymousId")
    context = _object(call, "context")
    base: dict[str, Any] = {
        "event_id": _message_id(call),
        "event_time": _event_time(call, received_at, call.get("sentAt", sent_at)),
        "source": SOURCE,
    }
    if kind == "identify":
        traits = {**_object(context, "traits"), **_object(call, "traits")}
        identifiers = _identifiers(user, anonymous, traits, context)
        return mapped({**base, "type": "identify", "identifiers": identifiers})
    if kind == "page":
        if anonymous is None:
            return Skipped("page without anonymousId")
        properties = _object(call, "properties")
        return mapped(_click("page_view", base, user, anonymous, properties, context))
    if kind != "track":
        if kind in ("screen", "group", "alias"):
            return Skipped(str(kind))
        raise Refused("schema", f"unknown call type {kind!r} (identify, page, track, ...)")
    name = call.get("event")
    if not isinstance(name, str) or not name.strip():
        raise Refused("schema", "a track call needs an event name")
    target = ECOMMERCE.get(name.strip())
    if target is None:
        return Skipped("other track event")
    properties = _object(call, "properties")
    if target == "order_placed":
        return mapped(_order(base, user, anonymous, properties, context, default_currency))
    if target in ("order_cancelled", "order_refunded"):
        event = {**base, "type": target, "order_id": _required(properties, "order_id", name)}
        if reason := text_of(properties, "reason"):
            event["reason"] = reason
        if target == "order_refunded":
            amount = _money(properties, ("total", "revenue", "value"), name)
            if amount is not None:
                event["amount"] = amount
                event["currency"] = _currency(properties, default_currency)
        return mapped(event)
    if anonymous is None:
        return Skipped(f"{name.strip()} without anonymousId")
    event = _click(target, base, user, anonymous, properties, context)
    event["product_id"] = _product_id(properties, name)
    if target == "product_view":
        if category := text_of(properties, "category"):
            event["category"] = category
    else:
        quantity = properties.get("quantity")
        if quantity is not None:
            event["quantity"] = quantity
        price = _money(properties, ("price",), name)
        if price is not None:
            event["price"] = price
    return mapped(event)


def _click(
    kind: str,
    base: dict[str, Any],
    user: str | None,
    anonymous: str,
    properties: Mapping[str, Any],
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """A clickstream event's common part: visitor, customer, device, page and attribution."""
    page = _object(context, "page")
    event: dict[str, Any] = {**base, "type": kind, "anonymous_id": anonymous}
    if user is not None:
        event["customer_id"] = user
    if device := _device_id(context):
        event["device_id"] = device
    url = text_of(properties, "url") or text_of(page, "url")
    if url:
        event["url"] = url
    if referrer := text_of(properties, "referrer") or text_of(page, "referrer"):
        event["referrer"] = referrer
    if attribution := _attribution(context, url):
        event["attribution"] = attribution
    return event


def _order(
    base: dict[str, Any],
    user: str | None,
    anonymous: str | None,
    properties: Mapping[str, Any],
    context: Mapping[str, Any],
    default_currency: str,
) -> dict[str, Any]:
    """An "Order Completed" call as ``order_placed``: a customer with a ``userId``, else a guest."""
    name = "Order Completed"
    total = _money(properties, ("total", "revenue"), name)
    if total is None:
        raise Refused("schema", f"{name} needs a total (or revenue)")
    traits = _object(context, "traits")
    customer: dict[str, Any] = {"customer_id": user} if user else {"guest": True}
    for field in ("email", "phone"):
        value = _firsttext_of((properties, traits), (field,))
        if value:
            customer[field] = value
    for field, sources in (
        ("first_name", ("firstName", "first_name")),
        ("last_name", ("lastName", "last_name")),
    ):
        value = _firsttext_of((traits,), sources)
        if value:
            customer[field] = value
    if address := _address(_object(traits, "address")):
        customer["address"] = address
    event: dict[str, Any] = {
        **base,
        "type": "order_placed",
        "order_id": _required(properties, "order_id", name),
        "total": total,
        "currency": _currency(properties, default_currency),
        "channel": "app" if _object(context, "app") else "web",
        "customer": customer,
    }
    if anonymous is not None:
        event["anonymous_id"] = anonymous
    if device := _device_id(context):
        event["device_id"] = device
    page = _object(context, "page")
    if attribution := _attribution(context, text_of(page, "url")):
        event["attribution"] = attribution
    products = properties.get("products")
    if isinstance(products, list) and products:
        event["items"] = sum(quantity_of(product) for product in products)
    if coupon := text_of(properties, "coupon"):
        event["coupon"] = coupon
    return event


def _identifiers(
    user: str | None, anonymous: str | None, traits: Mapping[str, Any], context: Mapping[str, Any]
) -> dict[str, Any]:
    identifiers: dict[str, Any] = {}
    if user is not None:
        identifiers["customer_id"] = user
    if anonymous is not None:
        identifiers["anonymous_id"] = anonymous
    for field in ("email", "phone"):
        if value := text_of(traits, field):
            identifiers[field] = value
    if device := _device_id(context):
        identifiers["device_id"] = device
    return identifiers


def _attribution(context: Mapping[str, Any], url: str | None) -> dict[str, str]:
    """``context.campaign`` (the UTM parameters analytics.js reads) and an ad click id."""
    campaign = _object(context, "campaign")
    out: dict[str, str] = {}
    for source, field in (
        ("name", "utm_campaign"),
        ("source", "utm_source"),
        ("medium", "utm_medium"),
        ("term", "utm_term"),
        ("content", "utm_content"),
    ):
        if value := text_of(campaign, source):
            out[field] = value
    for field, value in url_attribution(url).items():
        out.setdefault(field, value)
    return out


def _address(address: Mapping[str, Any]) -> dict[str, str]:
    """Segment's address trait (street, city, postalCode, country) in bestand's shape; a
    country is kept only as a two-letter code."""
    out: dict[str, str] = {}
    for source, field in (("street", "street"), ("postalCode", "postcode"), ("city", "city")):
        if value := text_of(address, source):
            out[field] = value
    country = text_of(address, "country")
    if country and len(country) == 2 and country.isalpha():
        out["country"] = country.upper()
    return out


def _device_id(context: Mapping[str, Any]) -> str | None:
    device = _object(context, "device")
    return text_of(device, "advertisingId") or text_of(device, "id")


def _message_id(call: Mapping[str, Any]) -> str:
    """``messageId``, or (a hand-made call without one) a digest of the call: sent twice, the
    same call is the same event."""
    given = call.get("messageId")
    if isinstance(given, (str, int)) and not isinstance(given, bool) and str(given).strip():
        return str(given).strip()
    digest = hashlib.blake2b(orjson.dumps(call, option=orjson.OPT_SORT_KEYS), digest_size=16)
    return f"segment-{digest.hexdigest()}"


def _event_time(call: Mapping[str, Any], received_at: datetime, sent_at: Any) -> str:
    stamp = _time(call, "timestamp")
    if stamp is None:
        original = _time(call, "originalTimestamp")
        sent = parse_time(sent_at, "sentAt") if sent_at is not None else None
        if original is not None and sent is not None:
            stamp = received_at - (sent - original)
        else:
            stamp = original or received_at
    return stamp.isoformat()


def _time(call: Mapping[str, Any], field: str) -> datetime | None:
    value = call.get(field)
    return None if value is None else parse_time(value, field)


def _money(properties: Mapping[str, Any], fields: tuple[str, ...], name: str) -> str | None:
    """The first of ``fields`` that is a number, rounded to cents (clients send floats)."""
    for field in fields:
        value = properties.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise Refused("schema", f"{name}: {field} must be a number")
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            shown = str(value)[:32]
            raise Refused("schema", f"{name}: {field} is not a number: {shown!r}") from None
        if not amount.is_finite():
            raise Refused("schema", f"{name}: {field} must be a finite number")
        return str(amount.quantize(_CENT, rounding=ROUND_HALF_UP))
    return None


def _currency(properties: Mapping[str, Any], default: str) -> str:
    value = properties.get("currency")
    return value.strip().upper() if isinstance(value, str) and value.strip() else default


def _product_id(properties: Mapping[str, Any], name: str) -> str:
    for field in ("product_id", "sku", "id"):
        if value := text_of(properties, field):
            return value
    raise Refused("schema", f"{name} needs a product_id (or sku)")


def _required(properties: Mapping[str, Any], field: str, name: str) -> str:
    value = text_of(properties, field)
    if value is None:
        raise Refused("schema", f"{name} needs properties.{field}")
    return value


def _firsttext_of(holders: tuple[Mapping[str, Any], ...], fields: tuple[str, ...]) -> str | None:
    for holder in holders:
        for field in fields:
            if value := text_of(holder, field):
                return value
    return None


def _object(holder: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    value = holder.get(field)
    return value if isinstance(value, Mapping) else {}
