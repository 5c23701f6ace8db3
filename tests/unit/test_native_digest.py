"""The compiled fold names an event as the Python fold does: the same content digest and the
same event key, for any text a producer may send (quotes, control characters, any script,
ids longer than a key holds), any time zone, with or without an order and its attribution.

Digests are kept in dedupe markers for days: a worker that computed them differently
would turn every redelivery across an upgrade into a ``duplicate_event_id`` dead letter.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bestand.events import Attribution, OrderFacts, ResolvedEvent
from bestand.profile.markers import content_digest
from bestand.store.keys import event_key

native = pytest.importorskip("bestand_native")

_TEXT = st.text(min_size=1, max_size=80)
_MAYBE = st.one_of(st.none(), _TEXT)
_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
)
_TIMES = st.builds(
    lambda seconds, micro, zone: datetime.fromtimestamp(seconds, zone).replace(microsecond=micro),
    st.integers(946_684_800, 2_000_000_000),
    st.sampled_from([0, 0, 1, 250_000, 999_999]),
    _ZONES,
)
#: An attribution field is validated text: not blank (it is stripped).
_FIELD = st.one_of(st.none(), _TEXT.filter(str.strip))
_ATTRIBUTION = st.builds(
    Attribution,
    campaign=_FIELD,
    utm_source=_FIELD,
    utm_campaign=_FIELD,
    affiliate_id=_FIELD,
    click_id=_FIELD,
)
_ORDERS = st.builds(
    OrderFacts,
    order_id=_TEXT,
    status=st.sampled_from(["placed", "cancelled", "returned", "refunded"]),
    total_cents=st.one_of(st.none(), st.integers(0, 10**10)),
    returned_cents=st.one_of(st.none(), st.integers(0, 10**6)),
    currency=st.one_of(st.none(), st.sampled_from(["EUR", "USD"])),
    channel=_MAYBE,
    guest=st.one_of(st.none(), st.booleans()),
    attribution=st.one_of(st.none(), _ATTRIBUTION),
    coupon=_FIELD,
)


@st.composite
def _events(draw: st.DrawFn) -> ResolvedEvent:
    time = draw(_TIMES)
    kind = draw(st.sampled_from(["click", "order", "email", "identify", "consent", "contact"]))
    fields: dict[str, Any] = {
        "event_id": draw(st.one_of(_TEXT, st.text(min_size=60, max_size=90))),
        "event_time": time,
        "at": int(time.timestamp()),
        "kind": kind,
        "type": draw(_TEXT),
        "topic": draw(_TEXT),
        "person_id": "p",
        "identifiers": [],
        "order": draw(_ORDERS) if kind == "order" else None,
        "email_type": draw(_MAYBE),
        "campaign": draw(_MAYBE),
        "consent": draw(
            st.one_of(
                st.none(),
                st.dictionaries(
                    st.sampled_from(["email", "sms", "phone", "ads", "personalization"]),
                    st.booleans(),
                    min_size=1,
                ),
            )
        ),
        "contact_channel": draw(_MAYBE),
        "product_id": draw(_MAYBE),
        "category": draw(_MAYBE),
    }
    return ResolvedEvent(**fields)


@settings(max_examples=400, deadline=None)
@given(_events())
def test_the_compiled_digest_and_key_are_pythons(event: ResolvedEvent) -> None:
    assert native.digest_and_key(event) == (content_digest(event), event_key(event.event_id))


def test_an_unusual_value_is_digested_by_python_itself() -> None:
    """A value the compiled digest does not write (a number where validation would have
    put a string) goes to the Python digest, so the two still agree."""
    time = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    odd = Attribution.model_construct(campaign="spring", click_id=12.5)
    order = OrderFacts(order_id="o", status="placed", total_cents=1, attribution=odd)
    event = ResolvedEvent(
        event_id="e", event_time=time, at=int(time.timestamp()), kind="order",
        type="order_placed", topic="t", person_id="p", identifiers=[], order=order,
    )  # fmt: skip
    assert native.digest_and_key(event)[0] == content_digest(event)


def test_an_order_without_a_coupon_digests_as_before_orders_had_one() -> None:
    """Markers written before the coupon existed still recognise a redelivery: the digest of
    an order without a coupon is the one recorded then; with a coupon it differs."""
    time = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    order = OrderFacts(
        order_id="o-1", status="placed", total_cents=12990, currency="EUR", channel="web",
        guest=False, attribution=Attribution(affiliate_id="aff-1"),
    )  # fmt: skip
    event = ResolvedEvent(
        event_id="e-1", event_time=time, at=int(time.timestamp()), kind="order",
        type="order_placed", topic="orders", person_id="p", identifiers=[], order=order,
    )  # fmt: skip
    assert content_digest(event) == native.digest_and_key(event)[0] == "bmYRVwjm"
    order.coupon = "FIRST10"
    assert content_digest(event) == native.digest_and_key(event)[0] != "bmYRVwjm"
