"""What identity resolution hands to person state, inside a worker's batch.

A resolved event carries a person id, hashed identifiers and the facts the profile needs;
no raw e-mail, phone, name or address ever passes identity resolution. It is built by the
worker from an input event that was validated already and never leaves the process, so it is
plain data (a pydantic model per event costs more than the work it describes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bestand.events.common import Attribution

OrderStatus = Literal["placed", "cancelled", "returned", "refunded"]
EventKind = Literal[
    "click", "order", "email", "identify", "consent", "erasure", "contact", "detach", "release"
]


@dataclass(slots=True)  # built per event: frozen would double that
class OrderFacts:
    """What an order event says about the order, in integer cents."""

    order_id: str
    status: OrderStatus
    total_cents: int | None = None
    returned_cents: int | None = None
    currency: str | None = None
    channel: str | None = None
    guest: bool | None = None
    attribution: Attribution | None = None
    coupon: str | None = None


@dataclass(slots=True)  # built per event: frozen would double that
class ResolvedEvent:
    """An input event after identity resolution: its person and the facts person state needs.

    ``type`` is the input event's type (``order_placed``), ``topic`` the input topic it came
    from, ``absorbed`` the persons the event merged into ``person_id``, ``identifiers`` the
    keyed hashes (``kind:hash``) of its identifiers that belong to the person now.
    """

    event_id: str
    event_time: datetime
    at: int  # event_time in epoch seconds, computed once
    kind: EventKind
    type: str
    topic: str
    person_id: str
    identifiers: list[str]
    absorbed: list[str] = field(default_factory=list)
    order: OrderFacts | None = None
    email_type: str | None = None
    campaign: str | None = None
    consent: dict[str, bool] | None = None
    contact_channel: str | None = None
    product_id: str | None = None
    category: str | None = None  # product category of a product view
    #: Cookies and device ids this event took over from another person: their lookup records
    #: are this person's now, whatever its state held before.
    claimed: tuple[str, ...] = ()
    #: What the compiled decoder knows of the event apart from its person
    #: (``bestand_native.Facts``): the compiled fold takes it instead of these attributes.
    compiled: Any = field(default=None, compare=False, repr=False)

    def for_person(
        self, person_id: str, absorbed: Sequence[str], identifiers: Sequence[str]
    ) -> ResolvedEvent:
        """This event resolved to ``person_id``: a copy with its person, the persons it
        absorbed and its identifiers (the worker makes the rest when it decodes the event)."""
        return ResolvedEvent(
            self.event_id,
            self.event_time,
            self.at,
            self.kind,
            self.type,
            self.topic,
            person_id,
            list(identifiers),
            list(absorbed),
            self.order,
            self.email_type,
            self.campaign,
            self.consent,
            self.contact_channel,
            self.product_id,
            self.category,
            self.claimed,
            self.compiled,
        )

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ResolvedEvent:
        """Build one from plain data (an ISO time, an order as a mapping), as tests write it."""
        fields = dict(data)
        if isinstance(fields["event_time"], str):
            fields["event_time"] = datetime.fromisoformat(fields["event_time"])
        fields.setdefault("at", int(fields["event_time"].timestamp()))
        order = fields.get("order")
        if isinstance(order, Mapping):
            facts = dict(order)
            if isinstance(facts.get("attribution"), Mapping):
                facts["attribution"] = Attribution.model_validate(facts["attribution"])
            fields["order"] = OrderFacts(**facts)
        return cls(**fields)
