"""The compiled decoder makes of every message it accepts exactly what pydantic makes of it.

It validates bestand's input contracts for the messages of the plain shape and leaves the
rest to pydantic. A message it accepted that pydantic refuses would put bad input into
person state; one it read differently would change a person's history across an upgrade.
So the worker's preparation of a message, compiled and in Python, is held to the same
result (event, tokens, junk, dead letter and counts) on a simulated shop's history, on the
edge of each rule, and on generated variations of real messages.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bestand.events import ResolvedEvent
from bestand.ingest.producer import topic_for
from bestand.profile.markers import content_digest
from bestand.settings import Settings
from bestand.simulate import simulate
from bestand.stream.messages import Incoming, Outgoing
from bestand.stream.prepare import Preparer
from bestand.stream.tally import Tally

native = pytest.importorskip("bestand_native")

SETTINGS = Settings()
NOW = time.time()
COMPILED = Preparer(SETTINGS, compiled=True)
PYTHON = Preparer(SETTINGS, compiled=False)
TOPICS = {
    "clickstream": SETTINGS.topic_clickstream,
    "orders": SETTINGS.topic_orders,
    "email": SETTINGS.topic_email,
    "customer": SETTINGS.topic_customer,
}
KINDS = {topic: kind for kind, topic in TOPICS.items()}


def _outcome(preparer: Preparer, message: Incoming) -> tuple[Any, ...]:
    """What preparing ``message`` gives, in a form two preparations can be compared by."""
    tally = Tally()
    got = preparer.prepare(message, tally, NOW)
    counts = (dict(tally.rejected), dict(tally.junk), dict(tally.dead_letters))
    if isinstance(got, Outgoing):
        letter = orjson.loads(got.value)
        del letter["failed_at"]  # the clock's
        return ("dead letter", got.destination, got.key, letter, counts)
    resolution = got.resolution
    return (
        got.event,
        resolution.tokens,
        resolution.pattern_junk,
        resolution.at,
        resolution.event_id,
        resolution.candidate(),
        got.erasure,
        counts,
    )


def _vouched(message: Incoming) -> bool:
    """Whether the compiled decoder decoded ``message`` itself (not pydantic)."""
    decoder = COMPILED._decoder
    assert decoder is not None
    kind = KINDS[message.topic]
    return (
        decoder.decode(kind, message.value, message.topic, NOW, SETTINGS.max_event_future_seconds)
        is not None
    )


def _same(message: Incoming) -> bool:
    """Assert both preparations agree on ``message`` (and the compiled facts on what the
    fold reads of it); whether the compiled one decoded it."""
    assert _outcome(COMPILED, message) == _outcome(PYTHON, message), message.value
    vouched = _vouched(message)
    got = COMPILED.prepare(message, Tally(), NOW)
    if vouched and not isinstance(got, Outgoing):
        _facts_agree(got.event)
    return vouched


def _message(event: dict[str, Any] | bytes, topic_kind: str | None = None) -> Incoming:
    if isinstance(event, bytes):
        assert topic_kind is not None
        return Incoming(TOPICS[topic_kind], 0, 0, None, event)
    topic = TOPICS[topic_kind] if topic_kind else topic_for(event, SETTINGS)
    return Incoming(topic, 0, 0, None, orjson.dumps(event))


def test_both_decoders_are_the_ones_asked_for() -> None:
    assert COMPILED.compiled
    assert not PYTHON.compiled


def test_a_simulated_shops_history_prepares_the_same() -> None:
    history = simulate(persons=1500, seed=5).events
    vouched = [_same(_message(event)) for event in history]
    # The shop's messages are of the plain shape: nearly all are decoded compiled.
    assert len(vouched) > 10_000
    assert sum(vouched) / len(vouched) > 0.97


def _facts_agree(event: ResolvedEvent) -> None:
    """The fold reads the same of ``event`` from its compiled facts as from its attributes."""
    assert event.compiled is not None
    resolved = event.for_person("p-1", ["p-2"], ["c:abc", "a:def"])
    resolved.claimed = ("a:def",)
    plain = resolved.for_person("p-1", ["p-2"], ["c:abc", "a:def"])
    plain.claimed, plain.compiled = ("a:def",), None
    assert native.event_for_test(resolved) == native.event_for_test(plain)
    assert event.compiled.digest == content_digest(event)


def test_the_compiled_facts_of_a_shops_events_are_what_the_fold_reads_of_them() -> None:
    checked = 0
    for event in simulate(persons=300, seed=8).events:
        got = COMPILED.prepare(_message(event), Tally(), NOW)
        if not isinstance(got, Outgoing) and got.event.compiled is not None:
            _facts_agree(got.event)
            checked += 1
    assert checked > 2000


CLICK = {
    "event_id": "ev-1",
    "event_time": "2025-11-04T17:31:52+00:00",
    "type": "product_view",
    "source": "web-tracking",
    "anonymous_id": "ck_f2f4e92432ed236d",
    "customer_id": "K1002246",
    "device_id": "dev-77",
    "url": "https://shop.example/p/SKU-0202",
    "referrer": "https://search.example/?q=schuhe",
    "product_id": "SKU-0202",
    "category": "kinder",
    "attribution": {"campaign": "sem-brand", "utm_source": "google", "utm_medium": "cpc"},
}
ORDER = {
    "event_id": "ev-2",
    "event_time": "2025-11-04T17:31:52.5+01:00",
    "type": "order_placed",
    "source": "shop-web",
    "order_id": "ord-0009001",
    "total": "129.03",
    "currency": "EUR",
    "channel": "web",
    "customer": {
        "customer_id": "K1002246",
        "guest": False,
        "email": "Kraemer.Christina@GMX.net",
        "phone": "0151 2345678",
        "email_sha256": "a" * 64,
        "loyalty_card": "LC-1",
        "first_name": "CHRISTINA",
        "last_name": "Krämer",
        "address": {
            "street": "Lindenstraße",
            "house_number": "130",
            "postcode": "40412",
            "city": "Düsseldorf",
            "country": "DE",
        },
    },
    "anonymous_id": "ck_90a7f5cfa8852cff",
    "device_id": "dev-1",
    "payment_fingerprint": "pm_31ac2dbeca011328",
    "attribution": {
        "campaign": "sem-generic",
        "utm_source": "google",
        "utm_medium": "cpc",
        "affiliate_id": "aff-7",
    },
    "items": 2,
}
RETURN = {
    "event_id": "ev-3",
    "event_time": "2025-11-05T08:00:00Z",
    "type": "order_returned",
    "order_id": "ord-0009001",
    "amount": "19.9",
    "currency": "EUR",
}
EMAIL = {
    "event_id": "ev-4",
    "event_time": "2025-12-03T22:59:20.588147+00:00",
    "type": "email_clicked",
    "source": "esp",
    "email": "franziskaboehm@gmx.net",
    "campaign": "newsletter-kw04",
    "message_id": "msg-00008845",
    "url": "https://shop.example/sale",
}
CONSENT = {
    "event_id": "ev-5",
    "event_time": "2025-11-03T15:13:27-02:30",
    "type": "consent_changed",
    "identifiers": {
        "customer_id": "K1003245",
        "email": "inesmaier@gmx.de",
        "phone_sha256": "q" * 43 + "=",
        "anonymous_id": "ck_213e45a93a340cda",
    },
    "consent": {"email": True, "ads": False},
}
CONTACT = {
    "event_id": "ev-6",
    "event_time": "2025-11-03T15:13:27+00:00",
    "type": "contact",
    "identifiers": {"phone": "+49 151 2345678"},
    "channel": "store",
    "topic": "return",
}
BASES = [CLICK, ORDER, RETURN, EMAIL, CONSENT, CONTACT]
PURPOSES = dict.fromkeys(("email", "sms", "phone", "ads", "personalization"), True)


def _with(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``event`` with the field at ``path`` (dotted) set, or removed for ``...``."""
    changed = copy.deepcopy(event)
    *parents, name = path.split(".")
    target = changed
    for part in parents:
        target = target[part]
    if value is ...:
        target.pop(name, None)
    else:
        target[name] = value
    return changed


@pytest.mark.parametrize("event", BASES, ids=[str(e["type"]) for e in BASES])
def test_each_event_type_of_the_plain_shape_is_decoded_compiled(event: dict[str, Any]) -> None:
    assert _same(_message(event))


VOUCHED = [
    # Values pydantic strips (Unicode White_Space), times in every plain form.
    ("padded identifier", CLICK, "anonymous_id", "  \tck_1 \n"),
    ("no-break space", CLICK, "customer_id", "\u00a0K1\u00a0"),
    ("a file separator is kept", CLICK, "customer_id", "\x1cK1"),
    ("next line", ORDER, "customer.email", "\u0085anna@example.com"),
    ("utc as Z", CLICK, "event_time", "2025-11-04T17:31:52Z"),
    ("minus zero", CLICK, "event_time", "2025-11-04T17:31:52-00:00"),
    ("six places", CLICK, "event_time", "2025-11-04T17:31:52.123456+05:45"),
    ("leap day", CLICK, "event_time", "2024-02-29T00:00:00+00:00"),
    ("order total as integer", ORDER, "total", 100),
    ("order total, one place", ORDER, "total", "5.5"),
    ("zero total", ORDER, "total", "0"),
    ("largest total", ORDER, "total", "100000000.00"),
    ("guest without customer id", ORDER, "customer", {"guest": True, "email": "a@b.de"}),
    ("guest with a throw-away number", ORDER, "customer.guest", True),
    ("empty address", ORDER, "customer.address", {}),
    ("coupon", ORDER, "coupon", " FIRST10 "),
    ("null coupon", ORDER, "coupon", None),
    ("no address", ORDER, "customer.address", None),
    ("base64 digest", ORDER, "customer.phone_sha256", "AB+/" * 10 + "abc="),
    ("null optional", CLICK, "attribution", None),
    ("attribution of UTM only", CLICK, "attribution", {"utm_campaign": "x", "campaign": None}),
    ("quantity", CLICK, "type", "add_to_cart"),
    ("refund with reason", RETURN, "type", "order_refunded"),
    ("return without amount", RETURN, "amount", ...),
    ("long url", EMAIL, "url", "https://x.example/" + "a" * 2000),
    ("every purpose", CONSENT, "consent", PURPOSES),
    ("junk e-mail", EMAIL, "email", "test@test.com"),
    ("refused phone", CONTACT, "identifiers.phone", "12"),
]


@pytest.mark.parametrize(
    ("event", "path", "value"), [case[1:] for case in VOUCHED], ids=[case[0] for case in VOUCHED]
)
def test_values_of_the_plain_shape_decode_the_same_compiled(
    event: dict[str, Any], path: str, value: Any
) -> None:
    changed = _with(event, path, value)
    if changed["type"] == "add_to_cart":
        changed.pop("category")
        changed["quantity"] = 3
        changed["price"] = "9.99"
    if changed["type"] == "order_refunded":
        changed["reason"] = "goodwill"
    assert _same(_message(changed))


LEFT_TO_PYDANTIC = [
    # Each is refused by pydantic, or converted in a way only pydantic should decide.
    ("unknown field", CLICK, "colour", "red"),
    ("unknown field inside", ORDER, "customer.address.floor", "3"),
    ("required null", CLICK, "anonymous_id", None),
    ("required missing", ORDER, "currency", ...),
    ("empty after stripping", CLICK, "customer_id", "   "),
    ("too long", CLICK, "product_id", "p" * 257),
    ("coupon too long", ORDER, "coupon", "c" * 257),
    ("coupon on a return", RETURN, "coupon", "FIRST10"),
    ("control character in the id", CLICK, "event_id", "ev\x07"),
    ("number for text", CLICK, "customer_id", 12345),
    ("array for text", CLICK, "customer_id", ["K1"]),
    ("float total", ORDER, "total", 59.9),
    ("three places", ORDER, "total", "1.500"),
    ("leading zero", ORDER, "total", "0100.00"),
    ("padded total", ORDER, "total", " 5.00"),
    ("exponent", ORDER, "total", "1e2"),
    ("negative", ORDER, "total", "-1.00"),
    ("too much", ORDER, "total", "100000000.01"),
    ("lowercase currency", ORDER, "currency", "eur"),
    ("unknown channel", ORDER, "channel", "fax"),
    ("customer without id", ORDER, "customer.customer_id", ...),
    ("guest as text", ORDER, "customer.guest", "true"),
    ("guest as null", ORDER, "customer.guest", None),
    ("lowercase country", ORDER, "customer.address.country", "de"),
    ("items negative", ORDER, "items", -1),
    ("items as text", ORDER, "items", "2"),
    ("short digest", ORDER, "customer.email_sha256", "a" * 63),
    ("seven places", CLICK, "event_time", "2025-11-04T17:31:52.1234567+00:00"),
    ("no offset", CLICK, "event_time", "2025-11-04T17:31:52"),
    ("space for T", CLICK, "event_time", "2025-11-04 17:31:52+00:00"),
    ("lowercase t", CLICK, "event_time", "2025-11-04t17:31:52+00:00"),
    ("second 60", CLICK, "event_time", "2025-11-04T17:31:60+00:00"),
    ("no leap day", CLICK, "event_time", "2023-02-29T00:00:00+00:00"),
    ("epoch seconds", CLICK, "event_time", 1762277512),
    ("before 2000", CLICK, "event_time", "1999-12-31T23:59:59+00:00"),
    ("next year", CLICK, "event_time", "2099-01-01T00:00:00+00:00"),
    ("offset hours", CLICK, "event_time", "2025-11-04T17:31:52+24:00"),
    ("quantity zero", CLICK, "quantity", 0),
    ("page view with a product", CLICK, "type", "page_view"),
    ("cancel with an amount", RETURN, "type", "order_cancelled"),
    ("return with a reason", RETURN, "reason", "broken"),
    ("no consent given", CONSENT, "consent", {}),
    ("unknown purpose", CONSENT, "consent", {"fax": True}),
    ("consent as text", CONSENT, "consent", {"email": "yes"}),
    ("no identifiers", CONTACT, "identifiers", {}),
    ("unknown contact channel", CONTACT, "channel", "fax"),
    ("erasure", CONTACT, "type", "erasure_requested"),
    ("unknown type", EMAIL, "type", "email_printed"),
    ("attribution as text", CLICK, "attribution", "sem"),
    ("unknown bounce type", EMAIL, "bounce_type", "medium"),
]


@pytest.mark.parametrize(
    ("event", "path", "value"),
    [case[1:] for case in LEFT_TO_PYDANTIC],
    ids=[case[0] for case in LEFT_TO_PYDANTIC],
)
def test_what_the_compiled_decoder_cannot_vouch_for_is_left_to_pydantic(
    event: dict[str, Any], path: str, value: Any
) -> None:
    changed = _with(event, path, value)
    if path == "quantity":
        changed["type"] = "add_to_cart"
        changed.pop("category")
    assert not _same(_message(orjson.dumps(changed), KINDS[topic_for(event, SETTINGS)]))


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b'{"event_id": "a", "event_id": "b"}', "clickstream"),
        (orjson.dumps(CLICK)[:-1] + b', "type": "page_view"}', "clickstream"),
        (b"not json", "orders"),
        (b"\xff\xfe", "email"),
        (b"[1, 2]", "customer"),
        (b'"text"', "customer"),
        (orjson.dumps(CLICK), "orders"),  # a click on the orders topic
        (b" " * 10, "clickstream"),
        (b"x" * (SETTINGS.max_event_bytes + 1), "clickstream"),
    ],
)
def test_malformed_messages_are_left_to_pydantic(raw: bytes, kind: str) -> None:
    assert not _same(_message(raw, kind))


def test_an_empty_message_is_refused_the_same() -> None:
    assert not _same(_message(b"", "orders"))


#: JSON values a producer might send in any field.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
    | st.sampled_from(
        ["", " ", "\u00a0", "EUR", "DE", "web", "store", "12.5", "1.234", "2025-11-04T17:31:52Z"]
    ),
    lambda children: st.dictionaries(st.sampled_from(["email", "ads", "x", "guest"]), children),
    max_leaves=4,
)


def _paths(event: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in event.items():
        out.append(prefix + key)
        if isinstance(value, dict):
            out += _paths(value, f"{prefix}{key}.")
    return out


def _settable(event: dict[str, Any], path: str) -> bool:
    """Whether every parent of ``path`` is an object in ``event``."""
    target: Any = event
    for part in path.split(".")[:-1]:
        if not isinstance(target, dict) or not isinstance(target.get(part), dict):
            return False
        target = target[part]
    return True


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_generated_variations_of_real_messages_prepare_the_same(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(BASES))
    kind = KINDS[topic_for(base, SETTINGS)]
    event = base
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from([*_paths(event), "extra", "customer.extra"]))
        value = data.draw(st.just(...) | JSON_VALUES | st.text(max_size=3).map(lambda s: f" {s} "))
        if _settable(event, path):
            event = _with(event, path, value)
    _same(_message(orjson.dumps(event), kind))
