"""Dedupe markers: what an applied event said (a digest) and what it changed.

A redelivered event says the same and finds its marker: it is not applied again, and the
changes it caused go out again (the try that applied it may have died before sending them).
An event that reuses an id with other content does not match, and is refused rather than
silently dropped.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

import orjson

from bestand.events import ResolvedEvent
from bestand.profile.changes import Change


def content_digest(event: ResolvedEvent) -> str:
    """Short digest of what an event says (not where it went): the marker of its dedupe key.

    Where it went (person, merged persons, identifiers) may differ between tries and is left
    out; a redelivered event says the same, an event that reuses an id with other content
    does not.
    """
    order = event.order
    order_facts: tuple[object, ...] | None = None
    if order is not None:
        order_facts = (
            order.order_id,
            order.status,
            order.total_cents,
            order.returned_cents,
            order.currency,
            order.channel,
            order.guest,
            None if order.attribution is None else order.attribution.__dict__,
        )
        if order.coupon is not None:  # absent from digests of orders without one, as before
            order_facts += (order.coupon,)
    facts = (
        event.event_id,
        event.event_time.isoformat(),
        event.kind,
        event.type,
        event.topic,
        order_facts,
        event.email_type,
        event.campaign,
        None if event.consent is None else sorted(event.consent.items()),
        event.contact_channel,
        event.product_id,
        event.category,
    )
    digest = hashlib.blake2b(orjson.dumps(facts), digest_size=6)
    return base64.urlsafe_b64encode(digest.digest()).decode()


def marker(digest: str, changes: Sequence[Change]) -> str:
    """A dedupe marker: the content digest, then the changes the event caused (if any)."""
    if not changes:
        return digest
    rows = [
        [c.change, c.existing_customer, c.orders_count, c.stage_before, c.stage_after,
         list(c.absorbed)]
        for c in changes
    ]  # fmt: skip
    return f"{digest} {orjson.dumps(rows).decode()}"


def parse_marker(text: str) -> tuple[str, tuple[Change, ...]]:
    """The digest and the changes of a dedupe marker ('1': a marker without either)."""
    digest, _, rows = text.partition(" ")
    if not rows:
        return digest, ()
    return digest, tuple(
        Change(kind, existing, count, before, after, tuple(absorbed))
        for kind, existing, count, before, after, absorbed in orjson.loads(rows)
    )


def same_content(text: str, digest: str) -> bool:
    """True when a dedupe marker matches the digest ('1': a marker written without one)."""
    return parse_marker(text)[0] in ("1", digest)
