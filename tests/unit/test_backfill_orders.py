"""Order exports as bestand's events (``bestand.ingest.orders``): Shopify's CSV export as it
comes (one row per line item), another layout through a mapping, and JSON lines."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from bestand.ingest.backfill import read_orders
from bestand.ingest.orders import SHOPIFY_COLUMNS, Layout, Malformed, Order, order_events

HEADER = ["Name", "Email", "Financial Status", "Currency", "Subtotal", "Total", "Created at",
          "Lineitem quantity", "Lineitem name", "Billing Name", "Billing Address1",
          "Billing City", "Billing Zip", "Billing Country", "Billing Phone", "Cancelled at",
          "Refunded Amount", "Id", "Source", "Phone", "Discount Code"]  # fmt: skip


def export(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, HEADER)
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


ROWS = [
    {"Name": "#1001", "Email": "anna@example.com", "Financial Status": "paid", "Currency": "EUR",
     "Total": "59.90", "Created at": "2025-03-01 10:15:00 +0100", "Lineitem quantity": "2",
     "Lineitem name": "Socks", "Billing Name": "Anna Maria Schmidt",
     "Billing Address1": "Hauptstr. 5", "Billing City": "Berlin", "Billing Zip": "10115",
     "Billing Country": "DE", "Billing Phone": "+49 30 1234567", "Id": "5001",
     "Source": "web", "Discount Code": "WELCOME10"},
    {"Name": "#1001", "Lineitem quantity": "1", "Lineitem name": "Shoes"},
    {"Name": "#1002", "Email": "ben@example.com", "Currency": "EUR", "Total": "20.00",
     "Created at": "2025-03-02 11:00:00 +0100", "Lineitem quantity": "1", "Id": "5002",
     "Source": "pos", "Cancelled at": "2025-03-03 09:00:00 +0100"},
    {"Name": "#1003", "Email": "cleo@example.com", "Currency": "EUR", "Total": "100.00",
     "Created at": "2025-03-04 12:00:00 +0100", "Lineitem quantity": "1", "Id": "5003",
     "Refunded Amount": "25.50"},
    {"Name": "#1004", "Email": "dan@example.com", "Currency": "EUR", "Total": "lots",
     "Created at": "2025-03-05 12:00:00 +0100", "Id": "5004"},
    {"Name": "#1005", "Email": "eve@example.com", "Currency": "EUR", "Total": "10.00",
     "Created at": "yesterday", "Id": "5005"},
    {"Name": "#1006", "Email": "fay@example.com", "Currency": "EUR", "Total": "1.234,50",
     "Created at": "2025-03-06T08:00:00Z", "Id": "5006", "Refunded Amount": "1234.50"},
]  # fmt: skip


def read(text: str, layout: Layout | None = None, fmt: str = "csv") -> list[Order | Malformed]:
    return list(read_orders(iter(io.StringIO(text)), layout or Layout(), fmt))


def test_a_shopify_export_gives_an_order_per_order_not_per_line_item() -> None:
    found = read(export(ROWS))
    orders = [item for item in found if isinstance(item, Order)]
    assert [o.last_line for o in orders] == [3, 4, 5, 8]
    placed = orders[0].events
    assert placed == [{
        "type": "order_placed", "event_id": "backfill-5001",
        "event_time": "2025-03-01T10:15:00+01:00", "source": "backfill", "order_id": "5001",
        "total": "59.90", "currency": "EUR", "channel": "web",
        "customer": {"guest": True, "email": "anna@example.com", "phone": "+49 30 1234567",
                     "first_name": "Anna Maria", "last_name": "Schmidt",
                     "address": {"street": "Hauptstr. 5", "city": "Berlin", "postcode": "10115",
                                 "country": "DE"}},
        "coupon": "WELCOME10",
        "items": 3,
    }]  # fmt: skip
    cancelled = orders[1].events
    assert [e["type"] for e in cancelled] == ["order_placed", "order_cancelled"]
    assert cancelled[0]["channel"] == "store"
    assert cancelled[1]["event_id"] == "backfill-5002-cancelled"
    refunded = orders[2].events[1]
    assert (refunded["type"], refunded["amount"], refunded["currency"]) == (
        "order_refunded", "25.50", "EUR"
    )  # fmt: skip
    whole = orders[3].events
    assert whole[0]["total"] == "1234.50"
    assert "amount" not in whole[1]  # refunded in full: the whole order
    malformed = [item for item in found if isinstance(item, Malformed)]
    assert [(m.line, m.reason) for m in malformed] == [
        (6, "order 5004: total is not a number: 'lots'"),
        (7, "order 5005: not a time: 'yesterday'"),
    ]


def test_the_same_file_gives_the_same_event_ids() -> None:
    first, again = read(export(ROWS)), read(export(ROWS))
    assert first == again


def test_another_layout_through_a_mapping_and_json_lines() -> None:
    layout = Layout.from_mapping({
        "columns": {"order_id": "Bestellnummer", "event_time": "Datum", "total": "Betrag",
                    "currency": "Währung", "email": "E-Mail", "customer_id": "Kundennummer"},
        "time_format": "%d.%m.%Y %H:%M", "timezone": "+01:00",
    })  # fmt: skip
    text = "Bestellnummer;Datum;Betrag;Währung;E-Mail;Kundennummer\n"
    text += "A-1;01.02.2025 09:30;19,99;EUR;x@example.com;K-77\n"
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    order = order_events([rows[0]], layout, 2)
    assert isinstance(order, Order)
    event = order.events[0]
    assert (event["event_time"], event["total"], event["customer"]["customer_id"]) == (
        "2025-02-01T09:30:00+01:00", "19.99", "K-77"
    )  # fmt: skip
    lines = [
        '{"Id": "9", "Total": 12.5, "Currency": "EUR", "Created at": "2025-01-01T00:00:00Z",'
        ' "Email": "j@example.com"}',
        '{"type": "order_placed", "event_id": "own-1", "event_time": "2025-01-02T00:00:00Z",'
        ' "order_id": "o-1", "total": "5.00", "currency": "EUR", "channel": "web",'
        ' "customer": {"guest": true, "email": "k@example.com"}}',
        "not json",
        '{"type": "order_placed", "event_id": "own-2"}',
    ]
    found = read("\n".join(lines), fmt="jsonl")
    assert isinstance(found[0], Order)
    assert found[0].events[0]["total"] == "12.50"
    assert isinstance(found[1], Order)
    assert found[1].events[0]["event_id"] == "own-1"
    assert isinstance(found[2], Malformed)
    assert found[2].line == 3
    assert isinstance(found[3], Malformed)
    assert "order_id" in found[3].reason


@pytest.mark.parametrize(
    ("mapping", "says"),
    [({}, "columns"), ({"columns": {"order_id": "A"}}, "'total'"),
     ({"columns": {"order_id": "A", "total": "B", "colour": "C"}}, "colour")],
)  # fmt: skip
def test_a_broken_mapping_says_what_is_wrong(mapping: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Layout.from_mapping(mapping)
    assert "order_id" in SHOPIFY_COLUMNS
