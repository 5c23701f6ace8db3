"""Evaluation of identity resolution against the simulated shop's ground truth."""

from __future__ import annotations

from bestand.evaluation.metrics import (
    CustomerCounts,
    PairScores,
    WrongCluster,
    customer_counts,
    merge_count,
    naive_customer_key,
    pair_scores,
    wrong_clusters,
    wrong_merge_count,
)

__all__ = [
    "CustomerCounts",
    "PairScores",
    "WrongCluster",
    "customer_counts",
    "merge_count",
    "naive_customer_key",
    "pair_scores",
    "wrong_clusters",
    "wrong_merge_count",
]
