"""Event contracts: pydantic models of every topic bestand reads or writes."""

from __future__ import annotations

from bestand.events.clickstream import AddToCart, ClickstreamEvent, PageView, ProductView
from bestand.events.common import Attribution, IdentifierSet
from bestand.events.customer import (
    ConsentChanged,
    ContactRecorded,
    CustomerEvent,
    ErasureRequested,
    Identify,
)
from bestand.events.deadletter import DeadLetter
from bestand.events.decode import TOPIC_KINDS, InputEvent, TopicKind, decode_event
from bestand.events.email import EmailEvent, EmailTopicEvent
from bestand.events.errors import InvalidEvent
from bestand.events.orders import (
    Address,
    OrderCancelled,
    OrderCustomer,
    OrderEvent,
    OrderPlaced,
    OrderRefunded,
    OrderReturned,
)
from bestand.events.resolved import OrderFacts, ResolvedEvent

__all__ = [
    "TOPIC_KINDS",
    "AddToCart",
    "Address",
    "Attribution",
    "ClickstreamEvent",
    "ConsentChanged",
    "ContactRecorded",
    "CustomerEvent",
    "DeadLetter",
    "EmailEvent",
    "EmailTopicEvent",
    "ErasureRequested",
    "IdentifierSet",
    "Identify",
    "InputEvent",
    "InvalidEvent",
    "OrderCancelled",
    "OrderCustomer",
    "OrderEvent",
    "OrderFacts",
    "OrderPlaced",
    "OrderRefunded",
    "OrderReturned",
    "PageView",
    "ProductView",
    "ResolvedEvent",
    "TopicKind",
    "decode_event",
]
