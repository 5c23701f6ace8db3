"""Event builders and the log that collects them with the truth of who did what.

Builders return plain dicts in the shape of the input contracts (``bestand.events``). The log
keeps each event with its time and real person, sorts everything by time at the end, numbers
the events in that order and drops ``None`` fields as real producers do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Event = dict[str, Any]


def _clean(value: dict[str, Any]) -> dict[str, Any]:
    """Drop ``None`` values (and mappings left empty by that) from nested dicts."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict):
            item = _clean(item)
            if item:
                out[key] = item
        elif item is not None:
            out[key] = item
    return out


@dataclass
class EventLog:
    """Collects events with their time and real person; ``finish`` orders and numbers them."""

    _rows: list[tuple[datetime, int, str, Event]] = field(default_factory=list)

    def add(self, person_key: str, at: datetime, event: Event) -> Event:
        """Record one event of ``person_key`` at ``at``; returns the (mutable) event."""
        self._rows.append((at, len(self._rows), person_key, event))
        return event

    def __len__(self) -> int:
        return len(self._rows)

    def finish(self) -> tuple[list[Event], dict[str, str]]:
        """Events in time order with ids ``ev-0000001``… in that order, and the truth map."""
        self._rows.sort(key=lambda row: (row[0], row[1]))  # never compares the dicts
        events: list[Event] = []
        truth: dict[str, str] = {}
        width = max(7, len(str(len(self._rows))))
        for number, (at, _, person_key, body) in enumerate(self._rows, start=1):
            event_id = f"ev-{number:0{width}d}"
            events.append({"event_id": event_id, "event_time": at.isoformat(), **_clean(body)})
            truth[event_id] = person_key
        return events, truth


def click(
    kind: str,
    *,
    cookie: str,
    url: str,
    source: str,
    customer_id: str | None = None,
    device_id: str | None = None,
    product_id: str | None = None,
    category: str | None = None,
    price: str | None = None,
    quantity: int | None = None,
    referrer: str | None = None,
    attribution: dict[str, str] | None = None,
) -> Event:
    """A clickstream event: ``page_view``, ``product_view`` or ``add_to_cart``."""
    return {
        "type": kind,
        "source": source,
        "anonymous_id": cookie,
        "customer_id": customer_id,
        "device_id": device_id,
        "url": url,
        "referrer": referrer,
        "attribution": attribution,
        "product_id": product_id if kind != "page_view" else None,
        "category": category if kind == "product_view" else None,
        "price": price if kind == "add_to_cart" else None,
        "quantity": quantity if kind == "add_to_cart" else None,
    }


def order_placed(
    *,
    order_id: str,
    total: str,
    currency: str,
    channel: str,
    source: str,
    customer: dict[str, Any],
    items: int,
    cookie: str | None = None,
    device_id: str | None = None,
    payment_fingerprint: str | None = None,
    attribution: dict[str, str] | None = None,
    coupon: str | None = None,
) -> Event:
    """An ``order_placed`` event; ``customer`` is the contract's customer block."""
    event: Event = {
        "type": "order_placed",
        "source": source,
        "order_id": order_id,
        "total": total,
        "currency": currency,
        "channel": channel,
        "customer": customer,
        "anonymous_id": cookie,
        "device_id": device_id,
        "payment_fingerprint": payment_fingerprint,
        "attribution": attribution,
        "items": items,
    }
    if coupon is not None:
        event["coupon"] = coupon
    return event


def order_cancelled(order_id: str, reason: str | None = None) -> Event:
    """An order was cancelled before fulfilment."""
    return {"type": "order_cancelled", "source": "oms", "order_id": order_id, "reason": reason}


def order_refunded(order_id: str, amount: str | None, currency: str | None, reason: str) -> Event:
    """Money went back without goods (``amount`` None: the whole order)."""
    return {
        "type": "order_refunded",
        "source": "payments",
        "order_id": order_id,
        "amount": amount,
        "currency": currency if amount is not None else None,
        "reason": reason,
    }


def order_returned(order_id: str, amount: str | None, currency: str | None) -> Event:
    """Goods of an order came back (``amount`` None: the whole order)."""
    return {
        "type": "order_returned",
        "source": "oms",
        "order_id": order_id,
        "amount": amount,
        "currency": currency if amount is not None else None,
    }


def email_event(
    kind: str,
    email: str,
    *,
    campaign: str | None,
    message_id: str | None = None,
    url: str | None = None,
    bounce_type: str | None = None,
) -> Event:
    """What the e-mail service provider reports about one message to one recipient."""
    return {
        "type": kind,
        "source": "esp",
        "email": email,
        "campaign": campaign,
        "message_id": message_id,
        "url": url,
        "bounce_type": bounce_type,
    }


def identify(source: str, **identifiers: str | None) -> Event:
    """Identifiers seen together: a login, an app sign-in, a newsletter sign-up."""
    return {"type": "identify", "source": source, "identifiers": identifiers}


def consent_changed(source: str, consent: dict[str, bool], **identifiers: str | None) -> Event:
    """Consent given or withdrawn for some purposes."""
    return {
        "type": "consent_changed",
        "source": source,
        "identifiers": identifiers,
        "consent": consent,
    }


def contact(channel: str, topic: str, **identifiers: str | None) -> Event:
    """The person called, wrote or came to the store about something."""
    return {
        "type": "contact",
        "source": "service",
        "identifiers": identifiers,
        "channel": channel,
        "topic": topic,
    }
