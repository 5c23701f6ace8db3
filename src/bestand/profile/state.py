"""A person's state: plain data, serialized compactly for Redis.

Orders are kept by order id and returns by the id of the return event, so applying an event
twice gives the same state (idempotence by structure); counters that cannot be made structural
(e-mail engagement) rely on the per-event dedupe in the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from bestand.profile import stored

# The compiled reader gives the same parts five times as fast (tests/unit/test_stored_state.py).
try:
    from bestand_native import unpack_state as _unpack
except ImportError:  # pragma: no cover - bestand-native is built by make install
    _unpack = stored.unpack

#: Purposes a person can consent to.
CONSENT_PURPOSES = ("email", "sms", "phone", "ads", "personalization")
#: Which orders make an existing customer: ``kept`` (default) orders that were neither
#: cancelled nor returned or refunded in full; ``placed`` any order that was not cancelled.
CustomerRule = Literal["kept", "placed"]
#: Most product categories kept per person (the least viewed make room for new ones).
MAX_INTERESTS = 20
#: E-mail engagement counters, by the short name of the e-mail event.
EMAIL_COUNTERS = ("sent", "delivered", "opened", "clicked", "bounced", "unsubscribed")


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One order of a person. ``at`` is the order's event time in epoch seconds."""

    total_cents: int | None = None
    currency: str | None = None
    channel: str | None = None
    at: int | None = None
    cancelled: bool = False
    # return or refund event id -> cents (-1: the whole order)
    returns: dict[str, int] = field(default_factory=dict)
    cls: Literal["new", "existing"] | None = None  # classification as last published
    campaign: str | None = None
    affiliate: str | None = None
    coupon: str | None = None

    @property
    def active(self) -> bool:
        """An order that was placed and not cancelled: it counts in reports, even if returned."""
        return self.at is not None and not self.cancelled

    @property
    def wholly_refunded(self) -> bool:
        """All of the order's value went back, by returns or refunds."""
        if not self.returns:
            return False
        if any(cents < 0 for cents in self.returns.values()):
            return True
        total = self.total_cents or 0
        return total > 0 and self.returned_cents >= total

    @property
    def kept(self) -> bool:
        """An active order the customer kept at least part of."""
        return self.active and not self.wholly_refunded

    def counts(self, rule: CustomerRule) -> bool:
        """Whether this order makes its buyer an existing customer under ``rule``."""
        return self.kept if rule == "kept" else self.active

    @property
    def returned_cents(self) -> int:
        """Refunded value; a return without an amount refunds the whole order."""
        if not self.returns:
            return 0
        total = self.total_cents or 0
        refunded = sum(total if cents < 0 else cents for cents in self.returns.values())
        return min(refunded, total)

    @property
    def net_cents(self) -> int:
        """Revenue the order brought after returns and refunds; zero when cancelled."""
        if not self.active:
            return 0
        return (self.total_cents or 0) - self.returned_cents


@dataclass(frozen=True, slots=True)
class PersonState:
    """Everything bestand knows about one person, without personal data."""

    person_id: str
    version: int = 0
    #: The person's identifiers that have a lookup record (``kinds.looked_up``): whose records
    #: to write when its answer changes. The graph's facts hold every identifier.
    ids: frozenset[str] = frozenset()
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    first_seen: int | None = None
    last_seen: int | None = None
    email: dict[str, int] = field(default_factory=dict)
    last_email_engagement: int | None = None
    consent: dict[str, tuple[bool, int]] = field(default_factory=dict)  # purpose -> (granted, at)
    contacts: dict[str, int] = field(default_factory=dict)
    channels: frozenset[str] = frozenset()
    absorbed: frozenset[str] = frozenset()
    interests: dict[str, int] = field(default_factory=dict)  # product category -> views
    # Changes of order classifications: (order, before, after, event, at, reason).
    reclassified: tuple[tuple[str, str, str, str, int, str], ...] = ()
    #: Which orders count (a setting, not stored with the state).
    rule: CustomerRule = field(default="kept", compare=False)

    # --- derived figures (never stored, always computed) ---------------------------------
    @property
    def kept_orders(self) -> list[OrderRecord]:
        """Orders that make the person an existing customer under :attr:`rule`."""
        return [order for order in self.orders.values() if order.counts(self.rule)]

    @property
    def orders_count(self) -> int:
        """Distinct kept orders."""
        return len(self.kept_orders)

    @property
    def existing_customer(self) -> bool:
        """True once the person has an order that counts under :attr:`rule`."""
        return self.orders_count > 0

    @property
    def revenue_cents(self) -> int:
        """Net revenue over distinct orders that were not cancelled."""
        return sum(order.net_cents for order in self.orders.values() if order.active)

    @property
    def first_order_at(self) -> int | None:
        """Event time of the first kept order (epoch seconds)."""
        times = [order.at for order in self.kept_orders if order.at is not None]
        return min(times) if times else None

    @property
    def last_order_at(self) -> int | None:
        """Event time of the latest kept order (epoch seconds)."""
        times = [order.at for order in self.kept_orders if order.at is not None]
        return max(times) if times else None

    @property
    def top_interests(self) -> list[str]:
        """The three most viewed product categories, most viewed first."""
        ranked = sorted(self.interests.items(), key=lambda item: (-item[1], item[0]))
        return [category for category, _ in ranked[:3]]

    @property
    def consent_flags(self) -> dict[str, bool]:
        """Current consent per purpose; purposes never asked about are absent."""
        return {purpose: granted for purpose, (granted, _) in self.consent.items()}

    @property
    def previous_order_at(self) -> int | None:
        """Event time of the kept order before the latest one (for "reactivated")."""
        times = sorted(order.at for order in self.kept_orders if order.at is not None)
        return times[-2] if len(times) >= 2 else None

    def evolve(self, **changes: Any) -> PersonState:
        """The same state with ``changes``: ``dataclasses.replace`` at half its cost (it is
        called for every event a worker applies)."""
        new = object.__new__(PersonState)
        for name in _STATE_FIELDS:
            object.__setattr__(new, name, changes[name] if name in changes else getattr(self, name))
        return new

    def bumped(self) -> PersonState:
        """The same state with the next version, for a write that must win over older ones."""
        return replace(self, version=self.version + 1)


_STATE_FIELDS = tuple(f.name for f in fields(PersonState))


def _order_from_json(data: dict[str, Any]) -> OrderRecord:
    return OrderRecord(
        total_cents=data.get("t"),
        currency=data.get("cu"),
        channel=data.get("ch"),
        at=data.get("at"),
        cancelled=bool(data.get("x")),
        returns=dict(data.get("r", {})),
        cls=data.get("c"),
        campaign=data.get("cp"),
        affiliate=data.get("af"),
        coupon=data.get("co"),
    )


def dump_state(state: PersonState) -> bytes:
    """Serialize a state in its packed stored form (``profile.stored``)."""
    return stored.pack(state)


def load_state(
    person_id: str, blob: bytes | str | None, rule: CustomerRule = "kept"
) -> PersonState:
    """Read a serialized state; ``None`` gives a new, empty person."""
    if not blob:
        return PersonState(person_id=person_id, rule=rule)
    if not stored.is_json(blob):
        parts = _unpack(blob)  # type: ignore[arg-type]
        orders = parts.pop("orders", None)
        if orders:
            parts["orders"] = {oid: OrderRecord(**order) for oid, order in orders.items()}
        return PersonState(person_id=person_id, rule=rule, **parts)
    data = stored.json_fields(blob)
    return PersonState(
        person_id=person_id,
        rule=rule,
        version=int(data.get("v", 0)),
        ids=frozenset(data.get("ids", ())),
        orders={oid: _order_from_json(order) for oid, order in data.get("o", {}).items()},
        first_seen=data.get("fs"),
        last_seen=data.get("ls"),
        email=dict(data.get("em", {})),
        last_email_engagement=data.get("le"),
        consent={
            purpose: (bool(value[0]), int(value[1]))
            for purpose, value in data.get("cs", {}).items()
        },
        contacts=dict(data.get("ct", {})),
        channels=frozenset(data.get("chn", ())),
        absorbed=frozenset(data.get("ab", ())),
        interests=dict(data.get("in", {})),
        reclassified=tuple(
            (str(o), str(b), str(a), str(e), int(t), str(r))
            for o, b, a, e, t, r in data.get("rc", ())
        ),
    )
