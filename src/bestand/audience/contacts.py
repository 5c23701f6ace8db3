"""Reading the shop's contact list: CSV with ``email``/``phone`` columns, or JSON lines.

A JSON line is either a record with ``email``/``phone`` keys or an input event (an order's
``customer`` block, an identify's ``identifiers``), so a shop can feed its order history.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson


@dataclass(frozen=True, slots=True)
class Contact:
    """One line of the contact list: raw e-mail and phone as the shop has them."""

    line: int
    email: str | None
    phone: str | None


class ContactListError(ValueError):
    """The contact list cannot be read (no e-mail or phone column, a broken line)."""


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _from_json(line: int, data: Any) -> Contact:
    if not isinstance(data, dict):
        raise ContactListError(f"line {line}: expected a JSON object")
    for block in ("customer", "identifiers"):
        if isinstance(data.get(block), dict):
            data = data[block]
            break
    return Contact(line, _text(data.get("email")), _text(data.get("phone")))


def read_contacts(stream: IO[str]) -> Iterator[Contact]:
    """Contacts from a CSV (header with ``email`` and/or ``phone``) or JSON lines."""
    first = stream.readline()
    if not first:
        return
    if first.lstrip().startswith("{"):
        lines = iter([first])
        yield from _json_lines(lines, stream)
        return
    header = [name.strip().lower() for name in next(csv.reader([first]))]
    if "email" not in header and "phone" not in header:
        raise ContactListError(
            f"the CSV header names no 'email' or 'phone' column (it has: {', '.join(header)})"
        )
    for number, row in enumerate(csv.reader(stream), start=2):
        record = dict(zip(header, row, strict=False))
        yield Contact(number, _text(record.get("email")), _text(record.get("phone")))


def _json_lines(head: Iterator[str], rest: IO[str]) -> Iterator[Contact]:
    number = 0
    for source in (head, rest):
        for raw in source:
            number += 1
            if not raw.strip():
                continue
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise ContactListError(f"line {number}: not JSON: {exc}") from None
            yield _from_json(number, data)
