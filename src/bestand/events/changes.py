"""The profile-change record: what downstream systems (CRM, ESP, ad audiences) react to."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import orjson
from pydantic import AwareDatetime, Field

from bestand.events.common import Contract

ChangeKind = Literal["became_customer", "no_longer_customer", "stage_changed", "merged", "erased"]


class ProfileChange(Contract):
    """Published to the profile-changes topic, keyed by person id, when a person's answer moves.

    ``became_customer``: the first kept order; ``no_longer_customer``: the last kept order was
    cancelled or returned in full; ``stage_changed``: the lifecycle stage moved because of an
    event (stages that move by the passing of time alone are computed at lookup time and are
    not published); ``merged``: other persons were found to be this one (``absorbed``); their
    ids are gone for good; ``erased``: the person was erased on request.
    """

    change: ChangeKind
    person_id: str = Field(description="Opaque id of the person.")
    event_id: str = Field(description="The input event that caused the change.")
    event_time: AwareDatetime = Field(description="Event time of that input event.")
    changed_at: AwareDatetime = Field(description="When bestand applied the change.")
    existing_customer: bool | None = Field(None, description="After the change; null if erased.")
    orders_count: int | None = Field(None, description="After the change; null if erased.")
    stage_before: str | None = None
    stage_after: str | None = None
    absorbed: list[str] = Field(default_factory=list, description="Persons merged into this one.")


def change_json(
    change: ChangeKind,
    *,
    person_id: str,
    event_id: str,
    event_time: datetime,
    changed_at: datetime,
    existing_customer: bool | None = None,
    orders_count: int | None = None,
    stage_before: str | None = None,
    stage_after: str | None = None,
    absorbed: list[str] | None = None,
) -> bytes:
    """A :class:`ProfileChange` as JSON, the same bytes its ``model_dump_json`` gives, built
    without the model: a worker writes hundreds of them per batch from values of its own."""
    return orjson.dumps(
        {
            "change": change,
            "person_id": person_id,
            "event_id": event_id,
            "event_time": event_time,
            "changed_at": changed_at,
            "existing_customer": existing_customer,
            "orders_count": orders_count,
            "stage_before": stage_before,
            "stage_after": stage_after,
            "absorbed": absorbed or [],
        },
        option=orjson.OPT_UTC_Z,
    )
