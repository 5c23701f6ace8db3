"""SendGrid's Event Webhook as bestand's e-mail events.

SendGrid posts a JSON array of events, signed: ``X-Twilio-Email-Event-Webhook-Signature`` is
an ECDSA (P-256, SHA-256) signature, Base64 DER, over the ``...-Timestamp`` header followed
by the raw body, verifiable with the public key SendGrid shows for the webhook.

| SendGrid event | bestand event |
|---|---|
| ``processed`` | ``email_sent`` |
| ``delivered`` | ``email_delivered`` |
| ``open`` | ``email_opened`` |
| ``click`` | ``email_clicked`` (with its URL) |
| ``bounce`` | ``email_bounced`` (``hard``; a ``blocked`` bounce is ``soft``) |
| ``unsubscribe``, ``group_unsubscribe``, ``spamreport`` | ``email_unsubscribed`` |

Other events (``deferred``, ``dropped``, ``group_resubscribe``, ...) are skipped. The event
id is SendGrid's ``sg_event_id``: a retried post carries the same ids.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bestand.collector.mapping import Mapped, Refused, Skipped, mapped, text_of

EVENTS = {
    "processed": "email_sent",
    "delivered": "email_delivered",
    "open": "email_opened",
    "click": "email_clicked",
    "bounce": "email_bounced",
    "unsubscribe": "email_unsubscribed",
    "group_unsubscribe": "email_unsubscribed",
    "spamreport": "email_unsubscribed",
}
SOURCE = "sendgrid"


def public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (Base64 DER), or as PEM."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"not a public key (Base64 DER or PEM): {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("SendGrid signs with an elliptic-curve (P-256) key")  # noqa: TRY004 - a setting's error
    return key


def verified(
    key: ec.EllipticCurvePublicKey,
    body: bytes,
    signature: bytes | None,
    timestamp: bytes | None,
    *,
    now: float,
    max_age_seconds: float,
) -> str | None:
    """None when the signature holds and the timestamp is fresh, else why not."""
    if not signature or not timestamp:
        return "the signature or timestamp header is missing"
    try:
        signed_at = int(timestamp.strip())
    except ValueError:
        return "the timestamp is not a number"
    if abs(now - signed_at) > max_age_seconds:
        return f"the timestamp is more than {max_age_seconds:.0f} s from the collector's clock"
    try:
        key.verify(
            base64.b64decode(signature.strip(), validate=True),
            timestamp.strip() + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        return "the signature does not match"
    return None


def from_sendgrid(event: Any) -> Mapped | Skipped:
    """One event of SendGrid's array; raises :class:`Refused`."""
    if not isinstance(event, Mapping):
        raise Refused("schema", "an event must be a JSON object")
    kind = text_of(event, "event")
    target = EVENTS.get(kind or "")
    if target is None:
        return Skipped(f"sendgrid {kind}"[:64])
    event_id = text_of(event, "sg_event_id")
    if event_id is None:
        raise Refused("schema", "the event has no sg_event_id")
    stamp = event.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
        raise Refused("schema", "the event's timestamp must be Unix seconds")
    out: dict[str, Any] = {
        "event_id": f"sendgrid-{event_id}",
        "event_time": datetime.fromtimestamp(stamp, UTC).isoformat(),
        "source": SOURCE,
        "type": target,
        "email": text_of(event, "email"),
    }
    if campaign := _campaign(event):
        out["campaign"] = campaign
    if message := text_of(event, "sg_message_id"):
        out["message_id"] = message
    if target == "email_clicked" and (url := text_of(event, "url")):
        out["url"] = url
    if target == "email_bounced":
        out["bounce_type"] = "soft" if text_of(event, "type") == "blocked" else "hard"
    return mapped(out)


def _campaign(event: Mapping[str, Any]) -> str | None:
    """The marketing campaign's name, else the first category."""
    if name := text_of(event, "marketing_campaign_name"):
        return name
    category = event.get("category")
    if isinstance(category, list):
        category = next((c for c in category if isinstance(c, str) and c.strip()), None)
    return category.strip() if isinstance(category, str) and category.strip() else None
