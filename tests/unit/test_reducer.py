"""The state reducer: orders count once per order id, merges never count twice."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bestand.events import ResolvedEvent
from bestand.profile import LookupSummary, PersonState, apply, dump_state, load_state, merge
from bestand.profile.state import CustomerRule

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def ev(event_id: str, kind: str, day: int = 0, person: str = "P1", **fields: Any) -> ResolvedEvent:
    data: dict[str, Any] = {
        "event_id": event_id,
        "event_time": T0 + timedelta(days=day),
        "kind": kind,
        "type": fields.pop("type", kind),
        "topic": "t",
        "person_id": person,
        "identifiers": fields.pop("identifiers", ["e:x"]),
        **fields,
    }
    return ResolvedEvent.of(data)


def placed(event_id: str, order_id: str, cents: int, day: int = 0, **kw: Any) -> ResolvedEvent:
    order = {
        "order_id": order_id,
        "status": "placed",
        "total_cents": cents,
        "currency": "EUR",
        "channel": kw.pop("channel", "web"),
    }
    return ev(event_id, "order", day, order=order, **kw)


def cancelled(event_id: str, order_id: str, day: int = 0) -> ResolvedEvent:
    return ev(event_id, "order", day, order={"order_id": order_id, "status": "cancelled"})


def returned(event_id: str, order_id: str, cents: int | None, day: int = 0) -> ResolvedEvent:
    return ev(
        event_id,
        "order",
        day,
        order={"order_id": order_id, "status": "returned", "returned_cents": cents},
    )


def refunded(event_id: str, order_id: str, cents: int | None, day: int = 0) -> ResolvedEvent:
    return ev(
        event_id,
        "order",
        day,
        order={"order_id": order_id, "status": "refunded", "returned_cents": cents},
    )


def run(
    events: list[ResolvedEvent], person: str = "P1", rule: CustomerRule = "kept"
) -> PersonState:
    state = PersonState(person_id=person, rule=rule)
    for event in events:
        state = apply(state, event)
    return state


def test_a_new_person_is_a_prospect_without_orders() -> None:
    state = run([ev("v1", "click", identifiers=["a:c1"])])
    assert not state.existing_customer
    assert state.orders_count == 0
    assert state.ids == {"a:c1"}
    assert state.first_seen == state.last_seen == int(T0.timestamp())


def test_orders_count_by_distinct_order_id() -> None:
    state = run(
        [
            placed("e1", "o1", 1000),
            placed("e1", "o1", 1000),
            placed("e9", "o1", 1000, day=2),
            placed("e2", "o2", 2500, day=5),
        ]
    )
    assert state.orders_count == 2
    assert state.revenue_cents == 3500
    assert state.first_order_at == int(T0.timestamp())
    assert state.last_order_at == int((T0 + timedelta(days=5)).timestamp())
    assert state.existing_customer


def test_a_cancelled_order_does_not_make_a_customer() -> None:
    state = run([placed("e1", "o1", 1000), cancelled("e2", "o1", day=1)])
    assert not state.existing_customer
    assert state.revenue_cents == 0
    assert state.first_order_at is None


def test_cancel_before_place_gives_the_same_state() -> None:
    in_order = run([placed("e1", "o1", 1000), cancelled("e2", "o1", day=1)])
    reversed_ = run([cancelled("e2", "o1", day=1), placed("e1", "o1", 1000)])
    assert dump_state(in_order) == dump_state(reversed_)


def test_returns_reduce_revenue_but_keep_the_customer() -> None:
    state = run(
        [
            placed("e1", "o1", 10000),
            returned("r1", "o1", 2500, day=3),
            returned("r1", "o1", 2500, day=3),
        ]
    )
    assert state.existing_customer
    assert state.revenue_cents == 7500
    full = run([placed("e1", "o1", 10000), returned("r1", "o1", None)])
    assert full.revenue_cents == 0
    assert not full.existing_customer  # nothing kept
    assert full.orders["o1"].active  # but the order still happened, for reports


def test_partial_returns_and_refunds_that_add_up_to_the_total_keep_nothing() -> None:
    events = [placed("e1", "o1", 10000), returned("r1", "o1", 6000, day=2)]
    assert run(events).existing_customer
    assert run(events).revenue_cents == 4000
    both = run([*events, refunded("f1", "o1", 4000, day=9)])
    assert both.revenue_cents == 0
    assert not both.existing_customer
    # A goodwill refund of part of the price keeps the order.
    goodwill = run([placed("e1", "o1", 10000), refunded("f1", "o1", 1500, day=2)])
    assert goodwill.existing_customer
    assert goodwill.revenue_cents == 8500


def test_the_placed_rule_counts_returned_orders() -> None:
    events = [placed("e1", "o1", 10000), returned("r1", "o1", None, day=2)]
    assert not run(events, rule="kept").existing_customer
    placed_rule = run(events, rule="placed")
    assert placed_rule.existing_customer
    assert placed_rule.orders_count == 1
    assert placed_rule.revenue_cents == 0
    cancelled_too = run([*events, cancelled("c1", "o1", day=3)], rule="placed")
    assert not cancelled_too.existing_customer


def test_an_order_after_a_wholly_returned_one_is_a_new_customers_order() -> None:
    first = [placed("e1", "o1", 5000), returned("r1", "o1", None, day=2)]
    state = run([*first, placed("e2", "o2", 3000, day=10)])
    assert state.orders["o2"].cls == "new"
    assert run([*first, placed("e2", "o2", 3000, day=10)], rule="placed").orders["o2"].cls == (
        "existing"
    )
    # The return arriving after the second order reclassifies it, with the return as cause.
    late = run([placed("e1", "o1", 5000), placed("e2", "o2", 3000, day=10), first[1]])
    assert late.orders["o2"].cls == "new"
    assert [(o, b, a, e) for o, b, a, e, _, _ in late.reclassified] == [
        ("o2", "existing", "new", "r1")
    ]


def test_every_order_of_events_gives_the_same_state() -> None:
    events = [
        placed("e1", "o1", 1000),
        placed("e2", "o2", 2000, day=3),
        cancelled("e3", "o2", day=4),
        returned("e4", "o1", 300, day=5),
        refunded("e6", "o1", 700, day=7),
        ev("e5", "click", day=6, identifiers=["a:c"]),
    ]
    # The history of reclassifications records the arrival order; everything else is the same.
    states = {
        dump_state(replace(run(list(perm)), reclassified=()))
        for perm in itertools.permutations(events)
    }
    assert len(states) == 1


def test_email_engagement_and_unsubscribe() -> None:
    state = run(
        [
            ev("m1", "email", type="email_sent", email_type="email_sent"),
            ev("m2", "email", day=1, type="email_opened", email_type="email_opened"),
            ev("m3", "email", day=2, type="email_unsubscribed", email_type="email_unsubscribed"),
        ]
    )
    assert state.email == {"sent": 1, "opened": 1, "unsubscribed": 1}
    assert state.last_email_engagement == int((T0 + timedelta(days=1)).timestamp())
    assert state.consent_flags == {"email": False}
    assert "email" in state.channels


def test_the_latest_consent_statement_wins_whatever_the_arrival_order() -> None:
    grant = ev("c1", "consent", day=1, consent={"ads": True})
    withdraw = ev("c2", "consent", day=5, consent={"ads": False})
    assert run([grant, withdraw]).consent_flags == {"ads": False}
    assert run([withdraw, grant]).consent_flags == {"ads": False}


def test_contacts_count_per_channel() -> None:
    state = run(
        [ev("k1", "contact", contact_channel="phone"), ev("k2", "contact", contact_channel="store")]
    )
    assert state.contacts == {"phone": 1, "store": 1}
    assert state.channels == {"phone", "store"}


def test_merge_unites_orders_without_counting_twice() -> None:
    a = run([placed("e1", "o1", 1000, identifiers=["e:a"]), placed("e2", "o2", 500, day=2)], "A")
    b = run([placed("e1", "o1", 1000, identifiers=["p:b"]), placed("e3", "o3", 700, day=9)], "B")
    merged = merge(a, b)
    assert merged.person_id == "A"
    assert merged.orders_count == 3
    assert merged.revenue_cents == 2200
    assert merged.ids == {"e:a", "e:x", "p:b"}
    assert merged.absorbed == {"B"}
    assert merge(merged, b) is merged  # a redelivered merge changes nothing


def test_merge_keeps_a_cancellation_from_either_side() -> None:
    a = run([placed("e1", "o1", 1000)], "A")
    b = run([cancelled("e2", "o1")], "B")
    assert not merge(a, b).existing_customer


def test_merge_takes_the_later_consent() -> None:
    a = run([ev("c1", "consent", day=1, consent={"email": True})], "A")
    b = run([ev("c2", "consent", day=3, consent={"email": False})], "B")
    assert merge(a, b).consent_flags == {"email": False}
    assert merge(b, a).consent_flags == {"email": False}


def test_state_round_trips_through_its_serialized_form() -> None:
    state = run(
        [
            placed("e1", "o1", 1000),
            returned("r1", "o1", 100),
            ev("c1", "consent", consent={"email": True}),
            ev("m1", "email", type="email_opened", email_type="email_opened"),
            ev("k1", "contact", contact_channel="phone"),
        ]
    )
    assert load_state("P1", dump_state(state)) == state
    assert load_state("P9", None) == PersonState(person_id="P9")


@pytest.mark.parametrize("orders", [0, 1, 3])
def test_summary_round_trips_through_redis_fields(orders: int) -> None:
    state = run(
        [placed(f"e{n}", f"o{n}", 100, day=n) for n in range(orders)]
        + [ev("c1", "consent", consent={"ads": True, "email": False})]
    )
    summary = LookupSummary.of(state)
    fields = {k.encode(): str(v).encode() for k, v in summary.fields().items()}
    assert LookupSummary.from_fields(fields) == summary
    packed = summary.packed().encode()
    assert LookupSummary.from_packed(packed) == summary
    person, version, count = packed.split(b"\x1e")[:3]
    assert (person.decode(), int(version)) == (state.person_id, state.version)
    assert count == b"~" + str(orders).encode()  # base 36: one digit under 36 orders
    assert summary.existing_customer is (orders > 0)


def test_a_packed_record_keeps_every_field_and_interests_apart() -> None:
    summary = LookupSummary(
        person_id="P1", version=7, orders_count=2, first_order_at=100, last_order_at=300,
        consent={"ads": True, "email": False}, previous_order_at=None, preferred_channel="app",
        revenue_cents=12345, interests=("shoes", "bags"),
    )  # fmt: skip
    packed = summary.packed()
    assert packed.split("\x1e")[5] == ""  # no previous order: an empty place
    assert LookupSummary.from_packed(packed) == summary
    bare = LookupSummary("P2", 1, 0, None, None, {})
    assert bare.packed() == "P2\x1e1\x1e~0"  # absent trailing fields are left off
    assert LookupSummary.from_packed(bare.packed().encode()) == bare


def test_a_record_keeps_its_numbers_in_base_36_and_reads_decimal_ones_too() -> None:
    """Counts, times and revenue in base 36 (a time of 10 digits in 6 characters); a record
    an earlier release wrote, in decimal, reads the same."""
    summary = LookupSummary(
        person_id="P3", version=12, orders_count=40, first_order_at=1_774_460_754,
        last_order_at=1_795_362_120, consent={}, previous_order_at=1_795_272_027,
        preferred_channel="web", revenue_cents=-4_500, interests=("sport",),
    )  # fmt: skip
    packed = summary.packed()
    fields = packed.split("\x1e")
    assert fields[:3] == ["P3", "12", "~14"]  # the scripts read the person and version as before
    assert [len(f) for f in fields[3:6]] == [6, 6, 6]
    assert fields[7] == "-3h0"
    assert LookupSummary.from_packed(packed) == summary
    decimal = "P3\x1e12\x1e40\x1e1774460754\x1e1795362120\x1e1795272027\x1eweb\x1e-4500\x1esport"
    assert LookupSummary.from_packed(decimal.encode()) == summary


def test_orders_are_classified_by_event_time() -> None:
    state = run([placed("e1", "o1", 1000), placed("e2", "o2", 500, day=10)])
    assert state.orders["o1"].cls == "new"
    assert state.orders["o2"].cls == "existing"
    assert state.reclassified == ()


def test_an_earlier_order_arriving_late_reclassifies_the_later_one() -> None:
    state = run([placed("e2", "o2", 500, day=10), placed("e1", "o1", 1000)])
    assert state.orders["o2"].cls == "existing"
    assert state.reclassified == (
        (
            "o2",
            "new",
            "existing",
            "e1",
            int(T0.timestamp()),
            "order events arrived late or changed",
        ),
    )


def test_a_merge_reclassifies_the_guest_order_of_a_returning_customer() -> None:
    loyal = run([placed("e1", "o-old", 3000, identifiers=["c:K1"])], "A")
    guest = run([placed("e2", "o-guest", 2000, day=30, identifiers=["e:guest"])], "B")
    assert guest.orders["o-guest"].cls == "new"  # what the affiliate was told at first
    at = int((T0 + timedelta(days=31)).timestamp())
    merged = merge(loyal, guest, event_id="e-merge", at=at)
    assert merged.orders["o-guest"].cls == "existing"
    assert merged.reclassified == (
        ("o-guest", "new", "existing", "e-merge", at, "merged with person B"),
    )
    assert merged.orders["o-old"].cls == "new"


def test_order_context_counts_orders_before_and_days_since() -> None:
    from bestand.profile.classify import order_context

    state = run(
        [
            placed("e1", "o1", 1000),
            placed("e2", "o2", 500, day=10),
            placed("e3", "o3", 700, day=25),
            cancelled("e4", "o2", day=26),
        ]
    )
    first, third = order_context(state.orders, "o1"), order_context(state.orders, "o3")
    assert first is not None
    assert (first.classification, first.orders_before, first.days_since_last_order) == (
        "new",
        0,
        None,
    )
    assert third is not None
    # o2 was cancelled: it does not count, so the last kept order before o3 is o1.
    assert (third.classification, third.orders_before, third.days_since_last_order) == (
        "existing",
        1,
        25,
    )
    assert order_context(state.orders, "missing") is None


def test_orders_keep_their_campaign_affiliate_and_coupon() -> None:
    event = ev(
        "e1",
        "order",
        order={
            "order_id": "o1",
            "status": "placed",
            "total_cents": 100,
            "attribution": {"utm_campaign": "black-friday", "affiliate_id": "aff-1"},
            "coupon": "FIRST10",
        },
    )
    state = run([event])
    order = state.orders["o1"]
    assert (order.campaign, order.affiliate, order.coupon) == ("black-friday", "aff-1", "FIRST10")
    assert load_state("P1", dump_state(state)) == state
