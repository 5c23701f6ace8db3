"""Fresh identifiers that are unique in the simulated world: cookies, cards, phones, e-mails.

Two different people never share an identifier unless a scenario says so (a household's
laptop, a dummy e-mail): uniqueness here is what keeps the ground truth honest.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable

from bestand.simulate.names import (
    CITIES_AT,
    CITIES_DE,
    CITIES_GB,
    CITIES_NL,
    GB_DISTRICTS,
    MAIL_DOMAINS,
    MOBILE_PREFIXES_DE,
    STREETS_DE,
    STREETS_GB,
    STREETS_NL,
    City,
)
from bestand.simulate.people import PostalAddress
from bestand.simulate.variants import GMAIL, ascii_fold

CITIES = {"DE": CITIES_DE, "AT": CITIES_AT, "NL": CITIES_NL, "GB": CITIES_GB}
STREETS = {"DE": STREETS_DE, "AT": STREETS_DE, "NL": STREETS_NL, "GB": STREETS_GB}
_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
#: Mobile prefixes abroad (E.164, with the country code) and how many digits follow them.
FOREIGN_MOBILE = {
    "AT": (("+43660", 7), ("+43664", 7), ("+43676", 7)),
    "NL": (("+3161", 7), ("+3162", 7), ("+3164", 7), ("+3165", 7)),
    "GB": (("+447400", 6), ("+447723", 6), ("+447812", 6), ("+447984", 6)),
}


def mailbox(email: str) -> str:
    """The real mailbox behind an address: case, spaces, Gmail dots and +tags do not matter."""
    local, _, domain = email.strip().lower().partition("@")
    if domain in GMAIL:
        local, domain = local.split("+", 1)[0].replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


class IdFactory:
    """Hands out identifiers that nobody else in the simulated world has."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._taken: set[str] = set()
        self._sequence: dict[str, int] = {}

    def reserve(self, namespace: str, value: str) -> None:
        """Mark ``value`` as taken (e.g. the featured persona's e-mail and phone)."""
        self._taken.add(f"{namespace}:{value}")

    def taken(self, namespace: str, value: str) -> bool:
        """Is ``value`` already someone's?"""
        return f"{namespace}:{value}" in self._taken

    def _unique(self, namespace: str, make: Callable[[], str]) -> str:
        while True:
            value = make()
            if not self.taken(namespace, value):
                self.reserve(namespace, value)
                return value

    def _next(self, namespace: str) -> int:
        self._sequence[namespace] = self._sequence.get(namespace, 0) + 1
        return self._sequence[namespace]

    def customer_id(self) -> str:
        """A shop account number."""
        return f"K{1_000_000 + self._next('customer')}"

    def guest_id(self) -> str:
        """A throw-away customer number some shops give every guest checkout."""
        return f"G{5_000_000 + self._next('guest')}"

    def order_id(self) -> str:
        """An order number."""
        return f"ord-{self._next('order'):07d}"

    def message_id(self) -> str:
        """The e-mail service provider's id of one sent message."""
        return f"msg-{self._next('message'):08d}"

    def cookie(self) -> str:
        """A first-party cookie of one browser or app install."""
        return self._unique("cookie", lambda: f"ck_{self.rng.getrandbits(64):016x}")

    def device(self) -> str:
        """A mobile advertising id (IDFA upper case, GAID lower case)."""
        upper = self.rng.random() < 0.5

        def make() -> str:
            value = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            return value.upper() if upper else value

        return self._unique("device", make)

    def card(self) -> str:
        """The payment provider's stable token for one card or account."""
        return self._unique("card", lambda: f"pm_{self.rng.getrandbits(64):016x}")

    def loyalty_card(self) -> str:
        """A 12-digit loyalty card number."""
        return self._unique("loyalty", lambda: f"7001{self.rng.randint(0, 99_999_999):08d}")

    def phone(self, address: PostalAddress, *, mobile: bool) -> str:
        """A phone number in E.164 that fits the person's country (and city for landlines)."""
        rng = self.rng
        if address.country == "DE" and mobile:
            prefix, digits = rng.choice(MOBILE_PREFIXES_DE)
            prefix = f"+49{prefix}"
        elif address.country == "DE":
            area = _city(address).area_code
            prefix, digits = f"+49{area}", 10 - len(area)
        else:
            prefix, digits = rng.choice(FOREIGN_MOBILE[address.country])
        low = 2 * 10 ** (digits - 1)
        return self._unique("phone", lambda: f"{prefix}{rng.randint(low, 10**digits - 1)}")

    def email(self, first: str, last: str, country: str) -> str:
        """A person's own address, built the way people build theirs, unique as a mailbox."""
        rng = self.rng
        f = ascii_fold(first).lower().replace(" ", "").replace("'", "")
        last_part = ascii_fold(last).lower().replace(" ", "").replace("'", "")
        domains = MAIL_DOMAINS.get(country, MAIL_DOMAINS["DE"])
        patterns = (
            f"{f}.{last_part}",
            f"{f}{last_part}",
            f"{f[0]}.{last_part}",
            f"{f}_{last_part}",
            f"{last_part}.{f}",
            f"{f}.{last_part}{rng.randint(60, 99)}",
        )
        local = rng.choice(patterns)
        domain = rng.choice(domains)
        for attempt in range(1000):
            candidate = f"{local}@{domain}" if attempt == 0 else f"{local}{attempt}@{domain}"
            if attempt > 3:
                candidate = f"{local}{rng.randint(1, 9999)}@{domain}"
            if not self.taken("email", mailbox(candidate)):
                self.reserve("email", mailbox(candidate))
                return candidate
        raise RuntimeError("no free e-mail address")  # pragma: no cover - 1000 draws

    def family_email(self, last: str, country: str) -> str:
        """A household's shared address (familie.weber@…, webers@…)."""
        name = ascii_fold(last).lower().replace(" ", "")
        domains = MAIL_DOMAINS.get(country, MAIL_DOMAINS["DE"])
        while True:
            local = self.rng.choice((f"familie.{name}", f"{name}s", f"fam.{name}", f"{name}.home"))
            candidate = f"{local}{self.rng.choice(('', str(self.rng.randint(1, 999))))}"
            candidate = f"{candidate}@{self.rng.choice(domains)}"
            if not self.taken("email", mailbox(candidate)):
                self.reserve("email", mailbox(candidate))
                return candidate

    def address(self, country: str) -> PostalAddress:
        """A home nobody else in the simulated world lives at."""
        rng = self.rng
        while True:
            city = rng.choice(CITIES[country])
            number = str(rng.randint(1, 150))
            if rng.random() < 0.12:
                number += rng.choice("abcd")
            street = rng.choice(STREETS[country])
            address = PostalAddress(street, number, _postcode(rng, city), city.name, country)
            key = f"{street}|{number}|{address.postcode}".lower()
            if not self.taken("address", key):
                self.reserve("address", key)
                return address


def _city(address: PostalAddress) -> City:
    return next(c for c in CITIES[address.country] if c.name == address.city)


def _postcode(rng: random.Random, city: City) -> str:
    match city.country:
        case "DE":
            return f"{rng.randint(city.postcode_low, city.postcode_high):05d}"
        case "AT":
            return f"{rng.randint(city.postcode_low, city.postcode_high) // 10 * 10:04d}"
        case "NL":
            letters = rng.choice(_LETTERS) + rng.choice(_LETTERS)
            return f"{rng.randint(city.postcode_low, city.postcode_high)} {letters}"
        case _:
            district = rng.choice(GB_DISTRICTS[city.name])
            inward = f"{rng.randint(1, 9)}{rng.choice(_LETTERS)}{rng.choice(_LETTERS)}"
            return f"{district} {inward}"
