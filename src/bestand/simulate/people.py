"""The people of the simulated shop: personas, their homes and households.

A :class:`Persona` is one real person with everything that is true about them (name, home,
real e-mail and phone, cards, devices). What the shop gets to see of it, and in which
spelling, is decided by :mod:`bestand.simulate.activity`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PostalAddress:
    """A home address in its correct spelling."""

    street: str
    house_number: str
    postcode: str
    city: str
    country: str

    def as_event(self) -> dict[str, Any]:
        """The ``address`` block of an order, as the contract names its fields."""
        return {
            "street": self.street,
            "house_number": self.house_number,
            "postcode": self.postcode,
            "city": self.city,
            "country": self.country,
        }


@dataclass
class Persona:
    """One real person of the simulated shop: the truth every identifier is checked against."""

    key: str
    first: str
    last: str
    email: str
    phone: str
    customer_id: str | None
    cookies: list[str] = field(default_factory=list)
    kind: str = "browser"
    household: str = ""
    address: PostalAddress | None = None
    loyalty_card: str | None = None
    payment_fingerprints: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    extra_emails: list[str] = field(default_factory=list)
    traits: list[str] = field(default_factory=list)

    @property
    def country(self) -> str:
        """Country of the home address (DE when unknown)."""
        return self.address.country if self.address else "DE"

    def mark(self, trait: str) -> None:
        """Record that this person's events show ``trait`` (once, in first-seen order)."""
        if trait not in self.traits:
            self.traits.append(trait)


@dataclass
class Household:
    """People under one roof: one address, one surname, maybe a shared laptop, card or e-mail."""

    key: str
    members: list[Persona]
    shared_cookie: str | None = None
    shared_card: str | None = None
    shared_email: str | None = None
    #: Members who order with ``shared_email`` instead of their own address.
    email_sharers: list[str] = field(default_factory=list)
