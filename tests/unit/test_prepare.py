"""Preparing one input message: what is refused before resolution, and why."""

from __future__ import annotations

from typing import Any

import orjson

from bestand.settings import Settings
from bestand.stream.messages import Incoming, Outgoing
from bestand.stream.prepare import Prepared, Preparer
from bestand.stream.tally import Tally

BASE = {"event_id": "p-1", "event_time": "2026-11-01T10:00:00Z", "type": "identify"}


def _prepare(identifiers: dict[str, Any]) -> tuple[Prepared | Outgoing, Tally]:
    settings = Settings()
    tally = Tally()
    message = Incoming(
        settings.topic_customer, 0, 7, None, orjson.dumps({**BASE, "identifiers": identifiers})
    )
    return Preparer(settings).prepare(message, tally, now=1_793_500_000.0), tally


def test_a_nul_byte_never_makes_an_identifier() -> None:
    prepared, tally = _prepare({"email": "nul\u0000byte@example.com"})
    assert isinstance(prepared, Outgoing)
    letter = orjson.loads(prepared.value)
    assert letter["reason"] == "no_identifier"
    assert "control characters" in letter["error"]
    assert tally.rejected["email"] == 1


def test_an_email_with_a_stray_space_links_as_the_address_without_it() -> None:
    spaced, _ = _prepare({"email": "anna.koch @gmail.com"})
    plain, _ = _prepare({"email": "annakoch@googlemail.com"})
    assert isinstance(spaced, Prepared)
    assert isinstance(plain, Prepared)
    assert spaced.resolution.tokens == plain.resolution.tokens


def test_a_possible_number_links_and_a_one_digit_fake_is_junk() -> None:
    short, _ = _prepare({"phone": "0171 234567"})
    assert isinstance(short, Prepared)
    assert short.resolution.pattern_junk == []
    fake, tally = _prepare({"phone": "0151 11111111", "customer_id": "K-1"})
    assert isinstance(fake, Prepared)
    assert [why for _, why in fake.resolution.pattern_junk] == ["all subscriber digits are equal"]
    assert tally.junk[("phone", "pattern")] == 1
