"""Who lives in the simulated world: kinds in their exact shares, households, namesakes.

Everything here is true about people before they ever touch the shop; what they do with it
follows in :mod:`bestand.simulate.activity`.
"""

from __future__ import annotations

import random

from bestand.simulate.ids import IdFactory
from bestand.simulate.names import (
    COMMON_NAMES,
    COUNTRY_SHARES,
    FIRST_NAMES_DE,
    FIRST_NAMES_GB,
    FIRST_NAMES_NL,
    LAST_NAMES_DE,
    LAST_NAMES_GB,
    LAST_NAMES_NL,
)
from bestand.simulate.people import Household, Persona, PostalAddress
from bestand.simulate.scenarios import GUEST_KINDS, SCENARIOS, TRAITS

RATE: dict[str, float] = {trait.name: trait.rate for trait in TRAITS}
_FIRST = {"DE": FIRST_NAMES_DE, "AT": FIRST_NAMES_DE, "NL": FIRST_NAMES_NL, "GB": FIRST_NAMES_GB}
_LAST = {"DE": LAST_NAMES_DE, "AT": LAST_NAMES_DE, "NL": LAST_NAMES_NL, "GB": LAST_NAMES_GB}
#: Shares of household sizes among multi-person households.
_HOUSEHOLD_SIZES = ((2, 0.55), (3, 0.28), (4, 0.17))


def exact_counts(total: int, shares: list[tuple[str, float]]) -> dict[str, int]:
    """Split ``total`` by ``shares`` with the largest-remainder method (counts add up)."""
    weight = sum(share for _, share in shares)
    raw = [(name, total * share / weight) for name, share in shares]
    counts = {name: int(value) for name, value in raw}
    rest = total - sum(counts.values())
    by_remainder = sorted(raw, key=lambda item: (-(item[1] - int(item[1])), item[0]))
    for name, _ in by_remainder[:rest]:
        counts[name] += 1
    return counts


def pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    """One name from ``(name, weight)`` pairs."""
    roll = rng.random() * sum(weight for _, weight in weighted)
    for name, weight in weighted:
        roll -= weight
        if roll < 0:
            return name
    return weighted[-1][0]


class Population:
    """Builds personas and households for ``persons`` people."""

    def __init__(self, rng: random.Random, ids: IdFactory) -> None:
        self.rng = rng
        self.ids = ids
        self.personas: list[Persona] = []
        self.households: list[Household] = []

    def build(self, persons: int) -> None:
        """Create ``persons`` personas in households, with exact kind shares."""
        rng = self.rng
        counts = exact_counts(persons, [(s.kind, s.share) for s in SCENARIOS])
        kinds = [kind for kind, count in counts.items() for _ in range(count)]
        rng.shuffle(kinds)
        in_households = round(RATE["household"] * persons)
        names = self._namesakes(persons, in_households)
        index = 0
        while index < persons:
            size = 1
            if index < in_households:
                size = min(int(pick(rng, _HOUSEHOLD_SIZES_STR)), persons - index)
            self._household(kinds[index : index + size], names.get(index))
            index += size
        self._shared_within_households()

    def _namesakes(self, persons: int, in_households: int) -> dict[int, tuple[str, str]]:
        """Common full names for small groups of people who live alone, each elsewhere."""
        singles = list(range(in_households + 4, persons))
        count = min(len(singles), round(RATE["namesake"] * persons))
        names: dict[int, tuple[str, str]] = {}
        group_left = 0
        name = COMMON_NAMES[0]
        for index in sorted(self.rng.sample(singles, count)):
            if group_left == 0:
                name, group_left = self.rng.choice(COMMON_NAMES), self.rng.randint(3, 6)
            names[index] = name
            group_left -= 1
        return names

    def _household(self, kinds: list[str], name: tuple[str, str] | None) -> None:
        rng, ids = self.rng, self.ids
        country = "DE" if name else pick(rng, COUNTRY_SHARES)
        address = ids.address(country)
        last = name[1] if name else rng.choice(_LAST[country])
        firsts = [name[0]] if name else rng.sample(_FIRST[country], len(kinds))
        key = f"hh-{len(self.households) + 1:06d}"
        members = [
            self._persona(kind, first, last, address, key)
            for kind, first in zip(kinds, firsts, strict=True)
        ]
        self.households.append(Household(key=key, members=members))
        if len(members) > 1:
            for member in members:
                member.mark("household")
        if name:
            members[0].mark("namesake")

    def _persona(
        self, kind: str, first: str, last: str, address: PostalAddress, household: str
    ) -> Persona:
        rng, ids = self.rng, self.ids
        registered = kind == "registered" or (kind == "new_customer" and rng.random() < 0.35)
        persona = Persona(
            key=f"person-{len(self.personas) + 1:06d}",
            first=first,
            last=last,
            email=ids.email(first, last, address.country),
            phone=ids.phone(address, mobile=rng.random() < 0.8 or address.country != "DE"),
            customer_id=ids.customer_id() if registered else None,
            kind=kind,
            household=household,
            address=address,
        )
        if address.country != "DE":
            persona.mark("foreign")
        card_holder = {"walk_in": RATE["loyalty_card"], "omnichannel_guest": RATE["loyalty_card"]}
        card_holder["registered"] = 0.25
        if rng.random() < card_holder.get(kind, 0.05):
            persona.loyalty_card = ids.loyalty_card()
        persona.payment_fingerprints = [ids.card() for _ in range(rng.choice((1, 1, 1, 2)))]
        if kind != "walk_in" and rng.random() < RATE["app_user"]:
            persona.devices.append(ids.device())
        persona.cookies.append(ids.cookie())
        self.personas.append(persona)
        return persona

    def _shared_within_households(self) -> None:
        """Family laptop, a card used by two, the family e-mail (accounts; rarely guests)."""
        rng, ids = self.rng, self.ids
        families = [h for h in self.households if len(h.members) > 1]
        for household in families:
            if rng.random() < RATE["household_shared_cookie"]:
                household.shared_cookie = ids.cookie()
            if rng.random() < RATE["household_shared_card"]:
                household.shared_card = rng.choice(household.members).payment_fingerprints[0]
        holders = [h for h in families if sum(m.customer_id is not None for m in h.members) > 1]
        for household in _sample(rng, holders, RATE["household_shared_email"]):
            self._share_email(household, [m for m in household.members if m.customer_id])
        guests = [
            h
            for h in families
            if h.shared_email is None and sum(_guest_buyer(m) for m in h.members) > 1
        ]
        for household in _sample(rng, guests, RATE["household_shared_email_guests"]):
            self._share_email(household, [m for m in household.members if _guest_buyer(m)])

    def _share_email(self, household: Household, sharers: list[Persona]) -> None:
        first = household.members[0]
        household.shared_email = self.ids.family_email(first.last, first.country)
        household.email_sharers = [m.key for m in sharers]
        for member in sharers:
            member.extra_emails.append(household.shared_email)


def _guest_buyer(persona: Persona) -> bool:
    """Orders online as a guest (the family e-mail is given at guest checkout)."""
    return persona.kind in GUEST_KINDS - {"walk_in"} or (
        persona.kind == "new_customer" and persona.customer_id is None
    )


def _sample(rng: random.Random, items: list[Household], rate: float) -> list[Household]:
    """``round(rate * len(items))`` of ``items``: exact shares, none in a tiny shop."""
    return rng.sample(items, min(len(items), round(rate * len(items))))


_HOUSEHOLD_SIZES_STR = tuple((str(size), share) for size, share in _HOUSEHOLD_SIZES)
