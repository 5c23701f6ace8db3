"""The lookup record: the small summary of a person stored under every identifier.

It is what makes a lookup one Redis round trip: an ad server asks by any identifier and the
record answers without touching the person's full state. Field names are one letter to keep
Redis small; ``v`` is the person's version so a late write never replaces a newer record.
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
from bestand.profile.state import PersonState

_PURPOSE_CODES = {"email": "e", "sms": "s", "phone": "p", "ads": "a", "personalization": "z"}
_CODE_PURPOSES = {code: purpose for purpose, code in _PURPOSE_CODES.items()}


@dataclass(frozen=True, slots=True)
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

    @property
    def existing_customer(self) -> bool:
        """True once the person has a kept order."""
        return self.orders_count > 0

    @classmethod
    def of(cls, state: PersonState) -> LookupSummary:
        """The summary of a person's state."""
        return cls(
            person_id=state.person_id,
            version=state.version,
            orders_count=state.orders_count,
            first_order_at=state.first_order_at,
            last_order_at=state.last_order_at,
            consent=state.consent_flags,
            previous_order_at=state.previous_order_at,
            preferred_channel=preferred_channel(state),
        )

    def same_answer(self, other: LookupSummary | None) -> bool:
        """True when both summaries answer a lookup alike (the version aside)."""
        return other is not None and self.fields() | {"v": 0} == other.fields() | {"v": 0}

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
        if self.consent:
            out["c"] = "".join(
                f"{_PURPOSE_CODES[p]}{int(g)}" for p, g in sorted(self.consent.items())
            )
        return out

    @classmethod
    def from_fields(cls, raw: Mapping[bytes | str, bytes | str]) -> LookupSummary:
        """Read a record as Redis returns it (bytes or str keys)."""
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
        )

    def answer(
        self, now: int, rules: LifecycleRules, offers: Sequence[LoyaltyOffer] = DEFAULT_OFFERS
    ) -> dict[str, Any]:
        """The lookup answer, with stage and offers computed for ``now``."""
        stage = lifecycle_stage(
            self.orders_count, self.last_order_at, now, rules, self.previous_order_at
        )
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
    }
