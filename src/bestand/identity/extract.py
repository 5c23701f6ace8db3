"""Read identifiers and non-personal facts out of an input event.

Person state gets only what this module extracts as facts, plus keyed identifiers, so no raw
e-mail, phone, name or address travels past identity resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any, get_args

from bestand.events import (
    AddToCart,
    ConsentChanged,
    ContactRecorded,
    EmailEvent,
    ErasureRequested,
    IdentifierSet,
    Identify,
    InputEvent,
    OrderCancelled,
    OrderFacts,
    OrderPlaced,
    OrderRefunded,
    OrderReturned,
    PageView,
    ProductView,
    ResolvedEvent,
)
from bestand.events.resolved import EventKind
from bestand.identity.address import address_fingerprints
from bestand.identity.kinds import STRENGTH, IdKind
from bestand.identity.names import name_key

RawId = tuple[IdKind, str, bool]

_RANK = {kind: rank for rank, kind in enumerate(STRENGTH)}


def _by_strength(raw: RawId) -> int:
    return _RANK[raw[0]]


#: Pure foldings that repeat (a customer's address and name on every order) are kept.
_CACHED = 65536
_name_key = lru_cache(maxsize=_CACHED)(name_key)


@lru_cache(maxsize=_CACHED)
def _fingerprints(
    first_name: str | None,
    last_name: str | None,
    street: str | None,
    house_number: str | None,
    postcode: str | None,
    country: str | None,
    default_country: str,
) -> tuple[str | None, str | None]:
    """Full-name and household fingerprints of an address (see ``address_fingerprints``)."""
    prints = address_fingerprints(
        first_name=first_name,
        last_name=last_name,
        street=street,
        house_number=house_number,
        postcode=postcode,
        city=None,
        country=country,
        default_country=default_country,
    )
    return prints.full_name, prints.household


def _from_set(ids: IdentifierSet) -> list[RawId]:
    out: list[RawId] = []
    if ids.customer_id:
        out.append((IdKind.CUSTOMER, ids.customer_id, False))
    if ids.email:
        out.append((IdKind.EMAIL, ids.email, False))
    if ids.email_sha256:
        out.append((IdKind.EMAIL, ids.email_sha256, True))
    if ids.phone:
        out.append((IdKind.PHONE, ids.phone, False))
    if ids.phone_sha256:
        out.append((IdKind.PHONE, ids.phone_sha256, True))
    if ids.loyalty_card:
        out.append((IdKind.LOYALTY, ids.loyalty_card, False))
    if ids.device_id:
        out.append((IdKind.DEVICE, ids.device_id, False))
    if ids.anonymous_id:
        out.append((IdKind.ANONYMOUS, ids.anonymous_id, False))
    return out


def _order_identifiers(event: OrderPlaced, default_country: str) -> list[RawId]:
    out: list[RawId] = []
    customer = event.customer
    # A guest's customer number is a throw-away: it does not name the person.
    if customer.customer_id and not customer.guest:
        out.append((IdKind.CUSTOMER, customer.customer_id, False))
    if customer.email:
        out.append((IdKind.EMAIL, customer.email, False))
    if customer.email_sha256:
        out.append((IdKind.EMAIL, customer.email_sha256, True))
    if customer.phone:
        out.append((IdKind.PHONE, customer.phone, False))
    if customer.phone_sha256:
        out.append((IdKind.PHONE, customer.phone_sha256, True))
    if customer.loyalty_card:
        out.append((IdKind.LOYALTY, customer.loyalty_card, False))
    if customer.address is not None:
        address = customer.address
        full_name, household = _fingerprints(
            customer.first_name,
            customer.last_name,
            address.street,
            address.house_number,
            address.postcode,
            address.country,
            default_country,
        )
        if full_name:
            out.append((IdKind.ADDRESS_NAME, full_name, False))
        if household:
            out.append((IdKind.HOUSEHOLD, household, False))
    name = _name_key(customer.first_name, customer.last_name)
    if name:
        out.append((IdKind.NAME, name, False))
    if event.payment_fingerprint:
        out.append((IdKind.PAYMENT, event.payment_fingerprint, False))
    if event.device_id:
        out.append((IdKind.DEVICE, event.device_id, False))
    if event.anonymous_id:
        out.append((IdKind.ANONYMOUS, event.anonymous_id, False))
    out.append((IdKind.ORDER, event.order_id, False))
    return out


def raw_identifiers(event: InputEvent, default_country: str = "DE") -> list[RawId]:
    """Every identifier an event names, strongest first, as ``(kind, value, is_sha256)``.

    Postal addresses become fingerprints here (address + full name, address + surname);
    ``default_country`` completes an address given without a country.
    """
    out: list[RawId] = []
    match event:
        case PageView() | ProductView() | AddToCart():
            if event.customer_id:
                out.append((IdKind.CUSTOMER, event.customer_id, False))
            if event.device_id:
                out.append((IdKind.DEVICE, event.device_id, False))
            out.append((IdKind.ANONYMOUS, event.anonymous_id, False))
        case OrderPlaced():
            out.extend(_order_identifiers(event, default_country))
        case OrderCancelled() | OrderReturned() | OrderRefunded():
            out.append((IdKind.ORDER, event.order_id, False))
        case EmailEvent():
            out.append((IdKind.EMAIL, event.email, False))
        case Identify() | ConsentChanged() | ErasureRequested() | ContactRecorded():
            out.extend(_from_set(event.identifiers))
    out.sort(key=_by_strength)
    return out


def compiled_decoder(default_country: str = "DE") -> Any | None:
    """The compiled decoder (``bestand_native.Decoder``): for the messages it vouches for,
    what :func:`~bestand.events.decode.decode_timed`, :func:`raw_identifiers` and
    :func:`resolved_event` make of them together, without a pydantic model; None without
    the compiled core. Addresses and names are folded here, in Python, for it."""
    try:
        from bestand_native import Decoder
    except ImportError:  # pragma: no cover - without the compiled core
        return None
    from pydantic_core import TzInfo

    from bestand.events.common import Attribution
    from bestand.events.customer import ConsentPurpose, ContactRecorded
    from bestand.events.decode import EARLIEST_EVENT_TIME, TYPE_TOPIC_KIND
    from bestand.events.email import EmailEvent
    from bestand.events.orders import SalesChannel

    def values(annotation: Any) -> list[str]:
        """The strings of a ``Literal`` (under ``| None`` too)."""
        args = get_args(annotation)
        return [a for a in args if isinstance(a, str)] or [v for a in args for v in values(a)]

    literals = {
        "click_types": [t for t, kind in TYPE_TOPIC_KIND.items() if kind == "clickstream"],
        "email_types": values(EmailEvent.model_fields["type"].annotation),
        "channels": values(SalesChannel),
        "contact_channels": values(ContactRecorded.model_fields["channel"].annotation),
        "purposes": values(ConsentPurpose),
        "bounce_types": values(EmailEvent.model_fields["bounce_type"].annotation),
    }

    return Decoder(
        ResolvedEvent,
        OrderFacts,
        Attribution,
        TzInfo,
        _fingerprints,
        _name_key,
        default_country,
        {kind.value: kind for kind in IdKind},
        EARLIEST_EVENT_TIME.timestamp(),
        literals,
    )


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def resolved_event(
    event: InputEvent,
    *,
    topic: str,
    person_id: str,
    absorbed: Sequence[str],
    identifiers: Sequence[str],
    at: int | None = None,
) -> ResolvedEvent:
    """Build the event person state receives: person id, keyed ids, non-personal facts."""
    kind: EventKind
    extra: dict[str, Any] = {}
    match event:
        case PageView() | ProductView() | AddToCart():
            kind = "click"
            if event.attribution is not None:
                extra["campaign"] = event.attribution.campaign or event.attribution.utm_campaign
            if isinstance(event, ProductView | AddToCart):
                extra["product_id"] = event.product_id
            if isinstance(event, ProductView) and event.category:
                extra["category"] = event.category
        case OrderPlaced():
            kind = "order"
            extra["order"] = OrderFacts(
                order_id=event.order_id,
                status="placed",
                total_cents=_cents(event.total),
                currency=event.currency,
                channel=event.channel,
                guest=event.customer.guest,
                attribution=event.attribution,
                coupon=event.coupon,
            )
        case OrderCancelled():
            kind = "order"
            extra["order"] = OrderFacts(order_id=event.order_id, status="cancelled")
        case OrderReturned() | OrderRefunded():
            kind = "order"
            extra["order"] = OrderFacts(
                order_id=event.order_id,
                status="returned" if isinstance(event, OrderReturned) else "refunded",
                returned_cents=None if event.amount is None else _cents(event.amount),
                currency=event.currency,
            )
        case EmailEvent():
            kind = "email"
            extra["email_type"] = event.type
            extra["campaign"] = event.campaign
        case Identify():
            kind = "identify"
        case ConsentChanged():
            kind = "consent"
            extra["consent"] = dict(event.consent)
        case ErasureRequested():
            kind = "erasure"
        case ContactRecorded():
            kind = "contact"
            extra["contact_channel"] = event.channel
    return ResolvedEvent(
        event_id=event.event_id,
        event_time=event.event_time,
        at=int(event.event_time.timestamp()) if at is None else at,
        kind=kind,
        type=event.type,
        topic=topic,
        person_id=person_id,
        absorbed=list(absorbed),
        identifiers=list(identifiers),
        **extra,
    )
