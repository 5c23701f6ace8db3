"""The simulated shop: people, their history of events, and the truth of who is who.

:func:`simulate` builds the population, lets every person live through the shop's last ~400
days and returns the events in time order together with the real person behind each one.
The featured persona of the demo, Jana Schmidt, is always there and always looks the same.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bestand.simulate.activity import Activity
from bestand.simulate.checkout import Checkout, Habits
from bestand.simulate.events import EventLog
from bestand.simulate.ids import IdFactory, mailbox
from bestand.simulate.people import Household, Persona, PostalAddress
from bestand.simulate.population import Population
from bestand.simulate.scenarios import KINDS, TRAIT_NAMES

JANA_ADDRESS = PostalAddress("Gartenstraße", "14", "50667", "Köln", "DE")


@dataclass
class SimulatedShop:
    """Events in time order plus the real person behind each one."""

    events: list[dict[str, Any]]
    truth: dict[str, str]
    personas: list[Persona]
    #: Persons per kind and per trait (keys of :data:`KINDS` and :data:`TRAIT_NAMES`).
    scenario_counts: dict[str, int] = field(default_factory=dict)
    #: Household key -> person keys (single-person households included).
    households: dict[str, list[str]] = field(default_factory=dict)
    seed: int | None = None
    now: datetime | None = None
    #: Share of store sales with the buyer's own e-mail for a digital receipt (see simulate).
    e_receipts: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Counts that describe the shop: persons, households, events by type, scenarios."""
        by_type = Counter(event["type"] for event in self.events)
        return {
            "seed": self.seed,
            "now": self.now.isoformat() if self.now else None,
            "e_receipts": self.e_receipts,
            "persons": len(self.personas),
            "households": len(self.households),
            "multi_person_households": sum(len(m) > 1 for m in self.households.values()),
            "events": len(self.events),
            "events_by_type": dict(sorted(by_type.items())),
            "scenario_counts": self.scenario_counts,
        }


def scenario_counts(personas: list[Persona]) -> dict[str, int]:
    """Persons per kind and per trait; every kind and trait is listed, zero or not."""
    counts = dict.fromkeys(KINDS, 0) | dict.fromkeys(TRAIT_NAMES, 0)
    for persona in personas:
        counts[persona.kind] = counts.get(persona.kind, 0) + 1
        for trait in persona.traits:
            counts[trait] = counts.get(trait, 0) + 1
    return counts


def featured_guest(activity: Activity) -> Persona:
    """Jana, the loyal guest of the demo: two orders, two spellings of one Gmail address."""
    ids = activity.ids
    jana = Persona(
        key="person-jana",
        first="Jana",
        last="Schmidt",
        email="jana.schmidt@gmail.com",
        phone="+4915123847561",
        customer_id=None,
        cookies=["ck-jana-laptop", "ck-jana-phone"],
        kind="loyal_guest",
        household="hh-jana",
        address=JANA_ADDRESS,
        payment_fingerprints=[ids.card()],
        traits=["email_variant", "phone_variant", "card_reuse"],
    )
    habits = Habits(
        gives_phone=True,
        fake_phone=False,
        varies_email=True,
        varies_phone=True,
        new_cookie_rate=0.0,
    )
    card = jana.payment_fingerprints[0]
    first = activity.now - timedelta(days=40)
    activity.visit(jana, first - timedelta(minutes=10), jana.cookies[0], habits=habits)
    base = Checkout(
        channel="web",
        guest=True,
        email="Jana.Schmidt@gmail.com",
        first_name=jana.first,
        last_name=jana.last,
        address=JANA_ADDRESS.as_event(),
        cookie=jana.cookies[0],
        card=card,
    )
    activity.place(jana, first, base, aftermath=False)
    second = activity.now - timedelta(days=3)
    activity.visit(jana, second - timedelta(minutes=5), jana.cookies[1], habits=habits)
    again = Checkout(
        channel="app",
        guest=True,
        email=" JANASCHMIDT+angebot@GMAIL.com ",
        phone="0151 2384 7561",
        first_name=jana.first,
        last_name=jana.last,
        address=JANA_ADDRESS.as_event(),
        cookie=jana.cookies[1],
        card=card,
    )
    activity.place(jana, second, again, aftermath=False)
    return jana


def _reserve_jana(ids: IdFactory) -> None:
    """Nobody else may ever have Jana's e-mail, phone, cookies or address."""
    ids.reserve("email", mailbox("jana.schmidt@gmail.com"))
    ids.reserve("phone", "+4915123847561")
    for fake in ("+4915111111111", "+491701234567"):  # valid numbers among FAKE_PHONES
        ids.reserve("phone", fake)
    for cookie in ("ck-jana-laptop", "ck-jana-phone"):
        ids.reserve("cookie", cookie)
    street, number, postcode = JANA_ADDRESS.street, JANA_ADDRESS.house_number, "50667"
    ids.reserve("address", f"{street}|{number}|{postcode}".lower())


def simulate(
    persons: int = 200, seed: int = 7, now: datetime | None = None, e_receipts: float = 0.0
) -> SimulatedShop:
    """Simulate ``persons`` people over the last ~400 days, plus the featured loyal guest.

    Deterministic for a given ``seed``, ``now`` and ``e_receipts`` (a naive ``now`` is read as
    UTC); only the default ``now`` looks at the clock. ``e_receipts`` is the share of store
    sales in which the buyer gives their own e-mail for a digital receipt: a what-if for how
    much a shop gains from asking at the till.
    """
    if persons < 0:
        raise ValueError("persons must not be negative")
    if not 0.0 <= e_receipts <= 1.0:
        raise ValueError("e_receipts must be a share between 0 and 1")
    if now is None:
        now = datetime.now(UTC).replace(microsecond=0)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    rng = random.Random(seed)
    ids = IdFactory(rng)
    _reserve_jana(ids)
    population = Population(rng, ids)
    population.build(persons)
    jana_home = Household(key="hh-jana", members=[])
    households = {h.key: h for h in population.households} | {jana_home.key: jana_home}
    log = EventLog()
    receipts = random.Random(f"e-receipts {seed}")  # its own draws: the shop stays the same
    typing = random.Random(f"typing {seed}")  # its own draws too: how people mistype
    activity = Activity(rng, now, ids, log, households, e_receipts, receipts, typing)
    jana = featured_guest(activity)
    jana_home.members.append(jana)
    for persona in population.personas:
        activity.live(persona)
    events, truth = log.finish()
    personas = [jana, *population.personas]
    return SimulatedShop(
        events=events,
        truth=truth,
        personas=personas,
        scenario_counts=scenario_counts(personas),
        households={key: [m.key for m in h.members] for key, h in households.items()},
        seed=seed,
        now=now,
        e_receipts=e_receipts,
    )
