"""Redis going away does not lose events: the worker retries the same event until it is back."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from support import (
    Deployment,
    Process,
    make_deployment,
    produce,
    run,
    wait_for,
)

from bestand.api import create_api
from bestand.kafka.topics import ensure_topics
from bestand.stack import LocalRedis

pytestmark = pytest.mark.integration


def orders(first: int, count: int) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "type": "order_placed",
                "event_id": f"out-{n}",
                "event_time": "2026-11-20T10:00:00Z",
                "order_id": f"out-o{n}",
                "total": "10.00",
                "currency": "EUR",
                "channel": "web",
                "customer": {"guest": True, "email": f"outage{n}@example.com"},
            }
        )
        for n in range(first, first + count)
    ]


def known_customers(deployment: Deployment, count: int) -> int:
    async def go() -> int:
        api = create_api(deployment.settings)
        try:
            answers = await api.service.lookup_many(
                [("email", f"outage{n}@example.com") for n in range(count)]
            )
        finally:
            await api.close()
        return sum(1 for item in answers if item["answer"]["existing_customer"])

    return run(go())


def test_events_produced_while_redis_is_down_are_processed_when_it_is_back(
    kafka_bootstrap: str, own_redis: LocalRedis, tmp_path: Path
) -> None:
    deployment = make_deployment(kafka_bootstrap, own_redis.url, tmp_path / "logs")
    run(ensure_topics(deployment.settings))
    worker = Process(["worker"], deployment.env, deployment.log_dir / "worker.log")
    try:
        topic = deployment.topic("orders")
        run(produce(kafka_bootstrap, topic, orders(0, 20)))
        wait_for(lambda: known_customers(deployment, 20) == 20, what="the first 20 orders")

        own_redis.stop()
        run(produce(kafka_bootstrap, topic, orders(20, 20)))
        wait_for(
            lambda: "retrying in" in worker.log_tail(200),
            timeout=30,
            what="the worker to notice Redis is gone",
        )
        worker.assert_running()

        own_redis.start()
        own_redis.wait_ready(30)
        wait_for(
            lambda: known_customers(deployment, 40) == 40,
            timeout=90,
            what="all 40 orders after Redis came back",
        )
        worker.assert_running()
    finally:
        assert worker.stop() == 0, worker.log_tail()
