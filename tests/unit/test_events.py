"""Event contracts: good events validate, bad ones get a short reason and a clear detail."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bestand.contracts import all_schemas, check_schemas
from bestand.events import InvalidEvent, OrderPlaced, decode_event
from bestand.events.decode import TYPE_TOPIC_KIND, TopicKind
from bestand.simulate import simulate
from bestand.stream.messages import Incoming, dead_letter

ROOT = Path(__file__).resolve().parents[2]

ORDER = {
    "type": "order_placed",
    "event_id": "e1",
    "event_time": "2026-11-01T10:00:00+01:00",
    "order_id": "o1",
    "total": "59.90",
    "currency": "EUR",
    "channel": "store",
    "customer": {"guest": True, "email": "a@example.com"},
}


def test_an_order_validates() -> None:
    event = decode_event("orders", orjson.dumps(ORDER), max_bytes=65536)
    assert isinstance(event, OrderPlaced)
    assert str(event.total) == "59.90"
    assert event.customer.guest


@pytest.mark.parametrize(
    ("raw", "reason", "mentions"),
    [
        (b"not json", "invalid_json", "Invalid JSON"),
        (b'{"type": "order_placed", "event_id": ', "invalid_json", "EOF"),
        (b"\xff\xfe\x00", "invalid_json", "Invalid JSON"),
        (b'{"type": "teleport"}', "unknown_type", "teleport"),
        (b'{"event_id": "x"}', "unknown_type", "type"),
        (b"", "empty", "no value"),
        (orjson.dumps({**ORDER, "total": "abc"}), "schema", "total"),
        (orjson.dumps({**ORDER, "currency": "euro"}), "schema", "currency"),
        (orjson.dumps({**ORDER, "event_time": "2026-11-01T10:00:00"}), "schema", "timezone"),
        (orjson.dumps({**ORDER, "surprise": 1}), "schema", "surprise"),
        (orjson.dumps({**ORDER, "customer": {"email": "a@b.de"}}), "schema", "guest"),
        (orjson.dumps({**ORDER, "total": "-1"}), "schema", "total"),
        (orjson.dumps({**ORDER, "event_id": "ev\u00001"}), "schema", "control characters"),
        (orjson.dumps({**ORDER, "event_id": "ev\u001e1"}), "schema", "control characters"),
        (
            orjson.dumps({**ORDER, "customer": {"guest": True, "phone_sha256": "x"}}),
            "schema",
            "phone_sha256",
        ),
    ],
)
def test_bad_input_gets_a_reason(raw: bytes, reason: str, mentions: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_event("orders", raw, max_bytes=65536)
    assert info.value.reason == reason
    assert mentions.lower() in info.value.detail.lower()


def test_too_large_events_are_refused_before_parsing() -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_event("orders", b"{" + b" " * 5000 + b"}", max_bytes=4096)
    assert info.value.reason == "too_large"


def test_every_type_routes_to_one_topic() -> None:
    assert TYPE_TOPIC_KIND["order_placed"] == "orders"
    assert TYPE_TOPIC_KIND["page_view"] == "clickstream"
    assert TYPE_TOPIC_KIND["email_opened"] == "email"
    assert TYPE_TOPIC_KIND["erasure_requested"] == "customer"
    assert TYPE_TOPIC_KIND["order_refunded"] == "orders"
    assert len(TYPE_TOPIC_KIND) == 17


def test_the_simulated_shop_speaks_the_contracts() -> None:
    shop = simulate(persons=50, seed=3)
    assert len(shop.events) > 200
    for event in shop.events:
        decode_event(TYPE_TOPIC_KIND[event["type"]], orjson.dumps(event), max_bytes=65536)
    assert set(shop.truth) == {event["event_id"] for event in shop.events}


def test_schemas_in_the_repository_match_the_models() -> None:
    stale = check_schemas(ROOT / "schemas")
    assert stale == [], f"regenerate with `bestand schemas`: {stale}"


def test_schemas_cover_every_topic_and_payload() -> None:
    schemas = all_schemas()
    orders = schemas["events/orders.json"]
    assert {"OrderPlaced", "OrderCancelled", "OrderReturned"} <= set(orders["$defs"])
    assert "absorbed" in schemas["events/profile-changes.json"]["properties"]
    assert "events/resolved.json" not in schemas  # no topic carries it any more
    assert "existing_customer" in schemas["api/lookup-answer.json"]["properties"]


def test_a_changed_model_is_detected(tmp_path: Path) -> None:
    from bestand.contracts import write_schemas

    write_schemas(tmp_path)
    target = tmp_path / "events/orders.json"
    target.write_bytes(target.read_bytes().replace(b'"order_id"', b'"order_no"'))
    assert check_schemas(tmp_path) == ["events/orders.json"]


@pytest.mark.parametrize(
    ("event_time", "reason"),
    [
        ("1970-01-01T00:00:00Z", "implausible_time"),
        ("1999-12-31T23:59:59Z", "implausible_time"),
        ("2026-11-25T00:00:01Z", "implausible_time"),  # more than a day ahead of the clock
        ("2026-11-24T00:00:00Z", None),
        ("2000-01-01T00:00:00Z", None),
    ],
)
def test_event_times_far_from_the_clock_are_refused(event_time: str, reason: str | None) -> None:
    raw = orjson.dumps(
        {"type": "page_view", "event_id": "t1", "event_time": event_time, "anonymous_id": "a"}
    )
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()
    if reason is None:
        assert decode_event("clickstream", raw, max_bytes=65536, now=now).event_id == "t1"
    else:
        with pytest.raises(InvalidEvent) as caught:
            decode_event("clickstream", raw, max_bytes=65536, now=now)
        assert caught.value.reason == reason
    # Without a clock (replays of history, tools) the time is not judged.
    assert decode_event("clickstream", raw, max_bytes=65536).event_id == "t1"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
EVENTISH = st.fixed_dictionaries(
    {"type": st.sampled_from([*TYPE_TOPIC_KIND, "x"]), "event_id": JSON, "event_time": JSON},
    optional={"order_id": JSON, "customer": JSON, "identifiers": JSON, "total": JSON},
)


@settings(max_examples=300)
@given(kind=st.sampled_from(["clickstream", "orders", "email", "customer"]), raw=st.binary())
def test_any_bytes_decode_to_an_event_or_a_reason(kind: TopicKind, raw: bytes) -> None:
    assert _reason(kind, raw) in {*REASONS, None}


@settings(max_examples=300)
@given(kind=st.sampled_from(["clickstream", "orders", "email", "customer"]),
       value=st.one_of(JSON, EVENTISH))  # fmt: skip
def test_any_json_decodes_to_an_event_or_a_reason(kind: TopicKind, value: object) -> None:
    try:
        raw = orjson.dumps(value)
    except orjson.JSONEncodeError:  # the generator made something JSON cannot carry
        return
    assert _reason(kind, raw) in {*REASONS, None}


def _reason(kind: TopicKind, raw: bytes) -> str | None:
    """Why an input is refused; None when it is a valid event. Anything else raised fails."""
    try:
        decode_event(kind, raw, max_bytes=65536, now=1.8e9)
    except InvalidEvent as exc:
        return exc.reason
    return None


REASONS = {"empty", "too_large", "invalid_json", "unknown_type", "schema", "implausible_time"}


@settings(max_examples=100)
@given(value=st.binary(max_size=70_000), error=st.text(max_size=9000), key=st.binary(max_size=6000))
def test_a_dead_letter_can_always_be_written(value: bytes, error: str, key: bytes) -> None:
    message = Incoming("bestand.orders", 3, 17, key or None, value)
    out = dead_letter(message, "schema", error)
    record = orjson.loads(out.value)
    assert (record["reason"], record["offset"]) == ("schema", 17)
    assert record["payload_bytes"] == len(value)
    assert len(record["payload"]) <= 4096
    assert len(record["error"]) <= 4096
