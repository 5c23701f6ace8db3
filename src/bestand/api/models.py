"""Payloads of the lookup API: the contract that ad servers, widgets and affiliates code against."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LifecycleStageName = Literal[
    "prospect", "first_time", "repeat", "loyal", "at_risk", "lapsed", "reactivated"
]

#: Query parameters that name an identifier, in the order they are tried.
IDENTIFIER_PARAMS = (
    "customer_id",
    "email",
    "email_sha256",
    "phone",
    "phone_sha256",
    "anonymous_id",
    "device_id",
    "loyalty_card",
    "order_id",
)


class CustomerValue(BaseModel):
    """RFM scores, lifetime and predicted value, value band; amounts only for admin keys."""

    band: Literal["top10", "top30", "rest"] = Field(
        description="Top 10 %, top 30 % or the rest of the customer base by lifetime value."
    )
    rfm: str = Field(description="Recency, frequency and monetary score as a code, e.g. '545'.")
    recency: int | None = Field(None, ge=1, le=5)
    frequency: int | None = Field(None, ge=1, le=5)
    monetary: int | None = Field(None, ge=1, le=5)
    lifetime_value: float | None = Field(None, description="Net revenue so far.")
    predicted_value: float | None = Field(
        None, description="Expected net revenue within the value horizon."
    )
    expected_next_order_at: str | None = Field(
        description="When the next order is expected (UTC); null once unlikely."
    )


class LookupAnswer(BaseModel):
    """What bestand knows about the person behind an identifier, as of now.

    Which fields are present depends on the scope of the API key (see the README): an ad-server
    key sees ``known``, ``existing_customer``, ``lifecycle_stage`` and
    ``new_customer_offer_eligible`` only.
    """

    known: bool = Field(description="False when the identifier was never seen.")
    existing_customer: bool = Field(
        description="True once the person has a kept order (not cancelled, not wholly returned)."
    )
    lifecycle_stage: LifecycleStageName
    new_customer_offer_eligible: bool = Field(
        description="False for existing customers: no first-order offer for a loyal customer."
    )
    person_id: str | None = Field(None, description="Opaque, stable id of the person.")
    orders_count: int | None = Field(None, description="Distinct orders that count.")
    first_order_at: str | None = Field(None, description="Event time of the first order (UTC).")
    last_order_at: str | None = Field(None, description="Event time of the latest order (UTC).")
    loyalty_offers: list[str] | None = Field(
        None, description="Loyalty offers the person qualifies for."
    )
    preferred_channel: Literal["email", "phone", "store", "chat"] | None = Field(
        None,
        description="The contact channel with most signals (engagement, calls, visits, orders).",
    )
    consent: dict[str, bool] | None = Field(None, description="Consent per purpose, where stated.")
    interests: list[str] | None = Field(
        None, description="The most viewed product categories, most viewed first."
    )
    value: CustomerValue | None = Field(None, description="Null for non-customers.")


class BatchLookupRequest(BaseModel):
    """Many lookups in one request; each item names exactly one identifier."""

    model_config = ConfigDict(extra="forbid")

    identifiers: list[dict[str, str]] = Field(
        min_length=1, description="Items like {'email': '...'} or {'customer_id': '...'}."
    )


class BatchLookupItem(BaseModel):
    """One answer of a batch, in the order of the request; ``error`` when the item was invalid."""

    answer: LookupAnswer | None = None
    error: str | None = None


class BatchLookupResponse(BaseModel):
    """Answers of a batch lookup."""

    results: list[BatchLookupItem]


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer: a stable code and a sentence for the human reading logs."""

    error: str = Field(description="Stable code, e.g. 'unauthorized', 'invalid_identifier'.")
    detail: str = Field(description="What was wrong and how to fix it.")


class IdentifierRef(BaseModel):
    """An identifier as stored: its kind and its keyed hash (never the raw value)."""

    kind: str
    hash: str


class ExplainEntry(BaseModel):
    """One recorded step of identity resolution."""

    what: Literal["new", "link", "merge", "move", "refused", "junk"] = Field(
        description="new person, identifiers linked, persons merged, a cookie or device id "
        "moved to the person identified on it, a link refused, an identifier flagged as junk."
    )
    event_id: str = Field(description="The event that caused it.")
    at: str = Field(description="Event time of that event (UTC).")
    identifiers: list[IdentifierRef]
    rule: str = Field(description="The rule that decided, in words.")
    via: IdentifierRef | None = Field(description="The identifier that connected them.")
    other_person: str | None = Field(
        description="The person merged in, not merged, or who held the moved cookie before."
    )


class PersonExplanation(BaseModel):
    """Why identifiers belong to one person: its identifiers and the history that joined them."""

    person_id: str = Field(description="The person as it is now.")
    requested_id: str = Field(description="The id asked for (an absorbed person's id leads here).")
    identifiers: list[IdentifierRef]
    history: list[ExplainEntry] = Field(
        description="Merges, moves, refusals and junk flags from Redis, and new persons and "
        "links from the explain topic (the person's and those it absorbed), by time."
    )
    history_complete: bool = Field(
        description="False when the explain topic could not be read in time: the history then "
        "holds what Redis has (merges, moves, refusals, junk flags) without the links."
    )


class Reclassification(BaseModel):
    """A change of an order's classification after it was first given, and its cause."""

    before: Literal["new", "existing"]
    after: Literal["new", "existing"]
    event_id: str = Field(description="The event whose processing changed it.")
    at: str = Field(description="Event time of that event (UTC).")
    reason: str


class OrderClassification(BaseModel):
    """Whether an order came from a new or an existing customer at the time of the order."""

    order_id: str
    person_id: str
    classification: Literal["new", "existing"]
    ordered_at: str | None = Field(description="Event time of the order (UTC).")
    orders_before: int = Field(description="Kept orders of the person before this one.")
    days_since_last_order: int | None = Field(
        description="Days since the person's previous kept order; null for a first order."
    )
    channel: str | None
    campaign: str | None
    affiliate_id: str | None
    coupon: str | None = Field(description="Discount or voucher code redeemed with the order.")
    cancelled: bool
    reclassifications: list[Reclassification] = Field(
        description="Every change after the first answer, with its cause (e.g. a merge)."
    )


class BatchClassificationRequest(BaseModel):
    """Many orders at once, e.g. an affiliate network validating a day's commissions."""

    model_config = ConfigDict(extra="forbid")

    order_ids: list[str] = Field(min_length=1)


class BatchClassificationItem(BaseModel):
    """One order of a batch: its classification, or ``error`` when it is unknown."""

    order_id: str
    classification: OrderClassification | None = None
    error: str | None = None


class BatchClassificationResponse(BaseModel):
    """Answers of a batch classification, in the order of the request."""

    results: list[BatchClassificationItem]


class CampaignReportRow(BaseModel):
    """Orders and net revenue (cents) from new and existing customers, for one day and source."""

    day: str
    campaign: str | None
    affiliate: str | None
    channel: str | None
    coupon: str | None
    new_orders: int
    new_revenue_cents: int
    existing_orders: int
    existing_revenue_cents: int


class CampaignReport(BaseModel):
    """Campaign truth for a range of days (UTC), from the current classification of orders."""

    from_day: str = Field(alias="from")
    to_day: str = Field(alias="to")
    rows: list[CampaignReportRow]
