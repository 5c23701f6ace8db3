"""Customer topic: identity links, consent, erasure requests and offline contacts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from bestand.events.common import EventBase, IdentifierSet, ShortText

ConsentPurpose = Literal["email", "sms", "phone", "ads", "personalization"]


class Identify(EventBase):
    """Identifiers seen together (a login, an app sign-in, a sign-up) belong to one person."""

    type: Literal["identify"]
    identifiers: IdentifierSet


class ConsentChanged(EventBase):
    """Consent granted or withdrawn for some purposes; unnamed purposes stay as they were."""

    type: Literal["consent_changed"]
    identifiers: IdentifierSet
    consent: dict[ConsentPurpose, bool] = Field(min_length=1)


class ErasureRequested(EventBase):
    """The person asked to be forgotten (GDPR Art. 17)."""

    type: Literal["erasure_requested"]
    identifiers: IdentifierSet


class ContactRecorded(EventBase):
    """The person contacted the shop or was contacted: by phone, in a store, by chat or e-mail."""

    type: Literal["contact"]
    identifiers: IdentifierSet
    channel: Literal["phone", "store", "chat", "email"]
    topic: ShortText | None = Field(None, description="What it was about, e.g. 'return', 'advice'.")


CustomerEvent = Annotated[
    Identify | ConsentChanged | ErasureRequested | ContactRecorded, Field(discriminator="type")
]
