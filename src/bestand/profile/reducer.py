"""The state reducer: ``apply(state, event) -> state`` and ``merge(a, b) -> state``.

Both are pure and deterministic. ``apply`` is idempotent for orders, returns, consent,
identifiers and timestamps; e-mail and contact counters are protected by the store's
per-event dedupe.
"""

from __future__ import annotations

from dataclasses import replace

from bestand.events import OrderFacts, ResolvedEvent
from bestand.identity.kinds import looked_up
from bestand.profile.classify import reclassify
from bestand.profile.state import MAX_INTERESTS, OrderRecord, PersonState

_EMAIL_COUNTER = {
    "email_sent": "sent",
    "email_delivered": "delivered",
    "email_opened": "opened",
    "email_clicked": "clicked",
    "email_bounced": "bounced",
    "email_unsubscribed": "unsubscribed",
}
_ENGAGEMENT = {"email_opened", "email_clicked"}


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _max(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _newer_consent(current: tuple[bool, int] | None, granted: bool, at: int) -> tuple[bool, int]:
    """The later statement wins; at the same second a withdrawal wins over a grant."""
    if current is None or at > current[1] or (at == current[1] and not granted):
        return (granted, at)
    return current


def _with_consent(
    consent: dict[str, tuple[bool, int]], changes: dict[str, bool], at: int
) -> dict[str, tuple[bool, int]]:
    merged = dict(consent)
    for purpose, granted in changes.items():
        merged[purpose] = _newer_consent(merged.get(purpose), granted, at)
    return merged


def _apply_order(
    order: OrderRecord | None, facts: OrderFacts, event_id: str, at: int
) -> OrderRecord:
    order = order or OrderRecord()
    match facts.status:
        case "placed":
            attribution = facts.attribution
            return replace(
                order,
                total_cents=facts.total_cents,
                currency=facts.currency,
                channel=facts.channel,
                campaign=None
                if attribution is None
                else attribution.campaign or attribution.utm_campaign,
                affiliate=None if attribution is None else attribution.affiliate_id,
                coupon=facts.coupon,
                # The earliest placement time wins, so a redelivery cannot move the order.
                at=_min(order.at, at),
            )
        case "cancelled":
            return replace(order, cancelled=True)
        case "returned" | "refunded":
            cents = -1 if facts.returned_cents is None else facts.returned_cents
            return replace(order, returns={**order.returns, event_id: cents})
    raise AssertionError(facts.status)  # pragma: no cover - Literal is exhaustive


def apply(state: PersonState, event: ResolvedEvent) -> PersonState:
    """Apply one resolved event to a person's state."""
    if event.kind == "release":
        # A cookie or device id moved to another person: this one was not seen by it.
        return state.evolve(ids=state.ids - frozenset(event.identifiers))
    at = event.at
    ids = state.ids
    # Only identifiers with a lookup record: the state's ids say which records to write, and
    # order ids, names and fingerprints have none (half of a person's identifiers).
    seen = [token for token in event.identifiers if looked_up(token)]
    changes: dict[str, object] = {
        # Sets are copied only when they grow: most events repeat what the person has.
        "ids": ids if ids.issuperset(seen) else ids | frozenset(seen),
        "first_seen": _min(state.first_seen, at),
        "last_seen": _max(state.last_seen, at),
    }
    if event.kind == "order" and event.order is not None:
        facts = event.order
        orders = dict(state.orders)
        orders[facts.order_id] = _apply_order(orders.get(facts.order_id), facts, event.event_id, at)
        changes["orders"] = orders
        if facts.channel:
            changes["channels"] = state.channels | {facts.channel}
    elif event.kind == "email" and event.email_type is not None:
        counter = _EMAIL_COUNTER[event.email_type]
        changes["email"] = {**state.email, counter: state.email.get(counter, 0) + 1}
        changes["channels"] = state.channels | {"email"}
        if event.email_type in _ENGAGEMENT:
            changes["last_email_engagement"] = _max(state.last_email_engagement, at)
        if event.email_type == "email_unsubscribed":
            changes["consent"] = _with_consent(state.consent, {"email": False}, at)
    elif event.kind == "consent" and event.consent:
        changes["consent"] = _with_consent(
            state.consent, {str(k): v for k, v in event.consent.items()}, at
        )
    elif event.kind == "contact" and event.contact_channel:
        channel = event.contact_channel
        changes["contacts"] = {**state.contacts, channel: state.contacts.get(channel, 0) + 1}
        changes["channels"] = state.channels | {channel}
    elif event.kind == "click":
        if "web" not in state.channels:
            changes["channels"] = state.channels | {"web"}
        if event.category:
            changes["interests"] = _count_interest(state.interests, event.category)
    elif event.kind == "detach":
        changes["ids"] = state.ids - frozenset(event.identifiers)
    new = state.evolve(**changes)
    if "orders" in changes:
        new = _reclassify(new, event.event_id, at, "order events arrived late or changed")
    return new


def _reclassify(state: PersonState, event_id: str, at: int, reason: str) -> PersonState:
    orders, changes = reclassify(
        state.orders, event_id=event_id, at=at, reason=reason, rule=state.rule
    )
    if orders is state.orders:
        return state  # nothing classified anew, nothing changed
    entries = tuple((c.order_id, c.before, c.after, c.event_id, c.at, c.reason) for c in changes)
    return state.evolve(orders=orders, reclassified=state.reclassified + entries)


def _merge_order(a: OrderRecord, b: OrderRecord) -> OrderRecord:
    return OrderRecord(
        total_cents=a.total_cents if a.total_cents is not None else b.total_cents,
        currency=a.currency or b.currency,
        channel=a.channel or b.channel,
        at=_min(a.at, b.at),
        cancelled=a.cancelled or b.cancelled,
        returns={**b.returns, **a.returns},
        cls=a.cls or b.cls,
        campaign=a.campaign or b.campaign,
        affiliate=a.affiliate or b.affiliate,
        coupon=a.coupon or b.coupon,
    )


def _count_interest(interests: dict[str, int], category: str) -> dict[str, int]:
    """One more view of ``category``; beyond the cap the least viewed category goes."""
    counted = {**interests, category: interests.get(category, 0) + 1}
    while len(counted) > MAX_INTERESTS:
        del counted[min(counted, key=lambda c: (counted[c], c))]
    return counted


def _add_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {key: a.get(key, 0) + b.get(key, 0) for key in sorted(a.keys() | b.keys())}


def _top(interests: dict[str, int]) -> dict[str, int]:
    ranked = sorted(interests.items(), key=lambda item: (-item[1], item[0]))[:MAX_INTERESTS]
    return dict(sorted(ranked))


def merge(
    survivor: PersonState, absorbed: PersonState, *, event_id: str = "", at: int = 0
) -> PersonState:
    """Fold an absorbed person into the survivor; orders unite by order id, never twice.

    Merging the same absorbed person twice is a no-op, so a redelivered merge changes nothing.
    Orders whose classification the merge changes (a "new" customer's order that turns out to
    follow an earlier order of the absorbed person) are recorded as reclassified by
    ``event_id``.
    """
    if absorbed.person_id in survivor.absorbed or absorbed.person_id == survivor.person_id:
        return survivor
    orders = dict(absorbed.orders)
    for oid, order in survivor.orders.items():
        orders[oid] = _merge_order(order, orders[oid]) if oid in orders else order
    consent = dict(survivor.consent)
    for purpose, (granted, at) in absorbed.consent.items():
        consent[purpose] = _newer_consent(consent.get(purpose), granted, at)
    merged = replace(
        survivor,
        version=max(survivor.version, absorbed.version),
        ids=survivor.ids | absorbed.ids,
        orders=orders,
        first_seen=_min(survivor.first_seen, absorbed.first_seen),
        last_seen=_max(survivor.last_seen, absorbed.last_seen),
        email=_add_counts(survivor.email, absorbed.email),
        last_email_engagement=_max(survivor.last_email_engagement, absorbed.last_email_engagement),
        consent=consent,
        contacts=_add_counts(survivor.contacts, absorbed.contacts),
        channels=survivor.channels | absorbed.channels,
        interests=_top(_add_counts(survivor.interests, absorbed.interests)),
        absorbed=survivor.absorbed | absorbed.absorbed | {absorbed.person_id},
        reclassified=survivor.reclassified + absorbed.reclassified,
    )
    return _reclassify(merged, event_id, at, f"merged with person {absorbed.person_id}")
