"""Evaluation maths for identity resolution: pairwise scores, wrong merges, customer counts.

Pure functions over plain mappings, no I/O. *Items* are whatever is being clustered (order ids,
event ids, customer records); *truth* maps each item to its real person, *predicted* to the
person the system resolved it to. Labels are opaque strings: only equality matters.

Pairwise scores count pairs of items: a pair is *true* when both items belong to one real
person, *predicted* when the system put them into one person, *correct* when both. They are
computed from cluster sizes (``sum of C(n, 2)``), in time linear in the number of items.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


def _pairs(n: int) -> int:
    """C(n, 2): pairs among ``n`` items."""
    return n * (n - 1) // 2


def _predicted_label(predicted: Mapping[str, str], item: str) -> Hashable:
    """The item's predicted cluster; an item missing from ``predicted`` is a cluster of its own.

    Missing items get a tuple key, so they can never collide with a real (string) label.
    """
    label = predicted.get(item)
    return ("unpredicted", item) if label is None else label


@dataclass(frozen=True)
class PairScores:
    """Pairwise precision, recall and F1 of "same person", with the pair counts behind them."""

    precision: float
    recall: float
    f1: float
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int


def pair_scores(truth: Mapping[str, str], predicted: Mapping[str, str]) -> PairScores:
    """Pairwise precision/recall/F1 of ``predicted`` against ``truth`` over the items of truth.

    Items of ``truth`` missing from ``predicted`` count as singletons (no predicted pairs);
    items only in ``predicted`` are ignored. Precision is 1.0 when nothing was predicted to be
    together (no claim can be wrong), recall is 1.0 when no two items truly belong together
    (nothing could be missed); F1 is 0.0 when both precision and recall are 0.
    """
    true_sizes: Counter[str] = Counter()
    predicted_sizes: Counter[Hashable] = Counter()
    joint_sizes: Counter[tuple[str, Hashable]] = Counter()
    for item, true_label in truth.items():
        label = _predicted_label(predicted, item)
        true_sizes[true_label] += 1
        predicted_sizes[label] += 1
        joint_sizes[true_label, label] += 1
    true_pairs = sum(_pairs(n) for n in true_sizes.values())
    predicted_pairs = sum(_pairs(n) for n in predicted_sizes.values())
    correct_pairs = sum(_pairs(n) for n in joint_sizes.values())
    precision = correct_pairs / predicted_pairs if predicted_pairs else 1.0
    recall = correct_pairs / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairScores(
        precision=precision,
        recall=recall,
        f1=f1,
        true_pairs=true_pairs,
        predicted_pairs=predicted_pairs,
        correct_pairs=correct_pairs,
    )


@dataclass(frozen=True)
class WrongCluster:
    """A predicted person that really is several people, with how many items each one has."""

    predicted_label: str
    true_labels: dict[str, int]

    @property
    def size(self) -> int:
        """Items in the predicted cluster."""
        return sum(self.true_labels.values())


def _clusters(truth: Mapping[str, str], predicted: Mapping[str, str]) -> dict[str, Counter[str]]:
    """Predicted label -> true label -> items, over items present in both mappings."""
    clusters: dict[str, Counter[str]] = defaultdict(Counter)
    for item, true_label in truth.items():
        label = predicted.get(item)
        if label is not None:
            clusters[label][true_label] += 1
    return clusters


def wrong_clusters(truth: Mapping[str, str], predicted: Mapping[str, str]) -> list[WrongCluster]:
    """Predicted clusters that mix more than one real person, largest first.

    Only items in both mappings count (a missing item is a singleton and cannot mix). Ties are
    ordered by predicted label, so the result is deterministic. Within a cluster, true labels
    are listed largest first.
    """
    out = [
        WrongCluster(
            predicted_label=label,
            true_labels=dict(sorted(members.items(), key=lambda kv: (-kv[1], kv[0]))),
        )
        for label, members in _clusters(truth, predicted).items()
        if len(members) > 1
    ]
    out.sort(key=lambda cluster: (-cluster.size, cluster.predicted_label))
    return out


def wrong_merge_count(truth: Mapping[str, str], predicted: Mapping[str, str]) -> int:
    """Merges that joined different people: per predicted cluster, distinct real persons - 1.

    A predicted person made of three real people took at least two wrong merges to build,
    whatever order they happened in; that minimum is what is counted.
    """
    return sum(len(members) - 1 for members in _clusters(truth, predicted).values())


def merge_count(predicted: Mapping[str, str], records: Mapping[str, str] | None = None) -> int:
    """Merges the system made: per predicted cluster, distinct source records in it - 1, summed.

    A *record* is what a shop without identity resolution would already count as one customer
    (see :func:`naive_customer_key`); ``records`` maps each item to its record. Orders of one
    record that land in one person cost no merge; joining two records costs one. Without
    ``records`` every item is its own record, which gives ``sum(size - 1)``.

    To make "wrong merges <= 0.1 % of merges" meaningful, evaluate on the same items: e.g.
    items = placed orders, ``records[order] = naive_customer_key(order)``, then compare
    ``wrong_merge_count(truth, predicted)`` with ``merge_count(predicted, records)``. Merges
    that are free for a naive shop (repeat orders of one account) then do not inflate the
    denominator. A naive record may itself hold several real people (a dummy e-mail typed
    for many walk-in customers); keeping them together counts as wrong merges but as no
    merge, so such mistakes are never diluted.
    """
    seen: dict[str, set[str]] = defaultdict(set)
    for item, label in predicted.items():
        seen[label].add(records.get(item, item) if records is not None else item)
    return sum(len(members) - 1 for members in seen.values())


def naive_customer_key(order_event: Mapping[str, Any]) -> str:
    """Who a shop without identity resolution thinks placed this order.

    ``customer:<id>`` for a registered (non-guest) customer, else ``email:<address>`` with the
    raw address trimmed and lower-cased (no Gmail rules, dummy addresses included), else
    ``order:<order_id>``: a store or phone order without an e-mail is a new customer every
    time. A guest's throw-away customer number is ignored, as such shops ignore it too.
    """
    customer: Mapping[str, Any] = order_event.get("customer") or {}
    customer_id = str(customer.get("customer_id") or "").strip()
    if customer_id and not customer.get("guest", False):
        return f"customer:{customer_id}"
    email = str(customer.get("email") or "").strip().lower()
    if email:
        return f"email:{email}"
    return f"order:{order_event['order_id']}"


@dataclass(frozen=True)
class CustomerCounts:
    """How many customers there are: really, to a naive shop, and after identity resolution."""

    true_customers: int
    naive_customers: int
    resolved_customers: int
    anonymous_orders: int = 0


def customer_counts(
    orders: Iterable[Mapping[str, Any]],
    truth: Mapping[str, str],
    predicted_person_of_order: Mapping[str, str],
    anonymous: Collection[str] = frozenset(),
) -> CustomerCounts:
    """Count customers: distinct persons with at least one placed order that was not cancelled.

    ``anonymous`` holds the ids of orders that name nobody (a cash sale without card, phone or
    a usable e-mail): no shop knows who placed them, so they make nobody a customer, neither in
    the truth nor in either count; how many there were is reported instead.

    ``orders`` are events of any type (only ``order_placed`` and ``order_cancelled`` are read;
    a cancellation may come before or after its order). ``truth`` maps event ids to real
    persons and must hold every placed order's ``event_id``. ``predicted_person_of_order`` maps
    order ids to resolved persons; an order missing there counts as a customer of its own.
    A redelivered order (same order id) counts once.
    """
    placed: dict[str, Mapping[str, Any]] = {}
    cancelled: set[str] = set()
    for event in orders:
        kind = event.get("type")
        if kind == "order_placed":
            placed.setdefault(str(event["order_id"]), event)
        elif kind == "order_cancelled":
            cancelled.add(str(event["order_id"]))
    active = {order_id: event for order_id, event in placed.items() if order_id not in cancelled}
    anonymous_orders = sum(1 for order_id in active if order_id in anonymous)
    active = {order_id: event for order_id, event in active.items() if order_id not in anonymous}
    true_persons = {truth[str(event["event_id"])] for event in active.values()}
    naive = {naive_customer_key(event) for event in active.values()}
    resolved = {_predicted_label(predicted_person_of_order, order_id) for order_id in active}
    return CustomerCounts(
        true_customers=len(true_persons),
        naive_customers=len(naive),
        resolved_customers=len(resolved),
        anonymous_orders=anonymous_orders,
    )
