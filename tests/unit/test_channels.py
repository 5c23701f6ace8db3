"""The preferred contact channel follows the signals, and consent rules channels out."""

from __future__ import annotations

from dataclasses import replace

from bestand.profile import OrderRecord, PersonState
from bestand.profile.channels import preferred_channel


def test_nothing_known_means_no_preference() -> None:
    assert preferred_channel(PersonState("P")) is None


def test_engagement_calls_and_store_orders_compete() -> None:
    reader = PersonState("P", email={"opened": 3, "clicked": 1})
    assert preferred_channel(reader) == "email"
    caller = replace(reader, contacts={"phone": 4})
    assert preferred_channel(caller) == "phone"
    shopper = PersonState(
        "P",
        orders={f"o{n}": OrderRecord(channel="store", at=n) for n in range(3)},
        email={"opened": 1},
    )
    assert preferred_channel(shopper) == "store"


def test_withdrawn_consent_or_a_bounce_rules_a_channel_out() -> None:
    reader = PersonState("P", email={"opened": 9}, contacts={"phone": 1})
    assert preferred_channel(replace(reader, consent={"email": (False, 1)})) == "phone"
    assert preferred_channel(replace(reader, email={"opened": 9, "bounced": 1})) == "phone"
    assert preferred_channel(replace(reader, contacts={}, consent={"email": (False, 1)})) is None
