"""The merge policy: which identifiers link persons, and the limits that keep junk out.

In the spirit of the identity rules Segment, RudderStack and mParticle document:

- ``strong`` identifiers (customer id, e-mail, phone, loyalty card, order id, address + full
  name) link persons;
- ``weak`` ones (payment fingerprint, cookie, device) attach an anonymous person to a known
  one, but join two persons that each have a strong identifier only when both gave the same
  name (a shared family laptop or a shared card does not make two customers one); a cookie
  or device id then moves to whoever signed in on it last (see the rules);
- ``never`` identifiers (address + surname: a household; the name) only describe a person.

``max_persons`` is how many persons one identifier may join: when an identifier keeps
connecting different persons (a shop's dummy e-mail, a family cookie) it stops linking at that
count and is flagged as junk. ``max_per_person`` caps identifiers of a kind per person: a merge
that would give one person two customer ids is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from bestand.identity.kinds import KIND_NAMES, KINDS_BY_NAME, IdKind

LinkMode = Literal["strong", "weak", "never"]


@dataclass(frozen=True, slots=True)
class KindPolicy:
    """How one kind of identifier may link persons."""

    link: LinkMode
    max_persons: int = 3
    max_per_person: int | None = None


#: Defaults, by kind. Every value can be overridden in settings (``BESTAND_IDENTITY_POLICY``).
DEFAULT_POLICY: dict[IdKind, KindPolicy] = {
    # One account per person: two registered customers are never merged by a shared e-mail.
    # A point-of-sale "walk-in customer" account used for everyone becomes junk at 3 persons.
    IdKind.CUSTOMER: KindPolicy("strong", max_persons=3, max_per_person=1),
    # A family or a shop's dummy address joins at most 3 persons, then it is junk.
    IdKind.EMAIL: KindPolicy("strong", max_persons=3, max_per_person=10),
    IdKind.PHONE: KindPolicy("strong", max_persons=3, max_per_person=5),
    IdKind.LOYALTY: KindPolicy("strong", max_persons=2, max_per_person=3),
    IdKind.ORDER: KindPolicy("strong", max_persons=2),
    # Same street, house number, postcode, first and last name: one person (rarely father
    # and son); the limit stops a care home or a pick-up point from joining everyone.
    IdKind.ADDRESS_NAME: KindPolicy("strong", max_persons=2, max_per_person=6),
    IdKind.PAYMENT: KindPolicy("weak", max_persons=3),
    # A family's laptop or tablet moves between its users (it answers for who signed in on
    # it last) and stops linking at 5 persons: a shop's kiosk, a library computer.
    IdKind.DEVICE: KindPolicy("weak", max_persons=5),
    IdKind.ANONYMOUS: KindPolicy("weak", max_persons=5),
    IdKind.HOUSEHOLD: KindPolicy("never"),
    # A name never links; two different names are evidence against a join (see the rules).
    IdKind.NAME: KindPolicy("never"),
}


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """The policy of every identifier kind."""

    kinds: Mapping[IdKind, KindPolicy]
    #: By kind letter, for the rules' hot path: the kinds that only describe, and the caps.
    describing: frozenset[str] = field(init=False, compare=False, repr=False)
    caps: Mapping[str, int | None] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        never = frozenset(k.value for k, p in self.kinds.items() if p.link == "never")
        object.__setattr__(self, "describing", never)
        caps = {k.value: p.max_per_person for k, p in self.kinds.items()}
        object.__setattr__(self, "caps", caps)

    def of(self, kind: IdKind) -> KindPolicy:
        """Policy of one kind."""
        return self.kinds[kind]

    @classmethod
    def default(cls) -> IdentityPolicy:
        """The documented defaults."""
        return cls(dict(DEFAULT_POLICY))

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Mapping[str, object]]) -> IdentityPolicy:
        """Defaults with some fields replaced, by kind name (``{"email": {"max_persons": 5}}``)."""
        kinds = dict(DEFAULT_POLICY)
        for name, fields in overrides.items():
            kind = KINDS_BY_NAME.get(name)
            if kind is None:
                known = ", ".join(sorted(KINDS_BY_NAME))
                raise ValueError(f"unknown identifier kind {name!r} in the policy; known: {known}")
            current = kinds[kind]
            unknown = set(fields) - {"link", "max_persons", "max_per_person"}
            if unknown:
                raise ValueError(f"unknown policy field(s) for {name}: {sorted(unknown)}")
            link = fields.get("link", current.link)
            if link not in ("strong", "weak", "never"):
                raise ValueError(f"{name}.link must be strong, weak or never, not {link!r}")
            max_persons = int(str(fields.get("max_persons", current.max_persons)))
            if max_persons < 1:
                raise ValueError(f"{name}.max_persons must be at least 1")
            per_person = fields.get("max_per_person", current.max_per_person)
            kinds[kind] = KindPolicy(
                link,
                max_persons,
                None if per_person is None else int(str(per_person)),
            )
        return cls(kinds)

    def describe(self) -> dict[str, dict[str, object]]:
        """The policy as plain data, by kind name (for docs and ``bestand explain``)."""
        return {
            KIND_NAMES[kind]: {
                "link": p.link,
                "max_persons": p.max_persons,
                "max_per_person": p.max_per_person,
            }
            for kind, p in self.kinds.items()
        }
