"""A person state's stored form: packed bytes, about half of the same state as JSON.

Redis holds a state for every person, so its size is much of what bestand costs to run. The
packed form (``native/src/state.rs`` writes the same bytes) is::

    state   := 0x03 varint(version) varint(parts) part...      parts: a bit per part present
    parts   := ids (bit 0), orders (1), first seen (2), last seen (3), last e-mail engagement (4),
               e-mail counters (5), consent (6), contacts (7), channels (8), absorbed persons (9),
               interests (10), reclassifications (11); each in this order, only if present
    ids     := count, then each: a keyed identifier ``k:<16 characters>`` as its kind letter and
               the 12 bytes its base64url stands for; any other text as 0x00 and the text
    orders  := count, then each by id: text(id) varint(fields) field...: total (bit 0), currency
               (1, coded), channel (2, coded), placed at (3), cancelled (4, no payload), returns
               (5: count, then text(event) int(cents)), classification (6: 1 new, 2 existing, 0
               and a text), campaign (7), affiliate (8), coupon (9)
    maps    := count, then text(key) and the value, keys sorted; consent's value is a byte
               (granted) and int(at)
    channels := count, then each coded
    coded   := a byte: a value's place (from 1) in its table (:data:`CURRENCIES`,
               :data:`CHANNELS`), or 0 and the text
    int     := zigzag varint;  text := varint(length) UTF-8

A blob that starts with ``{`` is the JSON that earlier releases stored, and is still read; one
that starts with 0x01 the packed form of releases that kept an identifier's 16 bytes, read
with each identifier cut to its first 12 (the identifier this release keys the same value
to); one that starts with 0x02 the packed form with currencies and channels as text (an
order's took 8 bytes for them, 2 coded).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import orjson

#: The first byte of a packed state (JSON starts with ``{``).
PACKED = 3
#: The first byte of a packed state whose currencies and channels are text (earlier releases).
PACKED_TEXTS = 2
#: The first byte of a packed state whose identifiers hold 16 bytes (earlier releases).
PACKED_16 = 1
_TOKEN_LENGTH = 18  # "k:" and 16 base64url characters: 12 bytes
#: Currencies and channels a packed state keeps as their place here (a byte): the shops'
#: usual ones; any other is kept as text. Only ever appended to: a stored code must keep
#: meaning what it did.
CURRENCIES: tuple[str, ...] = ("EUR", "USD", "GBP", "CHF", "PLN", "SEK", "DKK", "NOK", "CZK")
CHANNELS: tuple[str, ...] = ("web", "app", "store", "phone", "email", "chat")
_CODES = {
    table: {value: i + 1 for i, value in enumerate(table)} for table in (CURRENCIES, CHANNELS)
}
_CLASSES = {"new": 1, "existing": 2}
_CLASS_NAMES = {1: "new", 2: "existing"}
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _int(out: bytearray, value: int) -> None:
    _varint(out, (value << 1) if value >= 0 else ((-value) << 1) - 1)


def _text(out: bytearray, value: str) -> None:
    data = value.encode()
    _varint(out, len(data))
    out += data


def _token(out: bytearray, token: str) -> None:
    if len(token) == _TOKEN_LENGTH and token[1] == ":" and "a" <= token[0] <= "z":
        tail = token[2:].encode()
        try:
            raw = base64.urlsafe_b64decode(tail + b"==")
        except ValueError:
            raw = b""
        if len(raw) == 12 and base64.urlsafe_b64encode(raw).rstrip(b"=") == tail:
            out.append(ord(token[0]))
            out += raw
            return
    out.append(0)
    _text(out, token)


def _counts(out: bytearray, values: dict[str, int]) -> None:
    _varint(out, len(values))
    for key in sorted(values):
        _text(out, key)
        _int(out, values[key])


def _texts(out: bytearray, values: Any) -> None:
    _varint(out, len(values))
    for value in sorted(values):
        _text(out, value)


def _coded(out: bytearray, value: str, table: tuple[str, ...]) -> None:
    code = _CODES[table].get(value, 0)
    out.append(code)
    if not code:
        _text(out, value)


def _bits(present: tuple[bool, ...]) -> int:
    """A bit per part or field that is present, the first the lowest."""
    return sum(1 << bit for bit, there in enumerate(present) if there)


def _order(out: bytearray, order: Any) -> None:
    present = (
        order.total_cents is not None,
        bool(order.currency),
        bool(order.channel),
        order.at is not None,
        order.cancelled,
        bool(order.returns),
        bool(order.cls),
        bool(order.campaign),
        bool(order.affiliate),
        bool(order.coupon),
    )
    _varint(out, _bits(present))
    if present[0]:
        _int(out, order.total_cents)
    if present[1]:
        _coded(out, order.currency, CURRENCIES)
    if present[2]:
        _coded(out, order.channel, CHANNELS)
    if present[3]:
        _int(out, order.at)
    if present[5]:
        _counts(out, order.returns)
    if present[6]:
        code = _CLASSES.get(order.cls, 0)
        out.append(code)
        if not code:
            _text(out, order.cls)
    for bit, value in ((7, order.campaign), (8, order.affiliate), (9, order.coupon)):
        if present[bit]:
            _text(out, value)


def pack(state: Any) -> bytes:
    """The packed bytes of a ``PersonState`` (empty parts left out)."""
    out = bytearray((PACKED,))
    _varint(out, state.version)
    times = (state.first_seen, state.last_seen, state.last_email_engagement)
    present = (
        bool(state.ids),
        bool(state.orders),
        times[0] is not None,
        times[1] is not None,
        times[2] is not None,
        bool(state.email),
        bool(state.consent),
        bool(state.contacts),
        bool(state.channels),
        bool(state.absorbed),
        bool(state.interests),
        bool(state.reclassified),
    )
    _varint(out, _bits(present))
    if present[0]:
        _varint(out, len(state.ids))
        for token in sorted(state.ids):
            _token(out, token)
    if present[1]:
        _varint(out, len(state.orders))
        for order_id in sorted(state.orders):
            _text(out, order_id)
            _order(out, state.orders[order_id])
    for bit, value in zip((2, 3, 4), times, strict=True):
        if present[bit]:
            _int(out, value)
    if present[5]:
        _counts(out, state.email)
    if present[6]:
        _varint(out, len(state.consent))
        for purpose in sorted(state.consent):
            granted, at = state.consent[purpose]
            _text(out, purpose)
            out.append(1 if granted else 0)
            _int(out, at)
    if present[7]:
        _counts(out, state.contacts)
    if present[8]:
        _varint(out, len(state.channels))
        for channel in sorted(state.channels):
            _coded(out, channel, CHANNELS)
    if present[9]:
        _texts(out, state.absorbed)
    if present[10]:
        _counts(out, state.interests)
    if present[11]:
        _varint(out, len(state.reclassified))
        for order_id, before, after, event_id, at, reason in state.reclassified:
            for value in (order_id, before, after, event_id):
                _text(out, value)
            _int(out, at)
            _text(out, reason)
    return bytes(out)


class _Reader:
    """Reads the parts of a packed state in order; a short or odd blob raises ValueError."""

    __slots__ = ("at", "coded", "data", "width")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 1
        self.width = 16 if data[0] == PACKED_16 else 12  # bytes of a keyed identifier
        self.coded = data[0] == PACKED  # currencies and channels as their tables' codes

    def coded_text(self, table: tuple[str, ...]) -> str:
        """A value kept as its place in ``table`` (or 0 and the text); text in earlier forms."""
        if not self.coded:
            return self.text()
        code = self.byte()
        if code > len(table):
            raise ValueError("a packed state has an unknown code")
        return table[code - 1] if code else self.text()

    def varint(self) -> int:
        data, at = self.data, self.at
        try:
            byte = data[at]
            if byte < 0x80:  # most numbers of a state: counts, lengths, small values
                self.at = at + 1
                return byte
            value, shift = byte & 0x7F, 7
            while True:
                at += 1
                byte = data[at]
                value |= (byte & 0x7F) << shift
                if byte < 0x80:
                    self.at = at + 1
                    return value
                shift += 7
        except IndexError:
            raise ValueError("a packed state ends early") from None

    def signed(self) -> int:
        value = self.varint()
        return -((value + 1) >> 1) if value & 1 else value >> 1

    def byte(self) -> int:
        try:
            byte = self.data[self.at]
        except IndexError:
            raise ValueError("a packed state ends early") from None
        self.at += 1
        return byte

    def text(self) -> str:
        length = self.varint()
        start = self.at
        end = start + length
        if end > len(self.data):
            raise ValueError("a packed state ends early")
        self.at = end
        return self.data[start:end].decode()

    def token(self) -> str:
        kind = self.byte()
        if kind == 0:
            return self.text()
        start = self.at
        end = start + self.width
        if end > len(self.data):
            raise ValueError("a packed state ends early")
        self.at = end
        encoded = binascii.b2a_base64(self.data[start : start + 12], newline=False)
        return chr(kind) + ":" + encoded.translate(_URLSAFE).decode()

    def many(self, item: Callable[[], Any]) -> list[Any]:
        return [item() for _ in range(self.varint())]

    def counts(self) -> dict[str, int]:
        return {self.text(): self.signed() for _ in range(self.varint())}


def _order_fields(reader: _Reader) -> dict[str, Any]:
    fields = reader.varint()
    order: dict[str, Any] = {}
    if fields & 1:
        order["total_cents"] = reader.signed()
    if fields & 2:
        order["currency"] = reader.coded_text(CURRENCIES)
    if fields & 4:
        order["channel"] = reader.coded_text(CHANNELS)
    if fields & 8:
        order["at"] = reader.signed()
    if fields & 16:
        order["cancelled"] = True
    if fields & 32:
        order["returns"] = reader.counts()
    if fields & 64:
        code = reader.byte()
        order["cls"] = _CLASS_NAMES[code] if code else reader.text()
    for bit, name in ((128, "campaign"), (256, "affiliate"), (512, "coupon")):
        if fields & bit:
            order[name] = reader.text()
    return order


def unpack(blob: bytes) -> dict[str, Any]:
    """The fields of a packed state as ``PersonState`` names them (absent parts left out);
    orders as field mappings of ``OrderRecord``."""
    if not blob or blob[0] not in (PACKED, PACKED_TEXTS, PACKED_16):
        raise ValueError("not a packed state")
    reader = _Reader(blob)
    out: dict[str, Any] = {"version": reader.varint()}
    parts = reader.varint()
    if parts & 1:
        out["ids"] = frozenset(reader.many(reader.token))
    if parts & 2:
        out["orders"] = {reader.text(): _order_fields(reader) for _ in range(reader.varint())}
    for bit, name in ((4, "first_seen"), (8, "last_seen"), (16, "last_email_engagement")):
        if parts & bit:
            out[name] = reader.signed()
    if parts & 32:
        out["email"] = reader.counts()
    if parts & 64:
        out["consent"] = {
            reader.text(): (bool(reader.byte()), reader.signed()) for _ in range(reader.varint())
        }
    if parts & 128:
        out["contacts"] = reader.counts()
    if parts & 256:
        out["channels"] = frozenset(reader.many(lambda: reader.coded_text(CHANNELS)))
    if parts & 512:
        out["absorbed"] = frozenset(reader.many(reader.text))
    if parts & 1024:
        out["interests"] = reader.counts()
    if parts & 2048:
        out["reclassified"] = tuple(
            (
                reader.text(),
                reader.text(),
                reader.text(),
                reader.text(),
                reader.signed(),
                reader.text(),
            )
            for _ in range(reader.varint())
        )
    if reader.at != len(blob):
        raise ValueError("a packed state has bytes after its last part")
    return out


def is_json(blob: bytes | str) -> bool:
    """Whether a stored state is the JSON of an earlier release."""
    return isinstance(blob, str) or blob[:1] == b"{"


def json_fields(blob: bytes | str) -> dict[str, Any]:
    """The JSON of an earlier release, as it was stored."""
    return dict(orjson.loads(blob))
