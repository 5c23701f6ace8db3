"""What identity resolution hands to person state, inside a worker's batch.

A resolved event carries a person id, hashed identifiers and the facts the profile needs;
no raw e-mail, phone, name or address ever passes identity resolution.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from bestand.events.common import Attribution, Contract
from bestand.events.customer import ConsentPurpose
from bestand.events.email import EmailEventType
from bestand.events.orders import SalesChannel

OrderStatus = Literal["placed", "cancelled", "returned", "refunded"]
EventKind = Literal[
    "click", "order", "email", "identify", "consent", "erasure", "contact", "detach"
]


class OrderFacts(Contract):
    """What an order event says about the order, in integer cents."""

    order_id: str
    status: OrderStatus
    total_cents: int | None = None
    returned_cents: int | None = None
    currency: str | None = None
    channel: SalesChannel | None = None
    guest: bool | None = None
    attribution: Attribution | None = None


class ResolvedEvent(Contract):
    """An input event after identity resolution, keyed by ``person_id`` on its topic."""

    event_id: str
    event_time: AwareDatetime
    kind: EventKind
    type: str = Field(description="The input event's type, e.g. 'order_placed'.")
    topic: str = Field(description="The input topic the event came from.")
    person_id: str = Field(description="Opaque id of the person the event belongs to.")
    absorbed: list[str] = Field(
        default_factory=list, description="Persons this event merged into person_id."
    )
    identifiers: list[str] = Field(
        description="Keyed hashes of the event's identifiers, as 'type:hash'."
    )
    order: OrderFacts | None = None
    email_type: EmailEventType | None = None
    campaign: str | None = None
    consent: dict[ConsentPurpose, bool] | None = None
    contact_channel: str | None = None
    product_id: str | None = None
    category: str | None = Field(None, description="Product category of a product view.")
