"""E-mail topic: what the e-mail service provider reports about messages to a recipient."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from bestand.events.common import EventBase, RawIdentifier, ShortText

EmailEventType = Literal[
    "email_sent",
    "email_delivered",
    "email_opened",
    "email_clicked",
    "email_bounced",
    "email_unsubscribed",
]


class EmailEvent(EventBase):
    """One delivery or engagement event of a message to one recipient."""

    type: EmailEventType
    email: RawIdentifier = Field(description="Recipient address as the provider reports it.")
    campaign: ShortText | None = None
    message_id: ShortText | None = None
    url: Annotated[str, Field(max_length=2048)] | None = Field(
        None, description="Clicked link (email_clicked only)."
    )
    bounce_type: Literal["hard", "soft"] | None = None


EmailTopicEvent = Annotated[EmailEvent, Field(discriminator="type")]
