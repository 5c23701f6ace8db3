"""The pipeline suite (``test_pipeline.py``) with the worker on a local Redis Cluster of three
masters: the same events, the same answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from support import Deployment, Process, bestand_cli, wait_for
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


def test_status_and_health_read_the_cluster(deployment: Deployment, worker: Process) -> None:
    """``bestand status`` finds the worker's heartbeat and adds up the masters' memory;
    ``bestand health worker`` finds it too."""

    def status() -> dict[str, Any] | None:
        shown = bestand_cli(deployment, "status", "--json")
        data: dict[str, Any] = json.loads(shown.stdout) if shown.returncode == 0 else {}
        return data if data.get("workers") else None

    shot = wait_for(status, timeout=60, what="a worker heartbeat in bestand status")
    assert shot["notes"] == [], shot["notes"]
    assert shot["redis_scripts"] in {"module", "lua"}
    one_node = redis.Redis.from_url(deployment.settings.redis_url)
    try:
        alone = int(one_node.info("memory")["used_memory"])
    finally:
        one_node.close()
    assert shot["redis_used_memory_bytes"] > alone  # the three masters together
    health = bestand_cli(deployment, "health", "worker")
    assert health.returncode == 0, health.stdout + health.stderr
