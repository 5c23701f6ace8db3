"""Partitions move between workers in the middle of a backlog, and nothing is handled twice.

Before partitions are revoked, a worker finishes the batches in hand and commits them; what
it read but had not begun is dropped and read again by the partitions' next owner. Every
order of the backlog makes its buyer a customer, and each ``became_customer`` change is
published exactly once: a batch handled twice would publish its changes again (a redelivery
repeats the changes it finds recorded), and a batch lost would publish none.
"""

from __future__ import annotations

import time
import urllib.request
from collections import Counter

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import Deployment, Process, consume_all, produce, run, wait_for

from bestand.kafka.topics import consumer_lag
from bestand.stack import free_port
from stages import clear

pytestmark = pytest.mark.integration

ORDERS = 20_000
TOP_UP = 5_000


def _order(n: int) -> bytes:
    return orjson.dumps(
        {
            "type": "order_placed",
            "event_id": f"rb-{n}",
            "event_time": "2026-11-20T10:00:00Z",
            "order_id": f"rb-order-{n}",
            "total": "10.00",
            "currency": "EUR",
            "channel": "web",
            "customer": {"guest": True, "email": f"rb.{n}@example.com"},
        }
    )


def _outcomes(port: int) -> Counter[str]:
    """Events by outcome from a worker's /metrics (empty when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return Counter()
    found: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "bestand_events_total":
                found[sample.labels["outcome"]] += int(sample.value)
    return found


def _feed(deployment: Deployment, first: int, count: int) -> None:
    """Orders ``first`` … ``first + count - 1`` into the orders topic."""
    run(produce(deployment.settings.kafka_bootstrap, deployment.topic("orders"),
                [_order(n) for n in range(first, first + count)]))  # fmt: skip


def _lag(deployment: Deployment) -> int:
    s = deployment.settings
    return sum(run(consumer_lag(s, s.app_id, [s.topic_orders])).values())


def test_workers_joining_and_leaving_mid_backlog_handle_every_event_once(
    deployment: Deployment,
) -> None:
    settings = deployment.settings
    _feed(deployment, 0, ORDERS)
    produced = ORDERS
    first_port, second_port = settings.worker_web_port, free_port()
    first = Process(["worker"], deployment.env, deployment.log_dir / "rebalance-1.log")
    second: Process | None = None
    try:
        wait_for(lambda: _outcomes(first_port)["processed"] > 0, timeout=90,
                 what="the first worker to begin the backlog")  # fmt: skip
        # A second worker joins: the group rebalances while the first has batches in hand.
        env = {**deployment.env, "BESTAND_WORKER_WEB_PORT": str(second_port)}
        second = Process(["worker"], env, deployment.log_dir / "rebalance-2.log")

        def second_has_work() -> bool:
            # A worker that starts slowly must still find a backlog: keep one in hand for it.
            nonlocal produced
            if _outcomes(second_port)["processed"] > 0:
                return True
            if _lag(deployment) < TOP_UP:
                _feed(deployment, produced, TOP_UP)
                produced += TOP_UP
            return False

        wait_for(second_has_work, timeout=90, what="the second worker to get partitions")
        # The first leaves with a backlog in hand: its partitions move again mid-batch.
        _feed(deployment, produced, ORDERS)
        produced += ORDERS
        assert _lag(deployment) > 0, "the backlog was done before the first worker left"
        assert first.stop(timeout=60) == 0, first.log_tail()
        wait_for(lambda: _lag(deployment) == 0, timeout=180,
                 what="the second worker to finish the backlog")  # fmt: skip
        time.sleep(1)  # the last batch's changes were sent before its commit; read them all
        outcomes = _outcomes(second_port)
    finally:
        if first.popen.poll() is None:
            first.stop()
        if second is not None:
            assert second.stop(timeout=60) == 0, second.log_tail()
    run(clear(settings))  # a census in another module's worker would count these keys too
    assert outcomes["duplicate"] == 0  # the second worker met no event the first had handled
    changes = run(consume_all(settings.kafka_bootstrap, settings.topic_profile_changes,
                              expect=2 * produced, within=30))  # fmt: skip
    became = Counter(c["event_id"] for c in changes if c["change"] == "became_customer")
    assert len(became) == produced  # every order handled
    assert set(became.values()) == {1}  # and none twice
