"""Clickstream topic: what visitors do on web and app."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from bestand.events.common import Attribution, EventBase, Money, RawIdentifier, ShortText


class ClickBase(EventBase):
    """A visitor action: always an anonymous id, a customer id once logged in."""

    anonymous_id: RawIdentifier = Field(description="Cookie / web visitor id.")
    customer_id: RawIdentifier | None = Field(
        None, description="Set when the visitor is logged in."
    )
    device_id: RawIdentifier | None = None
    url: Annotated[str, Field(max_length=2048)] | None = None
    referrer: Annotated[str, Field(max_length=2048)] | None = None
    attribution: Attribution | None = None


class PageView(ClickBase):
    """A page was shown."""

    type: Literal["page_view"]


class ProductView(ClickBase):
    """A product detail page was shown."""

    type: Literal["product_view"]
    product_id: ShortText
    category: ShortText | None = None


class AddToCart(ClickBase):
    """A product was put into the cart."""

    type: Literal["add_to_cart"]
    product_id: ShortText
    quantity: int = Field(1, ge=1, le=10000)
    price: Money | None = None


ClickstreamEvent = Annotated[PageView | ProductView | AddToCart, Field(discriminator="type")]
