"""The lookup logic behind the HTTP routes: key an identifier, read one record, answer."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import date
from typing import Any

from bestand.access import Scope, visible_answer
from bestand.identity import IdentityKeyer, IdKind, InvalidIdentifier, KeyedId
from bestand.identity.entries import parse_entry
from bestand.identity.explain import history_entry, identifier
from bestand.kafka.explain_topic import TopicHistory
from bestand.profile import LifecycleRules, unknown_answer
from bestand.profile.classify import order_context
from bestand.profile.offers import DEFAULT_OFFERS, LoyaltyOffer
from bestand.profile.report import campaign_rows
from bestand.profile.state import PersonState
from bestand.profile.summary import DEFAULT_VALUE_RULES, NO_THRESHOLDS, LookupSummary, iso
from bestand.profile.value import ValueRules
from bestand.store import IdentityGraph, LookupReader, ProfileStore
from bestand.store.explain_log import Explanation
from bestand.store.values import ThresholdCache

#: Reads the explain topic's entries of persons (``kafka/explain_topic.read_history``).
TopicReader = Callable[[Sequence[str]], Awaitable[TopicHistory]]

PARAM_KINDS: dict[str, IdKind] = {
    "customer_id": IdKind.CUSTOMER,
    "email": IdKind.EMAIL,
    "email_sha256": IdKind.EMAIL,
    "phone": IdKind.PHONE,
    "phone_sha256": IdKind.PHONE,
    "anonymous_id": IdKind.ANONYMOUS,
    "device_id": IdKind.DEVICE,
    "loyalty_card": IdKind.LOYALTY,
    "order_id": IdKind.ORDER,
}


class LookupService:
    """Answers lookups by any identifier with one Redis round trip (or one pipeline per batch);
    by an order id, with two (the identity graph's entry, then the person's state)."""

    def __init__(
        self,
        reader: LookupReader,
        keyer: IdentityKeyer,
        rules: LifecycleRules,
        clock: Callable[[], float] = time.time,
        *,
        graph: IdentityGraph | None = None,
        profiles: ProfileStore | None = None,
        offers: Sequence[LoyaltyOffer] = DEFAULT_OFFERS,
        value_rules: ValueRules = DEFAULT_VALUE_RULES,
        thresholds: ThresholdCache | None = None,
        topic_history: TopicReader | None = None,
    ) -> None:
        """``topic_history`` reads the explain topic's links of persons (the persons' ids):
        without it an explanation holds what Redis has."""
        self._reader = reader
        self._topic_history = topic_history
        self._value_rules = value_rules
        self._thresholds = thresholds
        self._keyer = keyer
        self._rules = rules
        self._clock = clock
        self._graph = graph
        self._profiles = profiles
        self._offers = tuple(offers)

    def key(self, name: str, value: str) -> KeyedId:
        """Keyed form of a named identifier; raises :class:`InvalidIdentifier`."""
        kind = PARAM_KINDS.get(name)
        if kind is None:
            raise InvalidIdentifier(f"unknown identifier '{name}'")
        if name.endswith("_sha256"):
            return self._keyer.key_sha256(kind, value)
        return self._keyer.key(kind, value)

    async def _answer(
        self, summary: LookupSummary | None, now: int, scope: Scope
    ) -> dict[str, Any]:
        if summary is None:
            return visible_answer(unknown_answer(), scope)
        thresholds = NO_THRESHOLDS if self._thresholds is None else await self._thresholds.current()
        answer = summary.answer(now, self._rules, self._offers, self._value_rules, thresholds)
        return visible_answer(answer, scope)

    async def lookup(self, name: str, value: str, scope: Scope = "admin") -> dict[str, Any]:
        """Answer for one identifier, as far as ``scope`` may see it."""
        kid = self.key(name, value)
        if kid.kind is IdKind.ORDER:
            summary = await self._order_summary(value, kid.token)
        else:
            summary = await self._reader.get(kid.token)
        return await self._answer(summary, int(self._clock()), scope)

    async def _order_state(self, token: str) -> PersonState | None:
        """The state of the person the identity graph gives an order id's token to."""
        if self._graph is None or self._profiles is None:
            raise RuntimeError("this service has no identity graph and profile store")
        person = await self._graph.person_of(token)
        return None if person is None else await self._profiles.load(person)

    async def _order_summary(self, order_id: str, token: str) -> LookupSummary | None:
        """An order id has no lookup record (a person's orders would multiply the records
        every changed answer rewrites): its person comes from the identity graph, the answer
        from that person's state, once the state holds the order."""
        state = await self._order_state(token)
        if state is None or not {order_id, order_id.strip()} & state.orders.keys():
            return None
        return LookupSummary.of(state)

    async def lookup_many(
        self, items: Sequence[tuple[str, str]], scope: Scope = "admin"
    ) -> list[dict[str, Any]]:
        """Answers for many identifiers; an invalid one gets ``{'error': ...}`` in its place."""
        keyed: list[KeyedId | str] = []
        for name, value in items:
            try:
                keyed.append(self.key(name, value))
            except InvalidIdentifier as exc:
                keyed.append(f"{name}: {exc}")
        tokens = [
            kid.token for kid in keyed if isinstance(kid, KeyedId) and kid.kind is not IdKind.ORDER
        ]
        summaries = iter(await self._reader.get_many(tokens))
        now = int(self._clock())
        out: list[dict[str, Any]] = []
        for (_, value), kid in zip(items, keyed, strict=True):
            if isinstance(kid, str):
                out.append({"answer": None, "error": kid})
                continue
            if kid.kind is IdKind.ORDER:
                summary = await self._order_summary(value, kid.token)
            else:
                summary = next(summaries)
            out.append({"answer": await self._answer(summary, now, scope), "error": None})
        return out

    async def person_of(self, name: str, value: str) -> str | None:
        """The person an identifier belongs to in the identity graph."""
        if self._graph is None:
            raise RuntimeError("this service has no identity graph")
        return await self._graph.person_of(self.key(name, value).token)

    async def find_person(self, person_id: str) -> Explanation | None:
        """Identifiers and history of a person; an absorbed person's id leads to the survivor."""
        if self._graph is None or self._profiles is None:
            raise RuntimeError("this service has no identity graph")
        found = await self._graph.explain(person_id)
        if found is None:
            state = await self._profiles.load(person_id)
            if state is not None and state.person_id != person_id:
                found = await self._graph.explain(state.person_id)
        return found

    async def explain(self, person_id: str) -> dict[str, Any] | None:
        """The API's answer to "why are these identifiers one person?"."""
        found = await self.find_person(person_id)
        if found is None:
            return None
        history, complete = await self.history(found)
        return {
            "person_id": found.person_id,
            "requested_id": person_id,
            "identifiers": [identifier(t) for t in found.identifiers],
            "history": [history_entry(e) for e in history],
            "history_complete": complete,
        }

    async def history(self, found: Explanation) -> tuple[list[dict[str, Any]], bool]:
        """A person's explain entries from Redis and from the explain topic (the person's and
        those of the persons it absorbed), by time; False when the topic could not be read."""
        if self._topic_history is None:
            return found.history, True
        topic = await self._topic_history([found.person_id, *found.absorbed])
        held = {(e["k"], e["e"], e["at"], tuple(e.get("t", ()))) for e in found.history}
        linked = [
            entry
            for texts in topic.entries.values()
            for entry in map(parse_entry, texts)
            if (entry["k"], entry["e"], entry["at"], tuple(entry.get("t", ()))) not in held
        ]
        # Stable: Redis's entries before the topic's of the same second.
        merged = sorted([*found.history, *linked], key=lambda e: int(e["at"]))
        return merged, topic.complete

    async def classification(self, order_id: str) -> dict[str, Any] | None:
        """New or existing customer at the time of the order, with every later change."""
        state = await self._order_state(self.key("order_id", order_id).token)
        order = None if state is None else state.orders.get(order_id)
        context = None if state is None else order_context(state.orders, order_id, state.rule)
        if state is None or order is None or order.cls is None or context is None:
            return None
        changes = [
            {"before": before, "after": after, "event_id": event, "at": iso(at), "reason": why}
            for oid, before, after, event, at, why in state.reclassified
            if oid == order_id
        ]
        return {
            "order_id": order_id,
            "person_id": state.person_id,
            "classification": order.cls,
            "ordered_at": None if order.at is None else iso(order.at),
            "orders_before": context.orders_before,
            "days_since_last_order": context.days_since_last_order,
            "channel": order.channel,
            "campaign": order.campaign,
            "affiliate_id": order.affiliate,
            "coupon": order.coupon,
            "cancelled": order.cancelled,
            "reclassifications": changes,
        }

    async def classifications(self, order_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Classifications of many orders, in order; unknown ones carry an error."""
        out: list[dict[str, Any]] = []
        for order_id in order_ids:
            try:
                found = await self.classification(order_id)
            except InvalidIdentifier as exc:
                out.append({"order_id": order_id, "classification": None, "error": str(exc)})
                continue
            error = None if found is not None else "unknown order"
            out.append({"order_id": order_id, "classification": found, "error": error})
        return out

    async def campaign_report(self, start: date, end: date) -> dict[str, Any]:
        """Campaign truth for days ``start`` to ``end``, recomputed from person state."""
        if self._profiles is None:
            raise RuntimeError("this service has no profile store")
        states = [state async for state in self._profiles.states()]
        rows = campaign_rows(states, start, end)
        return {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "rows": [asdict(row) for row in rows],
        }
