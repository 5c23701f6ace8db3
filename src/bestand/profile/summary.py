"""The lookup record: the small summary of a person stored under its identifiers.

It is what makes a lookup one Redis round trip: an ad server asks by any identifier (an
order id aside, answered from the person's state) and the record answers without touching
the person's full state. Redis keeps it as one string of positional fields
(:meth:`LookupSummary.packed`), so a changed answer is one ``SET`` per identifier; ``v`` is
the person's version so a late write never replaces a newer record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bestand.profile.channels import preferred_channel
from bestand.profile.lifecycle import LifecycleRules, lifecycle_stage
from bestand.profile.offers import (
    DEFAULT_OFFERS,
    LoyaltyOffer,
    loyalty_offers,
    new_customer_offer_eligible,
)
from bestand.profile.state import OrderRecord, PersonState
from bestand.profile.value import Value, ValueRules, ValueThresholds, customer_value

DEFAULT_VALUE_RULES = ValueRules()
NO_THRESHOLDS = ValueThresholds()

#: Separates interests in the record (a control character no category contains).
_SEP = "\x1f"
#: Separates the fields of a record, which Redis keeps as one string (see :meth:`packed`).
RECORD_SEP = "\x1e"
#: The fields of a record, in the order a packed record holds them.
RECORD_FIELDS = ("p", "v", "n", "f", "l", "q", "pc", "r", "i", "c")
_PURPOSE_CODES = {"email": "e", "sms": "s", "phone": "p", "ads": "a", "personalization": "z"}
_CODE_PURPOSES = {code: purpose for purpose, code in _PURPOSE_CODES.items()}


_DIGITS36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(number: int) -> str:
    """An integer in base 36 (``int(text, 36)`` reads it back)."""
    if number < 0:
        return "-" + _b36(-number)
    out = ""
    while True:
        number, digit = divmod(number, 36)
        out = _DIGITS36[digit] + out
        if not number:
            return out


def _consent_code(consent: Mapping[str, bool]) -> str:
    """Consent as a record holds it: a letter per purpose and 0 or 1, by purpose name."""
    return "".join(f"{_PURPOSE_CODES[p]}{int(g)}" for p, g in sorted(consent.items()))


@dataclass(slots=True)  # built per event: frozen would double that
class LookupSummary:
    """What a lookup answers about a person, as stored in a lookup record."""

    person_id: str
    version: int
    orders_count: int
    first_order_at: int | None
    last_order_at: int | None
    consent: dict[str, bool]
    previous_order_at: int | None = None
    preferred_channel: str | None = None
    revenue_cents: int = 0
    interests: tuple[str, ...] = ()

    @property
    def existing_customer(self) -> bool:
        """True once the person has a kept order."""
        return self.orders_count > 0

    @classmethod
    def of(cls, state: PersonState) -> LookupSummary:
        """The summary of a person's state.

        The same figures as the state's properties, in one pass over the orders: it is made
        for every order a worker applies.
        """
        kept: list[OrderRecord] = []
        times: list[int] = []
        revenue = 0
        placed_rule = state.rule == "placed"
        for order in state.orders.values():
            at = order.at
            if at is None or order.cancelled:
                continue  # not active: neither kept nor revenue
            if order.returns:
                revenue += order.net_cents
                if not placed_rule and order.wholly_refunded:
                    continue
            else:
                revenue += order.total_cents or 0
            kept.append(order)
            times.append(at)
        times.sort()
        consent = state.consent_flags
        return cls(
            person_id=state.person_id,
            version=state.version,
            orders_count=len(kept),
            first_order_at=times[0] if times else None,
            last_order_at=times[-1] if times else None,
            consent=consent,
            previous_order_at=times[-2] if len(times) >= 2 else None,
            preferred_channel=preferred_channel(state, kept, consent),
            revenue_cents=revenue,
            interests=tuple(state.top_interests) if state.interests else (),
        )

    def same_answer(self, other: LookupSummary | None) -> bool:
        """True when both summaries answer a lookup alike (the version aside): their records
        hold the same fields but ``v``. Compared field by field, not record by record: it is
        asked for every person a batch changes."""
        return (
            other is not None
            and self.orders_count == other.orders_count
            and self.last_order_at == other.last_order_at
            and self.person_id == other.person_id
            and self.first_order_at == other.first_order_at
            and self.previous_order_at == other.previous_order_at
            and (self.preferred_channel or None) == (other.preferred_channel or None)
            and self.revenue_cents == other.revenue_cents
            and self.interests == other.interests
            and self.consent == other.consent
        )

    def fields(self) -> dict[str, str | int]:
        """The Redis hash fields of the record; absent values are left out."""
        out: dict[str, str | int] = {"p": self.person_id, "v": self.version, "n": self.orders_count}
        if self.first_order_at is not None:
            out["f"] = self.first_order_at
        if self.last_order_at is not None:
            out["l"] = self.last_order_at
        if self.previous_order_at is not None:
            out["q"] = self.previous_order_at
        if self.preferred_channel:
            out["pc"] = self.preferred_channel
        if self.revenue_cents:
            out["r"] = self.revenue_cents
        if self.interests:
            out["i"] = _SEP.join(self.interests)
        if self.consent:
            out["c"] = _consent_code(self.consent)
        return out

    def packed(self) -> str:
        """The record as Redis keeps it: one string of the :data:`RECORD_FIELDS` in order,
        separated by ``\\x1e``, absent ones empty (trailing ones left off). One ``SET``
        replaces a record whole, where a hash had to be deleted and written field by field.
        The order count, the times and the revenue are in base 36, the count marked by ``~``
        (a time takes 6 characters instead of 10); the person id and the version stay as they
        were, which the scripts read (records of earlier releases, in decimal, are read too)."""
        consent = self.consent
        values = (
            self.person_id,
            str(self.version),
            "~" + _b36(self.orders_count),
            "" if self.first_order_at is None else _b36(self.first_order_at),
            "" if self.last_order_at is None else _b36(self.last_order_at),
            "" if self.previous_order_at is None else _b36(self.previous_order_at),
            self.preferred_channel or "",
            _b36(self.revenue_cents) if self.revenue_cents else "",
            _SEP.join(self.interests),
            _consent_code(consent) if consent else "",
        )  # the fields of :meth:`fields`, in RECORD_FIELDS order, without a dict between
        return RECORD_SEP.join(values).rstrip(RECORD_SEP)

    @classmethod
    def from_packed(cls, raw: bytes | str) -> LookupSummary:
        """Read a record as :meth:`packed` wrote it (or an earlier release, in decimal)."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        fields: dict[bytes | str, bytes | str] = dict(
            zip(RECORD_FIELDS, text.split(RECORD_SEP), strict=False)
        )
        count = str(fields.get("n", ""))
        if count.startswith("~"):
            fields["n"] = str(int(count[1:], 36))
            for key in ("f", "l", "q", "r"):
                if value := fields.get(key):
                    fields[key] = str(int(value, 36))
        return cls.from_fields(fields)

    @classmethod
    def from_fields(cls, raw: Mapping[bytes | str, bytes | str]) -> LookupSummary:
        """Read a record's fields (bytes or str keys; an empty value is an absent one)."""
        data = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()
        }
        consent: dict[str, bool] = {}
        flags = data.get("c", "")
        for i in range(0, len(flags) - 1, 2):
            purpose = _CODE_PURPOSES.get(flags[i])
            if purpose:
                consent[purpose] = flags[i + 1] == "1"

        def opt(key: str) -> int | None:
            value = data.get(key)
            return int(value) if value not in (None, "") else None

        return cls(
            person_id=data["p"],
            version=int(data.get("v", 0)),
            orders_count=int(data.get("n", 0)),
            first_order_at=opt("f"),
            last_order_at=opt("l"),
            consent=consent,
            previous_order_at=opt("q"),
            preferred_channel=data.get("pc") or None,
            revenue_cents=int(data.get("r") or 0),
            interests=tuple(data["i"].split(_SEP)) if data.get("i") else (),
        )

    def value(self, now: int, rules: ValueRules, thresholds: ValueThresholds) -> Value | None:
        """RFM, lifetime and predicted value and value band as of ``now``."""
        return customer_value(
            orders_count=self.orders_count,
            revenue_cents=self.revenue_cents,
            first_order_at=self.first_order_at,
            last_order_at=self.last_order_at,
            now=now,
            rules=rules,
            thresholds=thresholds,
        )

    def answer(
        self,
        now: int,
        rules: LifecycleRules,
        offers: Sequence[LoyaltyOffer] = DEFAULT_OFFERS,
        value_rules: ValueRules = DEFAULT_VALUE_RULES,
        thresholds: ValueThresholds = NO_THRESHOLDS,
    ) -> dict[str, Any]:
        """The lookup answer, with stage, offers and value computed for ``now``."""
        stage = lifecycle_stage(
            self.orders_count, self.last_order_at, now, rules, self.previous_order_at
        )
        value = self.value(now, value_rules, thresholds)
        return {
            "known": True,
            "person_id": self.person_id,
            "existing_customer": self.existing_customer,
            "orders_count": self.orders_count,
            "first_order_at": _iso(self.first_order_at),
            "last_order_at": _iso(self.last_order_at),
            "lifecycle_stage": stage,
            "new_customer_offer_eligible": new_customer_offer_eligible(self.orders_count),
            "loyalty_offers": loyalty_offers(
                offers,
                orders_count=self.orders_count,
                last_order_at=self.last_order_at,
                stage=stage,
                now=now,
            ),
            "preferred_channel": self.preferred_channel,
            "consent": self.consent,
            "value": None if value is None else value_answer(value),
            "interests": list(self.interests),
        }


def value_answer(value: Value) -> dict[str, Any]:
    """The ``value`` block of a lookup answer (amounts in the shop's currency units)."""
    return {
        "band": value.band,
        "rfm": value.rfm,
        "recency": value.recency,
        "frequency": value.frequency,
        "monetary": value.monetary,
        "lifetime_value": value.lifetime_value_cents / 100,
        "predicted_value": value.predicted_value_cents / 100,
        "expected_next_order_at": _iso(value.expected_next_order_at),
    }


def iso(epoch: int) -> str:
    """Epoch seconds as ISO 8601 in UTC with a Z."""
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _iso(epoch: int | None) -> str | None:
    return None if epoch is None else iso(epoch)


def unknown_answer() -> dict[str, Any]:
    """The answer for an identifier bestand has never seen."""
    return {
        "known": False,
        "person_id": None,
        "existing_customer": False,
        "orders_count": 0,
        "first_order_at": None,
        "last_order_at": None,
        "lifecycle_stage": "prospect",
        "new_customer_offer_eligible": True,
        "loyalty_offers": [],
        "preferred_channel": None,
        "consent": {},
        "value": None,
        "interests": [],
    }
