"""Orders topic: orders placed, cancelled, returned and refunded, from every sales channel."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from bestand.events.common import (
    Attribution,
    Contract,
    Currency,
    EventBase,
    Money,
    RawIdentifier,
    Sha256,
    ShortText,
)

SalesChannel = Literal["web", "app", "store", "phone"]


class Address(Contract):
    """A postal address as the shop captured it."""

    street: ShortText | None = None
    house_number: ShortText | None = None
    postcode: ShortText | None = None
    city: ShortText | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None


class OrderCustomer(Contract):
    """Who ordered: a customer id, or a guest checkout with whatever contact data was given."""

    customer_id: RawIdentifier | None = None
    guest: bool = False
    email: RawIdentifier | None = None
    email_sha256: Sha256 | None = Field(
        None, description="SHA-256 of the normalized e-mail, hex or base64."
    )
    phone: RawIdentifier | None = None
    phone_sha256: Sha256 | None = Field(
        None, description="SHA-256 of the phone number in E.164 (+4915112345678), hex or base64."
    )
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    address: Address | None = None
    loyalty_card: RawIdentifier | None = None

    @model_validator(mode="after")
    def _customer_or_guest(self) -> OrderCustomer:
        if not self.guest and not self.customer_id:
            raise ValueError("a customer needs a customer_id unless guest is true")
        return self


class OrderPlaced(EventBase):
    """An order was placed; it counts once per order id however often it is delivered."""

    type: Literal["order_placed"]
    order_id: ShortText
    total: Money
    currency: Currency
    channel: SalesChannel
    customer: OrderCustomer
    anonymous_id: RawIdentifier | None = Field(None, description="Cookie of the checkout session.")
    device_id: RawIdentifier | None = None
    payment_fingerprint: RawIdentifier | None = Field(
        None, description="Token the payment provider gives for the card or account used."
    )
    attribution: Attribution | None = None
    items: int | None = Field(None, ge=0, le=100000, description="Number of items.")
    coupon: ShortText | None = Field(
        None,
        description="Discount or voucher code redeemed with the order (the first, if several).",
    )


class OrderCancelled(EventBase):
    """An order was cancelled before fulfilment: it no longer makes an existing customer."""

    type: Literal["order_cancelled"]
    order_id: ShortText
    reason: ShortText | None = None


class OrderReturned(EventBase):
    """Goods of an order came back; ``amount`` is the refunded value (the whole order if absent)."""

    type: Literal["order_returned"]
    order_id: ShortText
    amount: Money | None = None
    currency: Currency | None = None


class OrderRefunded(EventBase):
    """Money went back without goods (goodwill, price adjustment, chargeback).

    ``amount`` is the refunded value, the whole order if absent. Like a return it lowers net
    revenue; an order refunded or returned in full no longer counts as kept.
    """

    type: Literal["order_refunded"]
    order_id: ShortText
    amount: Money | None = None
    currency: Currency | None = None
    reason: ShortText | None = None


OrderEvent = Annotated[
    OrderPlaced | OrderCancelled | OrderReturned | OrderRefunded, Field(discriminator="type")
]
