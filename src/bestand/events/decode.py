"""Turn bytes from an input topic into a validated event, or a clear reason why not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, get_args

from pydantic import TypeAdapter, ValidationError

from bestand.events.clickstream import AddToCart, ClickstreamEvent, PageView, ProductView
from bestand.events.customer import (
    ConsentChanged,
    ContactRecorded,
    CustomerEvent,
    ErasureRequested,
    Identify,
)
from bestand.events.email import EmailEvent, EmailTopicEvent
from bestand.events.errors import InvalidEvent
from bestand.events.orders import (
    OrderCancelled,
    OrderEvent,
    OrderPlaced,
    OrderRefunded,
    OrderReturned,
)

TopicKind = Literal["clickstream", "orders", "email", "customer"]
TOPIC_KINDS: tuple[TopicKind, ...] = ("clickstream", "orders", "email", "customer")

InputEvent = (
    PageView
    | ProductView
    | AddToCart
    | OrderPlaced
    | OrderCancelled
    | OrderReturned
    | OrderRefunded
    | EmailEvent
    | Identify
    | ConsentChanged
    | ErasureRequested
    | ContactRecorded
)

ADAPTERS: dict[TopicKind, TypeAdapter[InputEvent]] = {
    "clickstream": TypeAdapter(ClickstreamEvent),
    "orders": TypeAdapter(OrderEvent),
    "email": TypeAdapter(EmailTopicEvent),
    "customer": TypeAdapter(CustomerEvent),
}


_MODELS: dict[TopicKind, tuple[type[InputEvent], ...]] = {
    "clickstream": (PageView, ProductView, AddToCart),
    "orders": (OrderPlaced, OrderCancelled, OrderReturned, OrderRefunded),
    "email": (EmailEvent,),
    "customer": (Identify, ConsentChanged, ErasureRequested, ContactRecorded),
}

#: Which topic kind carries each event type, for producers that route by ``type``.
TYPE_TOPIC_KIND: dict[str, TopicKind] = {
    name: kind
    for kind, models in _MODELS.items()
    for model in models
    for name in get_args(model.model_fields["type"].annotation)
}


def summarize(exc: ValidationError) -> tuple[str, str]:
    """A validation error as a dead letter's reason and a one-line detail (first ten errors)."""
    errors = exc.errors(include_url=False, include_input=False)
    kinds = {err["type"] for err in errors}
    if kinds & {"json_invalid", "json_type"}:
        reason = "invalid_json"
    elif kinds & {"union_tag_invalid", "union_tag_not_found"}:
        reason = "unknown_type"
    else:
        reason = "schema"
    parts = []
    for err in errors[:10]:
        loc = ".".join(str(part) for part in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = f" (+{len(errors) - 10} more)" if len(errors) > 10 else ""
    return reason, "; ".join(parts) + more


#: Events from before this are taken for a broken clock or a placeholder date (1970-01-01).
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
_EARLIEST = EARLIEST_EVENT_TIME.timestamp()


def decode_event(
    kind: TopicKind,
    raw: bytes | None,
    *,
    max_bytes: int,
    now: float | None = None,
    max_future_seconds: float = 86_400,
) -> InputEvent:
    """Validate one message value of an input topic; raise :class:`InvalidEvent` with a reason.

    With ``now`` (epoch seconds), an event time before 2000 or more than
    ``max_future_seconds`` after ``now`` is refused as ``implausible_time``: such an event
    would make someone a customer since 1970, or for years to come."""
    return decode_timed(
        kind, raw, max_bytes=max_bytes, now=now, max_future_seconds=max_future_seconds
    )[0]


def decode_timed(
    kind: TopicKind,
    raw: bytes | None,
    *,
    max_bytes: int,
    now: float | None = None,
    max_future_seconds: float = 86_400,
) -> tuple[InputEvent, int]:
    """:func:`decode_event`, and the event time in epoch seconds (reading an aware time's
    epoch costs a microsecond, and the worker needs it for every event)."""
    if raw is None or not raw:
        raise InvalidEvent("empty", "message has no value")
    if len(raw) > max_bytes:
        raise InvalidEvent("too_large", f"{len(raw)} bytes exceeds the limit of {max_bytes}")
    try:
        event = ADAPTERS[kind].validate_json(raw)
    except ValidationError as exc:
        reason, detail = summarize(exc)
        raise InvalidEvent(reason, detail) from None
    at = event.event_time.timestamp()
    if now is not None and (at < _EARLIEST or at > now + max_future_seconds):
        raise InvalidEvent(
            "implausible_time",
            f"event_time {event.event_time.isoformat()} is before 2000 or more than "
            f"{max_future_seconds:.0f} s ahead of the clock",
        )
    return event, int(at)
