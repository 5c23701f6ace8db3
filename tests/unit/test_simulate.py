"""The simulated shop: deterministic, valid against the contracts, honest about who is who."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import phonenumbers
import pytest

from bestand.events import decode_event
from bestand.events.decode import TYPE_TOPIC_KIND
from bestand.simulate import SCENARIOS, TRAITS, SimulatedShop, read_shop, simulate, write_shop
from bestand.simulate.ids import mailbox
from bestand.simulate.names import DUMMY_EMAILS, FAKE_PHONES, SHOP_DUMMY_EMAILS

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def shop() -> SimulatedShop:
    return simulate(persons=2000, seed=7, now=NOW)


def test_same_seed_same_shop() -> None:
    first = simulate(persons=300, seed=5, now=NOW)
    second = simulate(persons=300, seed=5, now=NOW)
    assert first.events == second.events
    assert first.truth == second.truth
    assert first.scenario_counts == second.scenario_counts
    assert simulate(persons=300, seed=6, now=NOW).events != first.events


def test_determinism_does_not_depend_on_string_hashing() -> None:
    """Set iteration order changes with PYTHONHASHSEED; the shop must not."""
    code = (
        "import hashlib, orjson, datetime as d; from bestand.simulate import simulate;"
        "s = simulate(150, 3, d.datetime(2026, 3, 1, tzinfo=d.UTC));"
        "print(hashlib.sha256(orjson.dumps([s.events, s.truth])).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    local = simulate(150, 3, datetime(2026, 3, 1, tzinfo=UTC))
    expected = hashlib.sha256(orjson.dumps([local.events, local.truth])).hexdigest()
    assert digests == {expected}


def test_every_event_speaks_the_contracts(shop: SimulatedShop) -> None:
    for event in shop.events:
        decode_event(TYPE_TOPIC_KIND[event["type"]], orjson.dumps(event), max_bytes=65536)


def _has_none(value: Any) -> bool:
    if isinstance(value, dict):
        return any(v is None or _has_none(v) for v in value.values())
    return False


def test_events_are_time_ordered_unique_and_without_nulls(shop: SimulatedShop) -> None:
    ids = [event["event_id"] for event in shop.events]
    assert len(ids) == len(set(ids))
    assert set(shop.truth) == set(ids)
    assert set(shop.truth.values()) <= {p.key for p in shop.personas}
    times = [datetime.fromisoformat(event["event_time"]) for event in shop.events]
    assert times == sorted(times)
    assert NOW - timedelta(days=401) <= times[0]
    assert times[-1] <= NOW
    assert not any(_has_none(event) for event in shop.events)


def test_every_scenario_occurs(shop: SimulatedShop) -> None:
    counts = shop.scenario_counts
    missing = [s.kind for s in SCENARIOS if counts[s.kind] == 0]
    missing += [t.name for t in TRAITS if t.rate > 0 and counts[t.name] == 0]
    assert missing == []
    assert counts["e_receipt"] == 0  # a what-if, off by default
    # Kinds come in their exact shares (plus Jana, a loyal guest).
    for scenario in SCENARIOS:
        extra = 1 if scenario.kind == "loyal_guest" else 0
        assert counts[scenario.kind] == round(scenario.share * 2000) + extra
    assert sum(counts[s.kind] for s in SCENARIOS) == len(shop.personas) == 2001
    assert abs(sum(SCENARIOS[i].share for i in range(len(SCENARIOS))) - 1.0) < 1e-9


def test_every_order_names_its_buyer(shop: SimulatedShop) -> None:
    orders = [e for e in shop.events if e["type"] == "order_placed"]
    online = [e for e in orders if e["channel"] in ("web", "app", "phone")]
    assert all("address" in e["customer"] and "last_name" in e["customer"] for e in online)
    web = [e for e in orders if e["channel"] in ("web", "app")]
    assert sum("payment_fingerprint" in e for e in web) > 0.8 * len(web)
    stores = [e for e in orders if e["channel"] == "store"]
    assert any("address" in e["customer"] for e in stores)
    assert any("address" not in e["customer"] for e in stores)
    assert any("loyalty_card" in e["customer"] for e in stores)
    types = {e["type"] for e in shop.events}
    assert types == set(TYPE_TOPIC_KIND) - {"erasure_requested"}


def _identifiers(event: dict[str, Any]) -> list[tuple[str, str]]:
    """Identifiers of an event, normalized enough to see who shares them."""
    customer = event.get("customer", {})
    given = event.get("identifiers", {})
    emails = (customer.get("email"), given.get("email"), event.get("email"))
    out = [("email", mailbox(email)) for email in emails if email and "@" in email]
    for phone in (customer.get("phone"), given.get("phone")):
        if phone:
            number = phonenumbers.parse(phone, "DE")
            if phonenumbers.is_valid_number(number):
                out.append(("phone", f"+{number.country_code}{number.national_number}"))
    cookies = (event.get("anonymous_id"), given.get("anonymous_id"))
    out.extend(("cookie", cookie) for cookie in cookies if cookie)
    card = customer.get("loyalty_card") or given.get("loyalty_card")
    if card:
        out.append(("loyalty", card.replace(" ", "").replace("-", "")))
    if event.get("payment_fingerprint"):
        out.append(("card", event["payment_fingerprint"]))
    if customer.get("customer_id") and not customer.get("guest"):
        out.append(("customer", customer["customer_id"]))
    return out


def test_only_scenarios_make_strangers_share_an_identifier(shop: SimulatedShop) -> None:
    household = {p.key: p.household for p in shop.personas}
    owners: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in shop.events:
        for identifier in _identifiers(event):
            owners[identifier].add(shop.truth[event["event_id"]])
    dummies = {mailbox(e) for e in DUMMY_EMAILS + SHOP_DUMMY_EMAILS if "@" in e}
    fakes = {f"+{n.country_code}{n.national_number}" for n in map(_parse, FAKE_PHONES)}
    across_homes = {
        identifier
        for identifier, persons in owners.items()
        if len({household[p] for p in persons}) > 1
    }
    allowed = {("email", d) for d in dummies} | {("phone", f) for f in fakes}
    assert across_homes <= allowed
    assert ("email", mailbox(SHOP_DUMMY_EMAILS[0])) in across_homes


def _store_sales(shop: SimulatedShop) -> list[tuple[Any, str | None]]:
    """(buyer, e-mail as typed) of every store sale."""
    personas = {p.key: p for p in shop.personas}
    return [
        (personas[shop.truth[e["event_id"]]], e["customer"].get("email"))
        for e in shop.events
        if e["type"] == "order_placed" and e["channel"] == "store"
    ]


def test_e_receipts_put_the_buyers_own_email_on_store_sales(tmp_path: Path) -> None:
    plain = simulate(persons=600, seed=3, now=NOW)
    receipts = simulate(persons=600, seed=3, now=NOW, e_receipts=1.0)
    assert receipts.e_receipts == 1.0
    assert receipts.summary()["e_receipts"] == 1.0

    def own(buyer: Any, email: str | None) -> bool:
        return bool(email) and mailbox(email) in {
            mailbox(a) for a in (buyer.email, *buyer.extra_emails)
        }

    # By default a walk-in never leaves their own e-mail in the store: a dummy or nothing.
    walk_ins = [(b, e) for b, e in _store_sales(plain) if b.kind == "walk_in"]
    assert walk_ins
    assert not any(own(b, e) for b, e in walk_ins)
    # Asked at the till every time, every store buyer leaves it, in one of its spellings.
    sales = _store_sales(receipts)
    assert len(sales) > 100
    assert all(own(b, e) for b, e in sales)
    assert receipts.scenario_counts["e_receipt"] > 0
    write_shop(receipts, tmp_path / "receipts")
    assert read_shop(tmp_path / "receipts").e_receipts == 1.0  # how it was made travels along
    # The same people; what they do after giving an e-mail (newsletters) may differ.
    assert [(p.key, p.kind, p.household) for p in receipts.personas] == [
        (p.key, p.kind, p.household) for p in plain.personas
    ]


def test_e_receipts_share_is_checked() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        simulate(persons=10, e_receipts=1.5)


def _parse(raw: str) -> phonenumbers.PhoneNumber:
    return phonenumbers.parse(raw, "DE")


def test_jana_is_the_featured_loyal_guest(shop: SimulatedShop) -> None:
    jana = next(p for p in shop.personas if p.key == "person-jana")
    assert (jana.first, jana.last, jana.kind, jana.customer_id) == (
        "Jana",
        "Schmidt",
        "loyal_guest",
        None,
    )
    assert jana.cookies == ["ck-jana-laptop", "ck-jana-phone"]
    events = [e for e in shop.events if shop.truth[e["event_id"]] == "person-jana"]
    orders = [e for e in events if e["type"].startswith("order_")]
    assert [e["type"] for e in orders] == ["order_placed", "order_placed"]
    first, second = orders
    assert first["channel"] == "web"
    assert first["customer"]["email"] == "Jana.Schmidt@gmail.com"
    assert first["customer"]["guest"] is True
    assert datetime.fromisoformat(first["event_time"]) == NOW - timedelta(days=40)
    assert second["channel"] == "app"
    assert second["customer"]["email"] == " JANASCHMIDT+angebot@GMAIL.com "
    assert second["customer"]["phone"] == "0151 2384 7561"
    assert datetime.fromisoformat(second["event_time"]) == NOW - timedelta(days=3)
    assert {e["anonymous_id"] for e in events if "anonymous_id" in e} == set(jana.cookies)
    # Nobody else ever uses her mailbox or phone.
    others = [e for e in shop.events if shop.truth[e["event_id"]] != "person-jana"]
    shared = {i for e in others for i in _identifiers(e)} & {
        ("email", "janaschmidt@gmail.com"),
        ("phone", "+4915123847561"),
    }
    assert shared == set()


def test_write_and_read_back(shop: SimulatedShop, tmp_path: Path) -> None:
    paths = write_shop(shop, tmp_path / "shop")
    assert [p.name for p in paths] == ["events.jsonl", "truth.json", "summary.json"]
    lines = paths[0].read_bytes().splitlines()
    assert len(lines) == len(shop.events)
    assert orjson.loads(lines[0]) == shop.events[0]
    truth = orjson.loads(paths[1].read_bytes())
    assert truth["persons"]["person-jana"]["kind"] == "loyal_guest"
    assert truth["persons"]["person-jana"]["household"] == "hh-jana"
    summary = orjson.loads(paths[2].read_bytes())
    assert summary["events"] == len(shop.events)
    again = read_shop(tmp_path / "shop")
    assert again.events == shop.events
    assert again.truth == shop.truth
    assert again.scenario_counts == shop.scenario_counts
    assert again.households == shop.households
    assert again.now == NOW
    assert again.seed == 7
    assert [(p.key, p.kind, p.household, p.traits) for p in again.personas] == [
        (p.key, p.kind, p.household, p.traits) for p in shop.personas
    ]


def test_twenty_thousand_persons_in_well_under_a_minute() -> None:
    started = time.perf_counter()
    big = simulate(persons=20_000, seed=11, now=NOW)
    elapsed = time.perf_counter() - started
    per_person = len(big.events) / len(big.personas)
    print(
        f"\n20,000 persons: {len(big.events)} events ({per_person:.1f}/person) in {elapsed:.1f} s"
    )
    assert 150_000 <= len(big.events) <= 250_000
    clicks = sum(e["type"] in ("page_view", "product_view", "add_to_cart") for e in big.events)
    assert 2 <= clicks / len(big.personas) <= 6
    assert elapsed < 120  # generous: shared CI machines are slow; typical is ~10 s


def test_a_loyalty_card_is_signed_up_for_before_it_is_first_used(shop: SimulatedShop) -> None:
    personas = {p.key: p for p in shop.personas}
    signups = {
        shop.truth[e["event_id"]]: e
        for e in shop.events
        if e["type"] == "identify" and e["source"] == "loyalty-signup"
    }
    first_order: dict[str, str] = {}
    for event in shop.events:
        if event["type"] == "order_placed":
            first_order.setdefault(shop.truth[event["event_id"]], event["event_time"])
    holders = {key for key in first_order if personas[key].loyalty_card}
    assert len(holders) > 50
    assert set(signups) == holders  # every buyer with a card, nobody else
    for key, signup in signups.items():
        persona = personas[key]
        given = signup["identifiers"]
        assert given["loyalty_card"] == persona.loyalty_card
        # The form takes the e-mail they shop with: their own, or the family one.
        assert mailbox(given["email"]) in {
            mailbox(a) for a in (persona.email, *persona.extra_emails)
        }
        assert given.get("phone") in (None, persona.phone)
        assert signup["event_time"] < first_order[key]
    assert any("phone" in s["identifiers"] for s in signups.values())
