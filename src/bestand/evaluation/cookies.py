"""Cookie by cookie, as an ad server asks at the end: "is this browser's user an existing
customer?", against who really uses the cookie now.

Plain functions over the shop's events and its truth. The right answer for a cookie is
whether its *last* user (the person of the latest event that carried it, by event time) has
an order they kept. What the data allows: the best any resolver can answer without guessing,
from the events of that user that are joined to the cookie through shared linking
identifiers (:mod:`bestand.evaluation.oracle`). On a cookie several persons used, nothing in
an anonymous click tells who made it: the best answer is then the one for the last person
who identified on it (an order, a login or a sign-up), whoever clicked after. A shop's naive
view: a browser is a customer's when an order was placed on it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

#: How a cookie was tied to a person, strongest first: an order placed on it, a login or
#: sign-up (an identify event, a page seen logged in), an app's device id, or never.
TIES = ("order", "login or sign-up", "device", "never")


@dataclass(frozen=True, slots=True)
class CookieTruth:
    """One cookie: whose it is now, whether that person is a customer, how it was tied."""

    cookie: str
    last_user: str
    users: int
    tie: str
    customer: bool
    #: What the best resolver can answer (without guessing) and a shop's naive answer.
    data_allows: bool
    naive: bool


@dataclass
class CookieScores:
    """Cookies answered right, in total and by how they were tied."""

    cookies: Counter[str] = field(default_factory=Counter)
    right: Counter[str] = field(default_factory=Counter)
    allows: Counter[str] = field(default_factory=Counter)
    naive: Counter[str] = field(default_factory=Counter)

    def add(self, line: str, truth: CookieTruth, answer: bool) -> None:
        self.cookies[line] += 1
        self.right[line] += answer == truth.customer
        self.allows[line] += truth.data_allows == truth.customer
        self.naive[line] += truth.naive == truth.customer

    def share(self, counts: Counter[str], line: str) -> float:
        return counts[line] / self.cookies[line] if self.cookies[line] else 0.0


def cookies_of(event: Mapping[str, Any]) -> list[str]:
    """The cookies an event carries: on the event itself, or among its identifiers."""
    found = []
    for holder in (event, event.get("identifiers")):
        if isinstance(holder, Mapping):
            value = holder.get("anonymous_id")
            if isinstance(value, str) and value.strip():
                found.append(value.strip())
    return found


def _tie(event: Mapping[str, Any]) -> str:
    kind = event.get("type")
    if kind == "order_placed":
        return "order"
    identifiers = event.get("identifiers")
    if (
        kind == "identify"
        or event.get("customer_id")
        or (isinstance(identifiers, Mapping) and identifiers.get("customer_id"))
    ):
        return "login or sign-up"
    if event.get("device_id"):
        return "device"
    return "never"


def kept_orders(events: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Order id -> event id of every placed order that was kept: not cancelled, not returned
    or refunded in full (an amount-less return or refund is the whole order)."""
    placed: dict[str, Mapping[str, Any]] = {}
    gone: set[str] = set()
    taken_back: Counter[str] = Counter()
    for event in events:
        kind, order_id = event.get("type"), str(event.get("order_id"))
        if kind == "order_placed":
            placed.setdefault(order_id, event)
        elif kind == "order_cancelled":
            gone.add(order_id)
        elif kind in ("order_returned", "order_refunded"):
            amount = event.get("amount")
            if amount is None:
                gone.add(order_id)
            else:
                taken_back[order_id] += int(Decimal(str(amount)) * 100)
    return {
        order_id: str(event["event_id"])
        for order_id, event in placed.items()
        if order_id not in gone and taken_back[order_id] < int(Decimal(str(event["total"])) * 100)
    }


def cookie_truths(
    events: Iterable[Mapping[str, Any]],
    truth: Mapping[str, str],
    group_of: Callable[[str], str],
) -> list[CookieTruth]:
    """Every cookie the shop saw, with its last user and the answers the data allows.

    ``group_of`` gives the oracle's group of an event id: the events of one person joined
    through shared linking identifiers.
    """
    events = list(events)
    kept = kept_orders(events)
    customers = {truth[event_id] for event_id in kept.values()}
    kept_groups = {group_of(event_id) for event_id in kept.values()}
    seen: dict[str, list[tuple[str, str, Mapping[str, Any]]]] = {}
    for event in events:
        for cookie in cookies_of(event):
            seen.setdefault(cookie, []).append(
                (str(event["event_time"]), str(event["event_id"]), event)
            )
    kept_on_cookie = {
        cookie
        for cookie, carried in seen.items()
        if any(
            e.get("type") == "order_placed" and str(e.get("order_id")) in kept for *_, e in carried
        )
    }
    out = []
    for cookie, carried in seen.items():
        carried.sort(key=lambda item: (item[0], item[1]))
        last_user = truth[carried[-1][1]]
        mine = [(event_id, event) for _, event_id, event in carried if truth[event_id] == last_user]
        ties = {_tie(event) for _, event in mine}
        tie = next(t for t in TIES if t in ties or t == "never")
        users = {truth[event_id] for _, event_id, _ in carried}
        # Whom the data says uses the cookie now: its last user, or on a shared cookie the
        # last person identified on it (an anonymous click names nobody).
        known_user = last_user
        if len(users) > 1:
            identified = [e for _, e, ev in carried if _tie(ev) in ("order", "login or sign-up")]
            if identified:
                known_user = truth[identified[-1]]
        groups = {group_of(event_id) for _, event_id, _ in carried
                  if truth[event_id] == known_user}  # fmt: skip
        out.append(
            CookieTruth(
                cookie=cookie,
                last_user=last_user,
                users=len(users),
                tie=tie,
                customer=last_user in customers,
                data_allows=(tie != "never" or known_user != last_user)
                and bool(groups & kept_groups),
                naive=cookie in kept_on_cookie,
            )
        )
    return out


def score_cookies(truths: Iterable[CookieTruth], answers: Mapping[str, bool]) -> CookieScores:
    """Right answers by tie, over the cookies that can be tied, over shared cookies (used by
    more than one person: answered for the last user?), and over all."""
    scores = CookieScores()
    for truth in truths:
        answer = answers.get(truth.cookie, False)
        scores.add(truth.tie, truth, answer)
        scores.add("all", truth, answer)
        if truth.tie != "never":
            scores.add("can be tied", truth, answer)
        if truth.users > 1:
            scores.add("shared by several persons", truth, answer)
    return scores
