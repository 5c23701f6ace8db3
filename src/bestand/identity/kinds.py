"""Identifier kinds and their one-letter codes, as they appear in keys and resolved events."""

from __future__ import annotations

from enum import StrEnum


class IdKind(StrEnum):
    """Kinds of identifier that can name a person."""

    CUSTOMER = "c"
    EMAIL = "e"
    PHONE = "p"
    LOYALTY = "l"
    ORDER = "o"
    ADDRESS_NAME = "n"
    PAYMENT = "f"
    DEVICE = "d"
    ANONYMOUS = "a"
    HOUSEHOLD = "h"
    NAME = "m"


#: Names the API, the CLI and the settings use for each kind.
KIND_NAMES: dict[IdKind, str] = {
    IdKind.CUSTOMER: "customer_id",
    IdKind.EMAIL: "email",
    IdKind.PHONE: "phone",
    IdKind.LOYALTY: "loyalty_card",
    IdKind.ORDER: "order_id",
    IdKind.ADDRESS_NAME: "address_name",
    IdKind.PAYMENT: "payment",
    IdKind.DEVICE: "device_id",
    IdKind.ANONYMOUS: "anonymous_id",
    IdKind.HOUSEHOLD: "household",
    IdKind.NAME: "name",
}
KINDS_BY_NAME: dict[str, IdKind] = {name: kind for kind, name in KIND_NAMES.items()}

#: Strength order: the first identifier of an event in this order anchors it to a person.
STRENGTH: tuple[IdKind, ...] = tuple(IdKind)

#: Kinds that have lookup records: those a lookup can ask by, but for order ids. An address
#: with a name, a payment token, a household or a name links or describes a person but
#: answers no lookup: they get no record. An order id is answered through the identity graph
#: and the person's state: a person gains one with every order, and every changed answer
#: rewrites all of a person's records (order ids were half of those writes).
LOOKED_UP: frozenset[IdKind] = frozenset(
    {
        IdKind.CUSTOMER,
        IdKind.EMAIL,
        IdKind.PHONE,
        IdKind.LOYALTY,
        IdKind.DEVICE,
        IdKind.ANONYMOUS,
    }
)
_LOOKED_UP_LETTERS = frozenset(kind.value for kind in LOOKED_UP)


def looked_up(token: str) -> bool:
    """Whether a ``kind:hash`` token has a lookup record."""
    return token[0] in _LOOKED_UP_LETTERS


_BY_LETTER: dict[str, IdKind] = {kind.value: kind for kind in IdKind}


def kind_of(token: str) -> IdKind:
    """The kind of a ``kind:hash`` token."""
    try:
        return _BY_LETTER[token[0]]
    except (KeyError, IndexError):
        raise ValueError(f"{token!r} is not a kind:hash token") from None


#: Kind letters that move to the person identified on them instead of joining two known
#: persons: a browser's cookie and a device id (a payment card is not "who uses it now").
MOVABLE = frozenset({IdKind.ANONYMOUS.value, IdKind.DEVICE.value})
