"""Hashed identifiers as ad platforms exchange them: what comes in hashed answers raw lookups,
and what comes in raw answers hashed ones (UID2's published phone and e-mail vectors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import make_deployment, process_events, run

from bestand.api import create_api

pytestmark = pytest.mark.integration

# UID2's examples: "+12345678901" and "user@example.com", SHA-256 in Base64.
PHONE_B64 = "EObwtHBUqDNZR33LNSMdtt5cafsYFuGmuY4ZLenlue4="
EMAIL_B64 = "tMmiiTI7IaAcPpQPFQ65uMVCWH8av9jw4cwf/F5HVRQ="


def _order(event_id: str, day: int, customer: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "order_placed",
        "event_id": event_id,
        "event_time": f"2026-11-{day:02d}T10:00:00Z",
        "order_id": f"o-{event_id}",
        "total": "25.00",
        "currency": "EUR",
        "channel": "web",
        "customer": {"guest": True, **customer},
    }


def test_hashed_in_raw_out_and_raw_in_hashed_out(redis_url: str, tmp_path: Path) -> None:
    deployment = make_deployment("127.0.0.1:1", redis_url, tmp_path)
    settings = deployment.settings
    events = [
        # Hashed in: an order that carries only the platforms' hashes.
        _order("h1", 2, {"phone_sha256": PHONE_B64, "email_sha256": EMAIL_B64}),
        # Raw in: another shopper's raw phone and e-mail.
        _order("r1", 3, {"phone": "030 9018 2735", "email": "Rita.Roth @GoogleMail.com"}),
    ]

    async def go() -> dict[str, Any]:
        await process_events(settings, settings.topic_orders, events)
        api = create_api(settings)
        try:
            lookup = api.service.lookup
            return {
                "raw phone": await lookup("phone", "+1 (234) 567-8901"),
                "raw email": await lookup("email", "User@Example.com"),
                "hashed phone": await lookup("phone_sha256", _sha256_hex("+493090182735")),
                "hashed email": await lookup("email_sha256", _sha256_hex("ritaroth@gmail.com")),
            }
        finally:
            await api.close()

    answers = run(go())
    assert answers["raw phone"]["existing_customer"] is True
    assert answers["raw phone"]["person_id"] == answers["raw email"]["person_id"]
    assert answers["hashed phone"]["existing_customer"] is True
    assert answers["hashed phone"]["person_id"] == answers["hashed email"]["person_id"]
    assert answers["hashed phone"]["person_id"] != answers["raw phone"]["person_id"]


def _sha256_hex(value: str) -> str:
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()
