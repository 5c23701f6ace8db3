"""Building blocks shared by the event contracts of every topic."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from bestand.identity.normalize import refuse_control

#: A short free-text field: trimmed, never empty, bounded so a hostile producer cannot bloat state.
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


def _no_control(value: str) -> str:
    refuse_control(value, "an event id")  # it becomes part of keys (dedupe markers, receipts)
    return value


#: An event's id: short text without control characters.
EventId = Annotated[ShortText, AfterValidator(_no_control)]
#: An identifier as a producer sends it (raw, before normalization).
RawIdentifier = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)
]
#: Money in the currency's main unit with at most two decimals (e.g. 59.90).
Money = Annotated[Decimal, Field(ge=0, le=Decimal("100000000"), max_digits=12, decimal_places=2)]
#: ISO 4217 currency code.
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
#: A SHA-256 digest in lowercase or uppercase hex, or standard base64 (as UID2 tokens carry it).
Sha256 = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^([0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)$"),
]


class Contract(BaseModel):
    """Base of every payload: unknown fields are refused, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=4096)


class EventBase(Contract):
    """Fields every event carries: a producer-unique id and the time it happened."""

    event_id: EventId = Field(description="Unique per event; redeliveries carry the same id.")
    event_time: AwareDatetime = Field(
        description="When it happened at the source (ISO 8601 with a UTC offset)."
    )
    source: ShortText | None = Field(None, description="Producing system, e.g. 'shop-web', 'pos'.")


class Attribution(Contract):
    """Where a visit or order came from: campaign, UTM parameters, affiliate."""

    campaign: ShortText | None = None
    utm_source: ShortText | None = None
    utm_medium: ShortText | None = None
    utm_campaign: ShortText | None = None
    utm_term: ShortText | None = None
    utm_content: ShortText | None = None
    affiliate_id: ShortText | None = None
    click_id: ShortText | None = Field(None, description="Ad click id (gclid, msclkid, ...).")


class IdentifierSet(Contract):
    """Identifiers that name one person; at least one is required."""

    customer_id: RawIdentifier | None = None
    email: RawIdentifier | None = None
    email_sha256: Sha256 | None = Field(
        None, description="SHA-256 of the normalized e-mail, hex or base64."
    )
    phone: RawIdentifier | None = None
    phone_sha256: Sha256 | None = Field(
        None, description="SHA-256 of the phone number in E.164 (+4915112345678), hex or base64."
    )
    anonymous_id: RawIdentifier | None = Field(None, description="Cookie / web visitor id.")
    device_id: RawIdentifier | None = Field(None, description="Mobile advertising or app id.")
    loyalty_card: RawIdentifier | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> IdentifierSet:
        if not any(getattr(self, name) for name in type(self).model_fields):
            raise ValueError("at least one identifier is required")
        return self
