"""SendGrid's Event Webhook: the signature check and the events as bestand's e-mail events.

The tests sign as SendGrid does, with a P-256 key pair they generate: ECDSA over SHA-256 of
the timestamp header followed by the raw body, the signature Base64 DER; the public key is
given to the collector as SendGrid shows it (Base64 DER) or as PEM.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bestand.collector.mapping import Mapped, Refused, Skipped
from bestand.collector.sendgrid import from_sendgrid, public_key, verified
from bestand.events.decode import ADAPTERS

NOW = 1_795_000_000.0


def key_pair() -> tuple[ec.EllipticCurvePrivateKey, str, str]:
    """A private key, and its public key as SendGrid shows it (Base64 DER) and as PEM."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(der).decode(), pem.decode()


def sign(private: ec.EllipticCurvePrivateKey, timestamp: bytes, body: bytes) -> bytes:
    return base64.b64encode(private.sign(timestamp + body, ec.ECDSA(hashes.SHA256())))


def test_a_signature_holds_only_for_its_key_body_and_a_fresh_timestamp() -> None:
    private, shown, pem = key_pair()
    body = orjson.dumps([{"email": "a@example.com", "event": "open"}])
    stamp = str(int(NOW) - 30).encode()
    signature = sign(private, stamp, body)
    for key in (public_key(shown), public_key(pem)):
        assert verified(key, body, signature, stamp, now=NOW, max_age_seconds=600) is None
    key = public_key(shown)

    def why(**changed: Any) -> str | None:
        given = {"body": body, "signature": signature, "timestamp": stamp} | changed
        return verified(key, **given, now=NOW, max_age_seconds=600)

    assert why(body=body + b" ") == "the signature does not match"
    assert why(timestamp=str(int(NOW) - 31).encode()) == "the signature does not match"
    assert why(signature=b"not base64!") == "the signature does not match"
    assert why(signature=None) == "the signature or timestamp header is missing"
    assert why(timestamp=b"yesterday") == "the timestamp is not a number"
    old = str(int(NOW) - 3600).encode()
    assert "more than 600 s" in str(why(timestamp=old, signature=sign(private, old, body)))
    other, _, _ = key_pair()
    assert why(signature=sign(other, stamp, body)) == "the signature does not match"


def test_a_key_that_is_not_an_elliptic_curve_key_is_refused() -> None:
    with pytest.raises(ValueError, match="not a public key"):
        public_key("bm90IGEga2V5")
    with pytest.raises(ValueError, match="not a public key"):
        public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")


def mapped(event: dict[str, Any]) -> dict[str, Any]:
    outcome = from_sendgrid(event)
    assert isinstance(outcome, Mapped), outcome
    ADAPTERS[outcome.kind].validate_python(outcome.event)
    return outcome.event


BASE = {
    "email": "Kundin@Example.com",
    "timestamp": 1_795_000_000,
    "sg_event_id": "sg_event_id_1",
    "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
    "category": ["winter-sale", "newsletter"],
}


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ({"event": "processed"}, {"type": "email_sent"}),
        ({"event": "delivered"}, {"type": "email_delivered"}),
        ({"event": "open"}, {"type": "email_opened"}),
        ({"event": "click", "url": "https://shop.example/sale"},
         {"type": "email_clicked", "url": "https://shop.example/sale"}),
        ({"event": "bounce", "type": "bounce"}, {"type": "email_bounced", "bounce_type": "hard"}),
        ({"event": "bounce", "type": "blocked"},
         {"type": "email_bounced", "bounce_type": "soft"}),
        ({"event": "unsubscribe"}, {"type": "email_unsubscribed"}),
        ({"event": "group_unsubscribe"}, {"type": "email_unsubscribed"}),
        ({"event": "spamreport"}, {"type": "email_unsubscribed"}),
    ],
)  # fmt: skip
def test_sendgrid_events_are_email_events(sent: dict[str, Any], expected: dict[str, Any]) -> None:
    event = mapped({**BASE, **sent})
    assert event == {
        "event_id": "sendgrid-sg_event_id_1",
        "event_time": "2026-11-18T11:06:40+00:00",
        "source": "sendgrid",
        "email": "Kundin@Example.com",
        "campaign": "winter-sale",
        "message_id": BASE["sg_message_id"],
        **expected,
    }


def test_other_events_are_skipped_and_broken_ones_refused() -> None:
    assert from_sendgrid({**BASE, "event": "deferred"}) == Skipped("sendgrid deferred")
    named = mapped({**BASE, "event": "open", "marketing_campaign_name": "Advent"})
    assert named["campaign"] == "Advent"
    for event, says in [
        ("not an object", "JSON object"),
        ({**BASE, "event": "open", "sg_event_id": None}, "sg_event_id"),
        ({**BASE, "event": "open", "timestamp": "today"}, "Unix seconds"),
        ({**BASE, "event": "open", "email": None}, "email"),
    ]:
        with pytest.raises(Refused) as caught:
            from_sendgrid(event)
        assert says in caught.value.detail
