"""A shop's order history as bestand's events: rows of an order export (CSV) or JSON lines.

Shopify's order export is read as it comes: one row per line item, the order's fields on its
first row, the rows of one order one after another under the same ``Name``. Another layout is
described by a small mapping file (JSON: bestand's field -> the file's column, and the time
format where it is not ISO 8601)::

    {"columns": {"order_id": "Order No", "event_time": "Date", "total": "Amount",
                 "currency": "Currency", "email": "E-Mail"},
     "time_format": "%d.%m.%Y %H:%M", "timezone": "+01:00"}

Each order gives an ``order_placed`` event, and an ``order_cancelled`` or ``order_refunded``
one where the export says it was cancelled or refunded. Event ids come from the order id
(``backfill-<order id>``, ``...-cancelled``, ``...-refunded``): the same file sent twice is
the same events, which the worker applies once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from bestand.events.decode import ADAPTERS, TYPE_TOPIC_KIND, summarize

#: bestand's order fields -> the columns of Shopify's order export.
SHOPIFY_COLUMNS: dict[str, str] = {
    "order_id": "Id",
    "order_name": "Name",
    "event_time": "Created at",
    "total": "Total",
    "currency": "Currency",
    "email": "Email",
    "phone": "Phone",
    "billing_phone": "Billing Phone",
    "name": "Billing Name",
    "street": "Billing Address1",
    "city": "Billing City",
    "postcode": "Billing Zip",
    "country": "Billing Country",
    "channel": "Source",
    "quantity": "Lineitem quantity",
    "cancelled_at": "Cancelled at",
    "refunded": "Refunded Amount",
    "customer_id": "Customer Id",
    "coupon": "Discount Code",
}
#: Shopify's order sources and the sales channel each is (anything else: web).
CHANNELS = {
    "web": "web",
    "pos": "store",
    "iphone": "app",
    "android": "app",
    "shopify_draft_order": "phone",
    "store": "store",
    "app": "app",
    "phone": "phone",
}


@dataclass(frozen=True)
class Layout:
    """Which column holds which field, and how times are written."""

    columns: dict[str, str] = field(default_factory=lambda: dict(SHOPIFY_COLUMNS))
    time_format: str | None = None  # None: ISO 8601, or Shopify's "2026-01-15 10:23:45 +0100"
    timezone: str = "+00:00"  # for times written without an offset

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Layout:
        """A layout from a mapping file's JSON; unknown fields are refused with their names."""
        columns = mapping.get("columns")
        if not isinstance(columns, Mapping) or not columns:
            raise ValueError("a mapping file needs 'columns': {bestand field: column}")
        unknown = sorted(set(columns) - set(SHOPIFY_COLUMNS))
        if unknown:
            raise ValueError(
                f"unknown fields {unknown}; known: {', '.join(sorted(SHOPIFY_COLUMNS))}"
            )
        for required in ("order_id", "total"):
            if required not in columns:
                raise ValueError(f"a mapping file must name the column of {required!r}")
        return cls(
            {str(k): str(v) for k, v in columns.items()},
            mapping.get("time_format"),
            str(mapping.get("timezone", "+00:00")),
        )


@dataclass(frozen=True)
class Malformed:
    """A row that makes no event: its line number and why."""

    line: int
    reason: str


@dataclass(frozen=True)
class Order:
    """One order's events, and the last line of the file it came from."""

    events: list[dict[str, Any]]
    last_line: int


def group_rows(rows: Iterable[tuple[int, Mapping[str, str]]], key: str) -> Iterator[
    tuple[int, list[Mapping[str, str]]]
]:  # fmt: skip
    """Consecutive rows with the same ``key`` column as one order (its line items)."""
    current: list[Mapping[str, str]] = []
    current_key: str | None = None
    last = 0
    for line, row in rows:
        value = (row.get(key) or "").strip()
        if current and value and value != current_key:
            yield last, current
            current = []
        if not current:
            current_key = value
        current.append(row)
        last = line
    if current:
        yield last, current


def order_events(rows: list[Mapping[str, str]], layout: Layout, line: int) -> Order | Malformed:
    """The events of one order (its rows: the first holds the order's fields)."""
    first = rows[0]
    columns = layout.columns

    def get(name: str, row: Mapping[str, str] = first) -> str | None:
        column = columns.get(name)
        value = row.get(column) if column else None
        return value.strip() if value and value.strip() else None

    order_id = get("order_id") or get("order_name")
    if order_id is None:
        return Malformed(line, f"no order id (column {columns.get('order_id')!r})")
    try:
        total = _money(get("total"), "total")
        at = _time(get("event_time"), layout)
        refunded = _money(get("refunded"), "refunded") if get("refunded") else None
        cancelled = _time(get("cancelled_at"), layout) if get("cancelled_at") else None
    except ValueError as exc:
        return Malformed(line, f"order {order_id}: {exc}")
    if total is None:
        return Malformed(line, f"order {order_id}: no total (column {columns.get('total')!r})")
    customer: dict[str, Any] = {}
    if customer_id := get("customer_id"):
        customer["customer_id"] = customer_id
    else:
        customer["guest"] = True
    if email := get("email"):
        customer["email"] = email
    if phone := get("phone") or get("billing_phone"):
        customer["phone"] = phone
    if name := get("name"):
        first_name, _, last_name = name.rpartition(" ")
        if first_name:
            customer["first_name"] = first_name
        customer["last_name"] = last_name
    address = {f: v for f in ("street", "city", "postcode") if (v := get(f))}
    country = get("country")
    if country and len(country) == 2 and country.isalpha():
        address["country"] = country.upper()
    if address:
        customer["address"] = address
    event_id = f"backfill-{order_id}"
    placed: dict[str, Any] = {
        "type": "order_placed",
        "event_id": event_id,
        "event_time": at,
        "source": "backfill",
        "order_id": order_id,
        "total": total,
        "currency": (get("currency") or "").upper(),
        "channel": CHANNELS.get((get("channel") or "web").lower(), "web"),
        "customer": customer,
    }
    if coupon := get("coupon"):
        placed["coupon"] = coupon
    quantities = [get("quantity", row) for row in rows]
    if any(quantities):
        try:
            placed["items"] = sum(int(q) for q in quantities if q)
        except ValueError:
            return Malformed(line, f"order {order_id}: a line item's quantity is not a number")
    events = [placed]
    if cancelled is not None:
        events.append(
            {
                "type": "order_cancelled",
                "event_id": f"{event_id}-cancelled",
                "event_time": cancelled,
                "source": "backfill",
                "order_id": order_id,
            }
        )
    elif refunded is not None and Decimal(refunded) > 0:
        refund: dict[str, Any] = {
            "type": "order_refunded",
            "event_id": f"{event_id}-refunded",
            "event_time": at,
            "source": "backfill",
            "order_id": order_id,
        }
        if Decimal(refunded) < Decimal(total):
            refund |= {"amount": refunded, "currency": placed["currency"]}
        events.append(refund)
    for event in events:
        if (why := invalid(event)) is not None:
            return Malformed(line, f"order {order_id}: {why}")
    return Order(events, line)


def invalid(event: Mapping[str, Any]) -> str | None:
    """Why an event breaks its contract, None when it is valid."""
    kind = TYPE_TOPIC_KIND.get(str(event.get("type")))
    if kind is None:
        return f"unknown event type {event.get('type')!r}"
    try:
        ADAPTERS[kind].validate_python(event)
    except ValidationError as exc:
        return summarize(exc)[1]
    return None


def _money(value: str | None, what: str) -> str | None:
    """A decimal as exports write it: "59.90", "59,90", "1,234.50" or "1.234,50"."""
    if value is None:
        return None
    text = value.replace(" ", "")
    if "," in text and "." in text:  # the later one is the decimal separator
        thousands = "," if text.rindex(",") < text.rindex(".") else "."
        text = text.replace(thousands, "")
    try:
        amount = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"{what} is not a number: {value[:32]!r}") from None
    return str(amount.quantize(Decimal("0.01")))


def _time(value: str | None, layout: Layout) -> str:
    if value is None:
        raise ValueError("no order time")
    try:
        if layout.time_format:
            parsed = datetime.strptime(value, layout.time_format)
        else:
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                parsed = datetime.strptime(value, "%Y-%m-%d %H:%M:%S %z")  # Shopify's export
    except ValueError:
        raise ValueError(f"not a time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = datetime.fromisoformat(f"{parsed.isoformat()}{layout.timezone}")
    return parsed.isoformat()
