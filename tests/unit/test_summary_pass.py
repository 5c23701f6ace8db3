"""A lookup summary, made in one pass over the orders, says what the state's own figures say."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from bestand.profile import OrderRecord, PersonState
from bestand.profile.summary import RECORD_FIELDS, RECORD_SEP, LookupSummary

_CHANNELS = st.sampled_from([None, "web", "app", "phone", "store", "chat"])
_ORDERS = st.builds(
    OrderRecord,
    total_cents=st.one_of(st.none(), st.integers(0, 50_000)),
    channel=_CHANNELS,
    at=st.one_of(st.none(), st.integers(1_600_000_000, 1_700_000_000)),
    cancelled=st.booleans(),
    returns=st.dictionaries(st.sampled_from(["r1", "r2", "r3"]), st.integers(-1, 60_000)),
)
_STATES = st.builds(
    PersonState,
    person_id=st.just("P"),
    version=st.integers(1, 9),
    orders=st.dictionaries(st.text("abc", min_size=1, max_size=3), _ORDERS, max_size=6),
    email=st.dictionaries(st.sampled_from(["opened", "clicked", "bounced"]), st.integers(0, 4)),
    contacts=st.dictionaries(st.sampled_from(["phone", "store", "chat"]), st.integers(0, 4)),
    consent=st.dictionaries(
        st.sampled_from(["email", "phone", "ads"]), st.tuples(st.booleans(), st.integers(0, 9))
    ),
    interests=st.dictionaries(
        st.sampled_from(["shoes", "bags", "tops", "hats"]), st.integers(1, 9)
    ),
    rule=st.sampled_from(["kept", "placed"]),
)


def _by_properties(state: PersonState) -> tuple[object, ...]:
    """The figures as the state's properties compute them, one at a time."""
    score: Counter[str] = Counter()
    score["email"] = state.email.get("opened", 0) + 2 * state.email.get("clicked", 0)
    for channel, count in state.contacts.items():
        score[channel] += 2 * count
    for order in state.kept_orders:
        if order.channel in ("phone", "store"):
            score[order.channel] += 1
    if state.consent_flags.get("email") is False or state.email.get("bounced", 0) > 0:
        score["email"] = 0
    if state.consent_flags.get("phone") is False:
        score["phone"] = 0
    ranked = [c for c in ("email", "phone", "store", "chat") if score[c] > 0]
    best = max(ranked, key=lambda c: score[c]) if ranked else None  # max keeps the first tie
    return (
        state.orders_count,
        state.first_order_at,
        state.last_order_at,
        state.previous_order_at,
        state.revenue_cents,
        state.consent_flags,
        best,
        tuple(state.top_interests),
    )


@settings(max_examples=400, deadline=None)
@given(_STATES)
def test_one_pass_matches_the_state_figures(state: PersonState) -> None:
    summary = LookupSummary.of(state)
    assert (
        summary.orders_count,
        summary.first_order_at,
        summary.last_order_at,
        summary.previous_order_at,
        summary.revenue_cents,
        summary.consent,
        summary.preferred_channel,
        summary.interests,
    ) == _by_properties(state)


def test_a_refunded_order_counts_under_placed_but_not_under_kept() -> None:
    refunded = OrderRecord(total_cents=1000, at=5, returns={"r": -1})
    rule: Literal["kept", "placed"]
    for rule, count in (("kept", 0), ("placed", 1)):
        summary = LookupSummary.of(PersonState("P", version=1, orders={"o": refunded}, rule=rule))
        assert (summary.orders_count, summary.revenue_cents) == (count, 0)


_SUMMARIES = st.builds(
    LookupSummary,
    person_id=st.sampled_from(["P", "Q"]),
    version=st.integers(0, 3),
    orders_count=st.integers(0, 2),
    first_order_at=st.one_of(st.none(), st.integers(1, 2)),
    last_order_at=st.one_of(st.none(), st.integers(1, 2)),
    consent=st.dictionaries(st.sampled_from(["email", "ads"]), st.booleans()),
    previous_order_at=st.one_of(st.none(), st.integers(1, 2)),
    preferred_channel=st.sampled_from([None, "", "email", "store"]),
    revenue_cents=st.integers(0, 2),
    interests=st.lists(st.sampled_from(["shoes", "bags"]), max_size=2, unique=True).map(tuple),
)


def _record(summary: LookupSummary) -> dict[str, str | int]:
    """The record's fields but its version: what a lookup answers."""
    return summary.fields() | {"v": 0}


@settings(max_examples=600, deadline=None)
@given(_SUMMARIES, _SUMMARIES)
def test_same_answer_is_the_same_record_but_the_version(a: LookupSummary, b: LookupSummary) -> None:
    assert a.same_answer(b) == (_record(a) == _record(b))
    assert a.same_answer(a)
    assert not a.same_answer(None)


@settings(max_examples=300, deadline=None)
@given(_SUMMARIES)
def test_the_packed_record_holds_its_fields_in_order(summary: LookupSummary) -> None:
    fields = summary.fields()
    packed = summary.packed().split(RECORD_SEP)
    packed += [""] * (len(RECORD_FIELDS) - len(packed))  # trailing empty fields left off
    numbers = {"n", "f", "l", "q", "r"}  # in base 36 (``int(text, 36)``), the count marked
    for name, text in zip(RECORD_FIELDS, packed, strict=True):
        value = fields.get(name, "")
        if name in numbers and value != "":
            assert int(text.removeprefix("~") if name == "n" else text, 36) == value
            assert text.startswith("~") == (name == "n")
        else:
            assert text == str(value)
    assert not summary.packed().endswith(RECORD_SEP)
    assert LookupSummary.from_packed(summary.packed()).fields() == fields
