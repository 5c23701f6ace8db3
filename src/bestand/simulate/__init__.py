"""A simulated shop: realistic event streams with the truth of who is who.

Visitors browse, register or check out as guests, come back with another spelling of their
e-mail or phone, buy in the store with a dummy e-mail, share a laptop or an e-mail with their
family, open newsletters, cancel and return. Every event is a plain dict that validates
against the input contracts; ``truth`` maps each event to its real person so identity
resolution can be checked against it. :data:`SCENARIOS` and :data:`TRAITS` say how often
each situation occurs.
"""

from __future__ import annotations

from bestand.simulate.files import read_shop, write_shop
from bestand.simulate.people import Household, Persona, PostalAddress
from bestand.simulate.scenarios import SCENARIOS, TRAITS, Scenario, Trait
from bestand.simulate.shop import SimulatedShop, simulate

__all__ = [
    "SCENARIOS",
    "TRAITS",
    "Household",
    "Persona",
    "PostalAddress",
    "Scenario",
    "SimulatedShop",
    "Trait",
    "read_shop",
    "simulate",
    "write_shop",
]
