"""Back-pressure: with Redis stalled, the API answers 503 at once instead of queueing, the
worker waits and retries instead of dropping or crashing, and both recover by themselves."""

from __future__ import annotations

import http.client
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from support import Process, make_deployment, produce, run, wait_for

from bestand.api import create_api
from bestand.kafka.topics import ensure_topics
from bestand.stack import LocalRedis

pytestmark = pytest.mark.integration


def _get(port: int, path: str, key: str) -> tuple[int, dict[str, str], float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        body = orjson.loads(response.read())
        return response.status, body, time.monotonic() - started
    finally:
        conn.close()


def test_a_stalled_redis_gets_quick_503s_and_everything_recovers(
    own_redis: LocalRedis, kafka_bootstrap: str, tmp_path: Path
) -> None:
    deployment = make_deployment(kafka_bootstrap, own_redis.url, tmp_path)
    deployment.env["BESTAND_API_REDIS_TIMEOUT_MS"] = "200"
    deployment.env["BESTAND_API_MAX_WAITING_LOOKUPS"] = "4"
    run(ensure_topics(deployment.settings))
    key = next(k for k in deployment.env["BESTAND_API_KEYS"].split(",") if k.endswith(":ads"))
    key = key.rsplit(":", 1)[0]
    port = deployment.settings.api_port
    api = Process(["api", "--loglevel", "warning"], deployment.env, tmp_path / "api.log")
    worker = Process(["worker"], deployment.env, tmp_path / "worker.log")
    path = "/v1/lookup?email=stall%40example.com"
    try:
        wait_for(lambda: _try(port, path, key) == 200, timeout=30, what="the API")
        pid = own_redis.managed_pid()
        assert pid
        os.kill(pid, signal.SIGSTOP)  # Redis stalls: connections open, no answers
        customer = {"guest": True, "email": "stall@example.com"}
        order = {"type": "order_placed", "event_id": "stall-1", "order_id": "stall-o1",
                 "event_time": "2026-10-01T10:00:00Z", "total": "15.00", "currency": "EUR",
                 "channel": "web", "customer": customer}  # fmt: skip
        run(produce(deployment.settings.kafka_bootstrap, deployment.topic("orders"),
                    [orjson.dumps(order)]))  # fmt: skip
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(lambda _: _get(port, path, key), range(20)))
        statuses = {status for status, _, _ in answers}
        errors = {body["error"] for _, body, _ in answers}
        slowest = max(seconds for _, _, seconds in answers)
        assert statuses == {503}, answers
        assert errors <= {"unavailable", "overloaded"}
        assert "overloaded" in errors  # more than 4 waiting: turned away at once
        assert slowest < 2.0, f"a 503 took {slowest:.2f} s"
        time.sleep(3)  # the worker keeps retrying meanwhile
        worker.assert_running()
        os.kill(pid, signal.SIGCONT)  # Redis is back
        wait_for(lambda: _try(port, path, key) == 200, timeout=30, what="the API to recover")

        async def answer() -> bool:
            service = create_api(deployment.settings)
            try:
                found = await service.service.lookup("email", "stall@example.com")
                return bool(found["existing_customer"])
            finally:
                await service.close()

        wait_for(lambda: run(answer()), timeout=60, what="the worker to write the order")
        worker.assert_running()
    finally:
        stalled = own_redis.managed_pid()
        if stalled:
            os.kill(stalled, signal.SIGCONT)  # never leave Redis stopped for the fixture
        assert worker.stop() == 0, worker.log_tail()
        assert api.stop() in (0, -15), api.log_tail()


def _try(port: int, path: str, key: str) -> int:
    try:
        return _get(port, path, key)[0]
    except OSError:
        return 0
