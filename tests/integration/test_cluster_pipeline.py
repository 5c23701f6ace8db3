"""The pipeline suite (``test_pipeline.py``) with the worker on a local Redis Cluster of three
masters: the same events, the same answers."""

from __future__ import annotations

import pytest
from support import Deployment
from test_pipeline import (  # noqa: F401 - collected here, run against the cluster
    test_a_loyal_guest_with_two_spellings_is_one_customer,
    test_an_order_makes_an_existing_customer,
    test_bad_events_go_to_the_dead_letter_topic_and_the_stream_goes_on,
    test_identify_merges_a_visitor_into_the_buyer,
    test_the_same_order_delivered_twice_counts_once,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployment(cluster_deployment: Deployment) -> Deployment:
    return cluster_deployment
