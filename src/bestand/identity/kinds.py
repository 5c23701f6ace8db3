"""Identifier kinds and their one-letter codes, as they appear in keys and resolved events."""

from __future__ import annotations

from enum import StrEnum


class IdKind(StrEnum):
    """Kinds of identifier that can name a person."""

    CUSTOMER = "c"
    EMAIL = "e"
    PHONE = "p"
    ANONYMOUS = "a"
    DEVICE = "d"
    LOYALTY = "l"
    ORDER = "o"


#: Names the API and the CLI use for each kind.
KIND_NAMES: dict[IdKind, str] = {
    IdKind.CUSTOMER: "customer_id",
    IdKind.EMAIL: "email",
    IdKind.PHONE: "phone",
    IdKind.ANONYMOUS: "anonymous_id",
    IdKind.DEVICE: "device_id",
    IdKind.LOYALTY: "loyalty_card",
    IdKind.ORDER: "order_id",
}
