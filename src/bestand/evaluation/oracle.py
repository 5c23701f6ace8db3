"""What the data allows: the best resolution possible without a single wrong merge.

For every real person, their events are joined wherever two of them share an identifier that
may link (not junk by pattern, not a never-linking kind). Orders that end up in different
groups share nothing at all: no resolver can join them without guessing. The figures here are
the ceiling that bestand's own figures are compared with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from bestand.evaluation.metrics import PairScores, customer_counts, pair_scores
from bestand.events.decode import TYPE_TOPIC_KIND, decode_event
from bestand.identity import IdentityKeyer, raw_identifiers
from bestand.identity.kinds import KIND_NAMES, IdKind, kind_of
from bestand.identity.policy import IdentityPolicy


@dataclass(frozen=True, slots=True)
class Ceiling:
    """The best figures any resolver can reach on a shop without wrong merges."""

    scores: PairScores
    customers: int
    labels: Mapping[str, str]  # order id -> group, for per-kind figures
    anonymous: frozenset[str]  # ids of orders whose only linking identifier is the order itself
    junk: frozenset[str]  # tokens recognised as junk by pattern (dummy e-mails, fake phones)
    #: Identifiers the events name that never link, by (kind, "refused" or "junk by
    #: pattern", why): how often an event named one.
    unused: Counter[tuple[str, str, str]]
    #: Event id -> its group: the events of one person joined through linking identifiers.
    groups: Mapping[str, str]


class _Groups:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        root = item
        while self.parent.setdefault(root, root) != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def ceiling(
    events: Sequence[Mapping[str, Any]],
    truth: Mapping[str, str],
    keyer: IdentityKeyer,
    policy: IdentityPolicy,
) -> Ceiling:
    """Join each person's events through shared linking identifiers; score the result."""
    groups = _Groups()
    anonymous: set[str] = set()
    junk: set[str] = set()
    unused: Counter[tuple[str, str, str]] = Counter()
    for event in events:
        event_id = str(event["event_id"])
        decoded = decode_event(
            TYPE_TOPIC_KIND[str(event["type"])], orjson.dumps(event), max_bytes=1 << 20
        )
        keyed = keyer.key_all(raw_identifiers(decoded))
        junk.update(kid.token for kid, _ in keyed.junk)
        unused.update((KIND_NAMES[kind], "refused", why) for kind, why in keyed.rejected)
        unused.update((KIND_NAMES[kid.kind], "junk by pattern", why) for kid, why in keyed.junk)
        tokens = [kid.token for kid in keyed.ids if policy.of(kind_of(kid.token)).link != "never"]
        if event["type"] == "order_placed" and all(
            kind_of(token) is IdKind.ORDER for token in tokens
        ):
            anonymous.add(str(event["order_id"]))
        person = truth[event_id]
        node = f"event:{event_id}"
        groups.find(node)
        for token in tokens:
            # Identifiers are scoped to the real person: shared ones join nothing across people.
            groups.union(node, f"{person}|{token}")
    orders = [e for e in events if e["type"] == "order_placed"]
    best = {str(e["order_id"]): groups.find(f"event:{e['event_id']}") for e in orders}
    order_truth = {str(e["order_id"]): truth[str(e["event_id"])] for e in orders}
    counts = customer_counts(events, truth, best, anonymous)
    return Ceiling(
        scores=pair_scores(order_truth, best),
        customers=counts.resolved_customers,
        labels=best,
        anonymous=frozenset(anonymous),
        junk=frozenset(junk),
        unused=unused,
        groups={str(e["event_id"]): groups.find(f"event:{e['event_id']}") for e in events},
    )
