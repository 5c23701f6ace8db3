"""Partition keys of produced events: one visitor's events keep their order in a topic."""

from __future__ import annotations

from typing import Any

import pytest

from bestand.ingest.producer import key_for

BASE: dict[str, Any] = {"event_id": "ev-1", "event_time": "2026-11-01T10:00:00Z"}


@pytest.mark.parametrize(
    ("event", "key"),
    [
        # A visitor's sign-up and registration share the cookie's key, wherever it sits.
        ({**BASE, "type": "identify", "identifiers": {"anonymous_id": "ck-1", "email": "a@b.de"}},
         b"ck-1"),
        ({**BASE, "type": "identify", "identifiers": {"anonymous_id": "ck-1", "customer_id": "K1"}},
         b"ck-1"),
        ({**BASE, "type": "page_view", "anonymous_id": "ck-1", "url": "/"}, b"ck-1"),
        # An order's events go by the order id, so its cancellation finds it.
        ({**BASE, "type": "order_placed", "order_id": "o-1", "anonymous_id": "ck-1"}, b"o-1"),
        ({**BASE, "type": "order_cancelled", "order_id": "o-1"}, b"o-1"),
        # Without a cookie: the customer id, else the event's own id.
        ({**BASE, "type": "consent_changed", "identifiers": {"customer_id": "K1"}}, b"K1"),
        ({**BASE, "type": "identify", "identifiers": {"email": "a@b.de"}}, b"ev-1"),
        ({"type": "identify"}, None),
    ],
)  # fmt: skip
def test_events_are_keyed_by_what_orders_them(event: dict[str, Any], key: bytes | None) -> None:
    assert key_for(event) == key
