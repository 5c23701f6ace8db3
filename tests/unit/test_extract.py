"""What passes identity resolution: keyed identifiers and facts, never raw personal data."""

from __future__ import annotations

import orjson
from pydantic_core import to_jsonable_python

from bestand.events import decode_event
from bestand.events.decode import TYPE_TOPIC_KIND
from bestand.identity import IdentityKeyer, IdKind, raw_identifiers, resolved_event
from bestand.simulate import simulate


def test_identifiers_of_a_guest_order_strongest_first() -> None:
    event = decode_event(
        "orders",
        orjson.dumps(
            {
                "type": "order_placed",
                "event_id": "e1",
                "event_time": "2026-11-01T10:00:00Z",
                "order_id": "o1",
                "total": "10.00",
                "currency": "EUR",
                "channel": "web",
                "anonymous_id": "ck-1",
                "customer": {
                    "guest": True,
                    "customer_id": "throwaway-1",
                    "email": "a@example.com",
                    "phone": "0151 12345678",
                },
            }
        ),
        max_bytes=65536,
    )
    kinds = [kind for kind, _, _ in raw_identifiers(event)]
    # A guest's customer number is a throw-away: it does not name the person.
    assert kinds == [IdKind.EMAIL, IdKind.PHONE, IdKind.ORDER, IdKind.ANONYMOUS]


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def test_no_raw_personal_data_passes_identity_resolution() -> None:
    keyer = IdentityKeyer(b"secret", "DE")
    shop = simulate(persons=40, seed=11)
    raw_values: set[str] = set()
    for persona in shop.personas:
        raw_values |= {
            persona.email,
            persona.phone,
            persona.first,
            persona.last,
            persona.email.split("@")[0],
        }
    for event in shop.events:
        decoded = decode_event(TYPE_TOPIC_KIND[event["type"]], orjson.dumps(event), max_bytes=65536)
        keyed = keyer.key_all(raw_identifiers(decoded))
        tokens = [kid.token for kid in keyed.ids]
        out = resolved_event(decoded, topic="t", person_id="P", absorbed=[], identifiers=tokens)
        leaves = [leaf.lower() for leaf in _strings(to_jsonable_python(out))]
        # A name is a leak when a field holds it; longer values also when a field contains them
        # (short ones like "Tim" occur by chance inside event_time or a base64 hash).
        leaked = [
            value
            for value in raw_values
            for leaf in leaves
            if leaf == value.lower() or (len(value) >= 6 and value.lower() in leaf)
        ]
        assert leaked == [], f"{event['type']} leaked {leaked}"


def test_order_facts_are_in_cents() -> None:
    event = decode_event(
        "orders",
        orjson.dumps(
            {
                "type": "order_returned",
                "event_id": "r1",
                "event_time": "2026-11-01T10:00:00Z",
                "order_id": "o1",
                "amount": "12.34",
                "currency": "EUR",
            }
        ),
        max_bytes=65536,
    )
    tokens = [kid.token for kid in IdentityKeyer(b"s", "DE").key_all(raw_identifiers(event)).ids]
    out = resolved_event(event, topic="t", person_id="P", absorbed=[], identifiers=tokens)
    assert out.order is not None
    assert out.order.returned_cents == 1234
    assert out.kind == "order"


def test_hashed_phones_and_emails_name_the_same_identifiers_as_raw_ones() -> None:
    import hashlib

    keyer = IdentityKeyer(b"s", "DE")
    phone = hashlib.sha256(b"+4915112345678").hexdigest()
    email = hashlib.sha256(b"anna@example.com").hexdigest()
    base = {"event_id": "e", "event_time": "2026-11-01T10:00:00Z"}
    hashed = [
        {**base, "type": "identify", "identifiers": {"phone_sha256": phone, "email_sha256": email}},
        {
            **base,
            "type": "order_placed",
            "order_id": "o1",
            "total": "1.00",
            "currency": "EUR",
            "channel": "web",
            "customer": {"guest": True, "phone_sha256": phone, "email_sha256": email},
        },
    ]
    raw = keyer.key_all(
        [(IdKind.PHONE, "0151 12345678", False), (IdKind.EMAIL, "Anna@example.com", False)]
    )
    wanted = {kid.token for kid in raw.ids}
    for event in hashed:
        decoded = decode_event(TYPE_TOPIC_KIND[event["type"]], orjson.dumps(event), max_bytes=65536)
        tokens = {kid.token for kid in keyer.key_all(raw_identifiers(decoded)).ids}
        assert wanted <= tokens, event["type"]
