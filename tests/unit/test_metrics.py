"""Evaluation maths: pairwise scores, wrong merges and customer counts, checked by hand."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bestand.evaluation import (
    CustomerCounts,
    customer_counts,
    merge_count,
    naive_customer_key,
    pair_scores,
    wrong_clusters,
    wrong_merge_count,
)

# Two real people: a has orders 1-3, b has orders 4-5.
TRUTH = {"o1": "a", "o2": "a", "o3": "a", "o4": "b", "o5": "b"}


def test_perfect_prediction() -> None:
    scores = pair_scores(TRUTH, {"o1": "P", "o2": "P", "o3": "P", "o4": "Q", "o5": "Q"})
    assert (scores.precision, scores.recall, scores.f1) == (1.0, 1.0, 1.0)
    assert scores.true_pairs == scores.predicted_pairs == scores.correct_pairs == 4


def test_everything_merged() -> None:
    scores = pair_scores(TRUTH, dict.fromkeys(TRUTH, "P"))
    # 10 predicted pairs, 4 of them true.
    assert (scores.predicted_pairs, scores.correct_pairs) == (10, 4)
    assert scores.precision == pytest.approx(0.4)
    assert scores.recall == 1.0
    assert scores.f1 == pytest.approx(2 * 0.4 / 1.4)


def test_everything_split_and_missing_items_are_singletons() -> None:
    split = pair_scores(TRUTH, {item: item for item in TRUTH})
    missing = pair_scores(TRUTH, {})
    for scores in (split, missing):
        assert scores.predicted_pairs == 0
        assert scores.precision == 1.0  # no claim, so none wrong
        assert scores.recall == 0.0
        assert scores.f1 == 0.0


def test_no_true_pairs_means_full_recall() -> None:
    scores = pair_scores({"x": "a", "y": "b"}, {"x": "P", "y": "P"})
    assert (scores.recall, scores.precision, scores.f1) == (1.0, 0.0, 0.0)
    assert pair_scores({}, {}).f1 == 1.0


def test_one_wrong_merge() -> None:
    predicted = {"o1": "P", "o2": "P", "o3": "P", "o4": "P", "o5": "Q"}
    scores = pair_scores(TRUTH, predicted)
    # Predicted pairs: C(4,2)=6, correct: the 3 pairs among o1-o3; true pairs 4.
    assert (scores.predicted_pairs, scores.correct_pairs, scores.true_pairs) == (6, 3, 4)
    assert scores.precision == pytest.approx(0.5)
    assert scores.recall == pytest.approx(0.75)
    assert wrong_merge_count(TRUTH, predicted) == 1
    [cluster] = wrong_clusters(TRUTH, predicted)
    assert cluster.predicted_label == "P"
    assert cluster.true_labels == {"a": 3, "b": 1}
    assert cluster.size == 4


def test_items_only_in_prediction_are_ignored() -> None:
    predicted = {"o1": "P", "o2": "P", "o3": "P", "o4": "Q", "o5": "Q", "zz": "P"}
    assert pair_scores(TRUTH, predicted).precision == 1.0
    assert wrong_merge_count(TRUTH, predicted) == 0


def test_wrong_clusters_largest_first() -> None:
    truth = {"1": "a", "2": "b", "3": "c", "4": "d", "5": "e", "6": "e"}
    predicted = {"1": "X", "2": "X", "3": "Y", "4": "Y", "5": "Y", "6": "Z"}
    clusters = wrong_clusters(truth, predicted)
    assert [c.predicted_label for c in clusters] == ["Y", "X"]
    assert clusters[0].true_labels == {"c": 1, "d": 1, "e": 1}
    assert wrong_merge_count(truth, predicted) == 1 + 2


def test_merge_count_with_and_without_records() -> None:
    predicted = {"o1": "P", "o2": "P", "o3": "P", "o4": "Q", "o5": "R"}
    assert merge_count(predicted) == 2  # (3 - 1) + 0 + 0
    # o1 and o2 were one customer for a naive shop already: only o3 is a merge.
    records = {"o1": "email:a", "o2": "email:a", "o3": "order:o3", "o4": "x", "o5": "y"}
    assert merge_count(predicted, records) == 1
    assert merge_count({}) == 0


@st.composite
def labelings(draw: st.DrawFn) -> tuple[dict[str, str], dict[str, str]]:
    """Small random truth and prediction over shared items, some items unpredicted."""
    items = [f"i{n}" for n in range(draw(st.integers(0, 12)))]
    labels = st.sampled_from(["a", "b", "c", "d"])
    truth = {item: draw(labels) for item in items}
    predicted = {item: draw(labels) for item in items if draw(st.booleans()) or len(items) < 3}
    return truth, predicted


@given(labelings())
def test_pair_scores_match_brute_force(case: tuple[dict[str, str], dict[str, str]]) -> None:
    truth, predicted = case
    true_pairs = predicted_pairs = correct_pairs = 0
    for x, y in combinations(sorted(truth), 2):
        same_true = truth[x] == truth[y]
        same_predicted = x in predicted and y in predicted and predicted[x] == predicted[y]
        true_pairs += same_true
        predicted_pairs += same_predicted
        correct_pairs += same_true and same_predicted
    scores = pair_scores(truth, predicted)
    assert (scores.true_pairs, scores.predicted_pairs, scores.correct_pairs) == (
        true_pairs,
        predicted_pairs,
        correct_pairs,
    )
    assert scores.precision == (correct_pairs / predicted_pairs if predicted_pairs else 1.0)
    assert scores.recall == (correct_pairs / true_pairs if true_pairs else 1.0)
    assert wrong_merge_count(truth, predicted) <= merge_count(
        {item: label for item, label in predicted.items() if item in truth}
    )


def _order(
    order_id: str, event_id: str, customer: dict[str, Any], channel: str = "web"
) -> dict[str, Any]:
    return {
        "type": "order_placed",
        "event_id": event_id,
        "order_id": order_id,
        "channel": channel,
        "customer": customer,
    }


@pytest.mark.parametrize(
    ("customer", "key"),
    [
        ({"customer_id": "K1", "guest": False, "email": "a@b.de"}, "customer:K1"),
        ({"customer_id": " K1 ", "email": "a@b.de"}, "customer:K1"),
        (
            {"customer_id": "G77", "guest": True, "email": " Jana@Gmail.com "},
            "email:jana@gmail.com",
        ),
        ({"guest": True, "email": "j.a.n.a+x@gmail.com"}, "email:j.a.n.a+x@gmail.com"),
        ({"guest": True, "email": "kunde@shop.de"}, "email:kunde@shop.de"),
        ({"guest": True, "email": "   ", "phone": "0151 1"}, "order:o9"),
        ({"guest": True, "phone": "0151 1234 5678"}, "order:o9"),
    ],
)
def test_naive_customer_key(customer: dict[str, Any], key: str) -> None:
    assert naive_customer_key(_order("o9", "e9", customer)) == key


def test_customer_counts_on_a_tiny_shop() -> None:
    events = [
        # Jana: two guest orders with two spellings (naive: 2 customers), one person.
        _order("o1", "e1", {"guest": True, "email": "Jana.Schmidt@gmail.com"}),
        _order("o2", "e2", {"guest": True, "email": "janaschmidt+x@gmail.com"}),
        # Tom: an account, then a store order without e-mail (naive: 2 customers).
        _order("o3", "e3", {"customer_id": "K1", "guest": False, "email": "tom@web.de"}),
        _order("o4", "e4", {"guest": True, "phone": "0151 1"}, channel="store"),
        # Ute: her only order was cancelled: not a customer.
        _order("o5", "e5", {"guest": True, "email": "ute@gmx.de"}),
        {"type": "order_cancelled", "event_id": "e6", "order_id": "o5"},
        # A redelivery of Jana's first order counts once.
        _order("o1", "e1", {"guest": True, "email": "Jana.Schmidt@gmail.com"}),
        {"type": "page_view", "event_id": "e7", "anonymous_id": "ck"},
    ]
    truth = {"e1": "jana", "e2": "jana", "e3": "tom", "e4": "tom", "e5": "ute", "e6": "ute"}
    # The resolver linked Jana's orders but not Tom's store order (o4 missing: its own).
    predicted = {"o1": "P1", "o2": "P1", "o3": "P2", "o5": "P3"}
    counts = customer_counts(events, truth, predicted)
    assert counts == CustomerCounts(true_customers=2, naive_customers=4, resolved_customers=3)


def test_anonymous_sales_make_nobody_a_customer() -> None:
    events = [
        _order("o1", "e1", {"guest": True, "email": "tom@web.de"}),
        # A cash sale in the store: nothing to know the buyer by.
        _order("o2", "e2", {"guest": True}, channel="store"),
        # Ida only ever bought anonymously: the shop cannot know her as a customer.
        _order("o3", "e3", {"guest": True}, channel="store"),
    ]
    truth = {"e1": "tom", "e2": "tom", "e3": "ida"}
    predicted = {"o1": "P1", "o2": "P2", "o3": "P3"}
    counted = customer_counts(events, truth, predicted, anonymous={"o2", "o3"})
    assert counted == CustomerCounts(
        true_customers=1, naive_customers=1, resolved_customers=1, anonymous_orders=2
    )
    assert customer_counts(events, truth, predicted).true_customers == 2
