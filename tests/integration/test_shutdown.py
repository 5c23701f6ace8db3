"""Graceful shutdown: SIGTERM in the middle of a stream loses nothing and counts nothing twice.

The worker finishes the batch in hand, writes it, commits its offsets and leaves the group
(exit code 0). A second worker then starts exactly at the committed offsets: it handles the
rest once, meets no event already applied, and the final state is what the events say.
"""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import Deployment, Process, make_deployment, produce, run, wait_for

from bestand.api import create_api
from bestand.kafka.topics import consumer_lag, ensure_topics

pytestmark = pytest.mark.integration

PERSONS = 150
ORDERS_EACH = 20
EVENTS = PERSONS * ORDERS_EACH


@pytest.fixture(scope="module")
def deployment(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Deployment:
    made = make_deployment(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("shutdown"))
    made.env["BESTAND_BATCH_MAX_EVENTS"] = "50"  # many batches: SIGTERM lands inside a run
    run(ensure_topics(made.settings))
    return made


def _order(n: int) -> bytes:
    person = n % PERSONS
    return orjson.dumps(
        {
            "type": "order_placed",
            "event_id": f"term-{n}",
            "event_time": f"2026-10-{1 + n // (EVENTS // 20 + 1):02d}T10:00:00Z",
            "order_id": f"term-order-{n}",
            "total": "10.00",
            "currency": "EUR",
            "channel": "web",
            "customer": {"guest": True, "email": f"term.{person}@example.com"},
        }
    )


def _counts(port: int) -> dict[str, float]:
    """Events by outcome from a worker's /metrics; empty when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "bestand_events_total":
                key = sample.labels["outcome"]
                out[key] = out.get(key, 0.0) + sample.value
    return out


def _lag(deployment: Deployment) -> dict[str, int]:
    s = deployment.settings
    return run(consumer_lag(s, s.app_id, [s.topic_orders]))


def _answers(deployment: Deployment) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        api = create_api(deployment.settings)
        try:
            found = await api.service.lookup_many(
                [("email", f"term.{p}@example.com") for p in range(PERSONS)]
            )
            return [item["answer"] for item in found]
        finally:
            await api.close()

    return run(go())


def test_sigterm_mid_stream_then_restart(deployment: Deployment) -> None:
    port = deployment.settings.worker_web_port
    log_dir = deployment.log_dir
    first = Process(["worker"], deployment.env, log_dir / "worker-1.log")
    try:
        wait_for(lambda: _counts(port) is not None and _ready(port), timeout=90,
                 what="the first worker to be ready")  # fmt: skip
        orders = [_order(n) for n in range(EVENTS)]
        bootstrap, topic = deployment.settings.kafka_bootstrap, deployment.topic("orders")
        run(produce(bootstrap, topic, orders[: EVENTS // 2]))
        wait_for(lambda: _counts(port).get("processed", 0) >= EVENTS // 10,
                 timeout=60, what="the first worker to be in the middle of the stream")  # fmt: skip
        # The second half arrives just before SIGTERM, so input is always left to read: a fast
        # worker could otherwise have read all of it by the time the signal lands.
        run(produce(bootstrap, topic, orders[EVENTS // 2 :]))
        stopping = time.monotonic()
    finally:
        code = first.stop(timeout=60)
    assert code == 0, first.log_tail()
    assert time.monotonic() - stopping < 30
    left = _lag(deployment)
    assert 0 < left[deployment.settings.topic_orders] < EVENTS, "SIGTERM came too late or early"
    committed_input = EVENTS - left[deployment.settings.topic_orders]

    second = Process(["worker"], deployment.env, log_dir / "worker-2.log")
    try:
        wait_for(lambda: sum(_lag(deployment).values()) == 0 and _counts(port),
                 timeout=180, what="the second worker to catch up")  # fmt: skip
        counts = _counts(port)
    finally:
        assert second.stop(timeout=60) == 0, second.log_tail()
    # The second worker started at the committed offsets: nothing handled twice ...
    assert counts.get("processed", 0) == EVENTS - committed_input
    assert counts.get("duplicate", 0) == 0
    # ... and nothing lost: every person has all their orders, counted once.
    answers = _answers(deployment)
    assert [a["orders_count"] for a in answers] == [ORDERS_EACH] * PERSONS
    assert {a["value"]["lifetime_value"] for a in answers} == {10.0 * ORDERS_EACH}


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False
