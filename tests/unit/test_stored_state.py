"""A person state's stored form (``bestand.profile.stored``): packed, read back whole, written
byte for byte the same by the compiled fold, and the JSON of earlier releases still read."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bestand.profile.state import OrderRecord, PersonState, dump_state, load_state
from bestand.profile.stored import PACKED, unpack

native = pytest.importorskip("bestand_native")

_TEXT = st.text(min_size=0, max_size=30)
_WORD = st.text(min_size=1, max_size=12)
_INT = st.integers(-(2**62), 2**62)
_TIME = st.integers(0, 4_000_000_000)
#: Keyed identifiers as the keyer makes them, and other texts a state may hold.
_KEYED = st.builds(
    lambda kind, raw: f"{kind}:{base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}",
    st.sampled_from("acdefhlmnop"),
    st.binary(min_size=12, max_size=12),
)
_TOKENS = st.one_of(_KEYED, _TEXT, st.text(min_size=24, max_size=24))
_ORDERS = st.builds(
    OrderRecord,
    total_cents=st.one_of(st.none(), _INT),
    currency=st.one_of(st.none(), st.sampled_from(["EUR", "GBP"])),
    channel=st.one_of(st.none(), st.sampled_from(["web", "store", "app"])),
    at=st.one_of(st.none(), _TIME),
    cancelled=st.booleans(),
    returns=st.dictionaries(_WORD, st.integers(-1, 10**7), max_size=3),
    cls=st.one_of(st.none(), st.sampled_from(["new", "existing"])),
    campaign=st.one_of(st.none(), _WORD),
    affiliate=st.one_of(st.none(), _WORD),
    coupon=st.one_of(st.none(), _WORD),
)
_STATES = st.builds(
    PersonState,
    person_id=st.just("p-1"),
    version=st.integers(0, 2**40),
    ids=st.frozensets(_TOKENS, max_size=12),
    orders=st.dictionaries(_WORD, _ORDERS, max_size=5),
    first_seen=st.one_of(st.none(), _TIME),
    last_seen=st.one_of(st.none(), _TIME),
    email=st.dictionaries(st.sampled_from(["sent", "opened", "clicked"]), _INT, max_size=3),
    last_email_engagement=st.one_of(st.none(), _TIME),
    consent=st.dictionaries(
        st.sampled_from(["email", "sms", "ads"]), st.tuples(st.booleans(), _TIME), max_size=3
    ),
    contacts=st.dictionaries(_WORD, st.integers(0, 1000), max_size=3),
    channels=st.frozensets(st.sampled_from(["web", "app", "email", "store"]), max_size=4),
    absorbed=st.frozensets(_WORD, max_size=3),
    interests=st.dictionaries(_WORD, st.integers(1, 10**6), max_size=5),
    reclassified=st.lists(
        st.tuples(_WORD, st.just("new"), st.just("existing"), _WORD, _TIME, _TEXT), max_size=3
    ).map(tuple),
)


def _canonical(state: PersonState) -> PersonState:
    """What a stored state keeps: an empty text of an order is left out, as None."""
    texts = ("currency", "channel", "cls", "campaign", "affiliate", "coupon")
    orders = {
        oid: replace(order, **{name: getattr(order, name) or None for name in texts})
        for oid, order in state.orders.items()
    }
    return state.evolve(orders=orders)


@settings(max_examples=300, deadline=None)
@given(_STATES)
def test_a_state_reads_back_whole_and_the_compiled_fold_writes_the_same_bytes(
    state: PersonState,
) -> None:
    blob = dump_state(state)
    assert load_state("p-1", blob) == _canonical(state)
    assert native.state_for_test(blob) == blob
    assert native.unpack_state(blob) == unpack(blob)  # load_state's compiled reader


def test_keyed_identifiers_take_their_twelve_bytes_and_a_letter() -> None:
    token = "e:" + base64.urlsafe_b64encode(bytes(range(12))).rstrip(b"=").decode()
    odd = "e:" + "k" * 15 + "."  # 16 characters that are not 12 bytes' base64url
    with_keyed = dump_state(PersonState("p", version=1, ids=frozenset({token})))
    with_odd = dump_state(PersonState("p", version=1, ids=frozenset({odd})))
    assert len(with_keyed) == 4 + 13
    assert len(with_odd) == 4 + 2 + 18
    assert unpack(with_odd)["ids"] == {odd}


def test_a_state_of_sixteen_byte_identifiers_is_read_with_them_cut_short() -> None:
    """Earlier releases kept an identifier's 16 bytes (first byte 0x01): read, each is the
    identifier this release keys the same value to (the first 16 of its 22 characters)."""
    raw = bytes(range(16))
    long = "e:" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    # 0x01, version 1, parts: ids; one id: its letter and 16 bytes.
    blob = bytes([1, 1, 1, 1, ord("e")]) + raw
    assert unpack(blob)["ids"] == {long[:18]}
    assert load_state("p", blob).ids == frozenset({long[:18]})
    assert native.unpack_state(blob) == unpack(blob)
    assert dump_state(load_state("p", blob))[0] == PACKED  # written back with 12 bytes an id


def test_a_state_with_currencies_and_channels_as_text_is_read_and_written_back_coded() -> None:
    """Earlier releases (first byte 0x02) kept an order's currency and channel, and the
    person's channels, as text: read the same, written back as codes, 9 bytes shorter."""
    # 0x02, version 1, parts: orders and channels (bits 1 and 8: 258); one order "o1" with a
    # currency and a channel (fields 6); one channel.
    blob = b"\x02\x01\x82\x02\x01\x02o1\x06\x03EUR\x03web\x01\x03web"
    state = load_state("p", blob)
    assert state.orders["o1"].currency == "EUR"
    assert state.orders["o1"].channel == "web"
    assert state.channels == frozenset({"web"})
    assert native.unpack_state(blob) == unpack(blob)
    coded = dump_state(state)
    assert coded == b"\x03\x01\x82\x02\x01\x02o1\x06\x01\x01\x01\x01"
    assert native.state_for_test(blob) == coded
    assert len(blob) - len(coded) == 9
    # A currency or channel outside the tables stays text: a code 0 and the text.
    other = replace(state, orders={"o1": replace(state.orders["o1"], currency="JPY")})
    assert b"\x00\x03JPY" in dump_state(other)
    assert load_state("p", dump_state(other)) == other


def test_a_state_is_about_half_its_json() -> None:
    ids = frozenset(
        f"{kind}:{base64.urlsafe_b64encode(bytes([n] * 12)).rstrip(b'=').decode()}"
        for n, kind in enumerate("acepon")
    )
    orders = {
        f"ord-000{n}": OrderRecord(total_cents=12990, currency="EUR", channel="web",
                                   at=1_780_000_000 + n, cls="existing")
        for n in range(4)
    }  # fmt: skip
    state = PersonState("p", version=12, ids=ids, orders=orders, first_seen=1_770_000_000,
                        last_seen=1_790_000_000, channels=frozenset({"web", "email"}))  # fmt: skip
    as_json = _earlier_json(state)
    assert len(dump_state(state)) < 0.5 * len(as_json)


def _earlier_json(state: PersonState) -> bytes:
    """A state as earlier releases stored it (JSON, short keys, sorted)."""
    data: dict[str, Any] = {"v": state.version, "ids": sorted(state.ids)}
    if state.orders:
        data["o"] = {
            oid: {k: v for k, v in (("t", o.total_cents), ("cu", o.currency), ("ch", o.channel),
                                    ("at", o.at), ("c", o.cls), ("x", 1 if o.cancelled else None),
                                    ("r", o.returns or None), ("cp", o.campaign),
                                    ("af", o.affiliate)) if v is not None}
            for oid, o in state.orders.items()
        }  # fmt: skip
    times = (("fs", state.first_seen), ("ls", state.last_seen))
    data.update({key: value for key, value in times if value is not None})
    if state.channels:
        data["chn"] = sorted(state.channels)
    if state.consent:
        data["cs"] = {p: [int(g), at] for p, (g, at) in state.consent.items()}
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def test_the_json_of_earlier_releases_is_still_read_and_written_packed() -> None:
    state = PersonState(
        "p", version=4, ids=frozenset({"c:K1", "e:abc"}), first_seen=5, last_seen=9,
        orders={"o1": OrderRecord(total_cents=990, currency="EUR", channel="web", at=5,
                                  cancelled=True, returns={"r1": -1}, cls="new",
                                  campaign="sale", affiliate="aff-1")},
        consent={"email": (True, 5)}, channels=frozenset({"web"}),
    )  # fmt: skip
    old = _earlier_json(state)
    assert old.startswith(b"{")
    assert load_state("p", old) == state
    assert native.state_for_test(old) == dump_state(state)


@pytest.mark.parametrize(
    "blob",
    [
        b"\x01",
        b"\x01\x05\x01",
        b"\x01\x01\x00\xff",
        b"\x02",
        b"\x02\x01\x01\x01e",
        b"\x04\x00\x00",
        b"\x03\x00\x02\x01\x02o1\x02\x63",
    ],  # an unknown form; code 99
    ids=repr,
)
def test_a_broken_blob_is_an_error_not_a_state(blob: bytes) -> None:
    with pytest.raises(ValueError, match="packed state"):
        load_state("p", blob)
    with pytest.raises(ValueError, match="packed state"):
        native.state_for_test(blob)
    with pytest.raises(ValueError, match="packed state"):
        native.unpack_state(blob)
    with pytest.raises(ValueError, match="packed state"):
        unpack(blob)
