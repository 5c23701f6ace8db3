"""Operations on the real stack: a worker and an API scraped while a burst goes through.

Lag rises with the burst and falls to zero, as Prometheus and ``bestand status`` see it;
throughput and latency series carry sensible values; heartbeats, readiness and the probes
answer; ``promtool check metrics`` accepts both scrapes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import orjson
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from support import Deployment, Process, bestand_cli, make_deployment, produce, run, wait_for

from bestand.kafka.topics import ensure_topics

pytestmark = pytest.mark.integration

BURST = 6000  # seconds of work for one worker in small batches: the watch sees the lag


@pytest.fixture(scope="module")
def ops(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, Process, Process]]:
    deployment = make_deployment(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("ops"))
    deployment.env["BESTAND_OPS_INTERVAL_SECONDS"] = "0.5"
    deployment.env["BESTAND_READY_MAX_LAG"] = "0"
    deployment.env["BESTAND_LOG_FORMAT"] = "json"
    # Batches of 20: the burst takes 300 batches, seconds of work, not a fraction of a second,
    # so the worker's lag probe (every 0.5 s) sees it before it is gone.
    deployment.env["BESTAND_BATCH_MAX_EVENTS"] = "20"
    run(ensure_topics(deployment.settings))
    worker = Process(["worker"], deployment.env, deployment.log_dir / "worker.log")
    api = Process(["api", "--loglevel", "warning"], deployment.env, deployment.log_dir / "api.log")
    try:
        yield deployment, worker, api
    finally:
        assert worker.stop() == 0, worker.log_tail()
        assert api.stop() in (0, -15), api.log_tail()


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - http only
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _sum(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and all((k, v) in sample_labels for k, v in labels.items())
    )


def _order(n: int) -> bytes:
    return orjson.dumps(
        {
            "type": "order_placed",
            "event_id": f"ops-{n}",
            "event_time": "2026-11-20T10:00:00Z",
            "order_id": f"ops-order-{n}",
            "total": "19.90",
            "currency": "EUR",
            "channel": "web",
            "customer": {"guest": True, "email": f"ops.burst.{n % 300}@example.com"},
        }
    )


def test_a_burst_is_seen_rising_and_falling_to_zero(
    ops: tuple[Deployment, Process, Process],
) -> None:
    deployment, worker, api = ops
    web, api_port = deployment.settings.worker_web_port, deployment.settings.api_port
    wait_for(lambda: _get(web, "/ready")[0] == 200, timeout=90, what="the worker to be ready")
    wait_for(lambda: _get(api_port, "/ready")[0] == 200, timeout=30, what="the API to be ready")
    assert bestand_cli(deployment, "health", "worker", "--ready").returncode == 0
    assert bestand_cli(deployment, "health", "api").returncode == 0

    # `bestand status` follows along (a JSON line every 0.2 s) while the burst goes in.
    watcher = subprocess.Popen(
        [sys.executable, "-m", "bestand", "status", "--watch", "0.2", "--json"],
        env={**os.environ, **deployment.env}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    assert watcher.stdout is not None
    first = json.loads(watcher.stdout.readline())  # the watch has begun
    assert first["lag"] == 0
    run(produce(deployment.settings.kafka_bootstrap, deployment.topic("orders"),
                [_order(n) for n in range(BURST)]))  # fmt: skip
    seen: list[int] = []
    peak = [0.0]  # the lag on the worker's /metrics, scraped alongside
    deadline = time.monotonic() + 120
    try:
        for line in watcher.stdout:
            if time.monotonic() > deadline:
                break
            seen.append(json.loads(line)["lag"])
            scraped = _sum(_samples(_get(web, "/metrics")[1]), "bestand_consumer_lag_messages")
            peak[0] = max(peak[0], scraped)
            if max(seen) > 0 and seen[-1] == 0:
                break
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)
    assert max(seen) > 0, f"bestand status never showed the burst as lag: {seen}"
    assert seen[-1] == 0, f"the lag did not fall back to zero: {seen}"

    # The burst showed as lag on the worker's /metrics too, and that falls to zero as well.
    def drained() -> bool:
        samples = _samples(_get(web, "/metrics")[1])
        lag = _sum(samples, "bestand_consumer_lag_messages")
        peak[0] = max(peak[0], lag)
        consumed = _sum(samples, "bestand_events_consumed_total", topic=deployment.topic("orders"))
        return consumed >= BURST and lag == 0 and peak[0] > 0

    wait_for(drained, timeout=120, what="the lag to rise and fall back to zero")
    status = bestand_cli(deployment, "status", "--json")
    assert status.returncode == 0, status.stderr
    snapshot = json.loads(status.stdout)
    assert snapshot["lag"] == 0
    orders = [p for p in snapshot["partitions"] if p["topic"] == deployment.topic("orders")]
    assert sum(p["committed"] or 0 for p in orders) == BURST  # offsets committed as usual
    assert [w["ready"] for w in snapshot["workers"]] == [True]
    runs = "module" if _has_module(deployment.settings.redis_url) else "lua"
    assert snapshot["redis_scripts"] == runs
    assert snapshot["last_event_age_seconds"] is not None
    assert 0 <= snapshot["last_event_age_seconds"] < 120

    # 300 distinct e-mails: 300 persons; each has its e-mail (and order ids) in the graph.
    # A count publishes when a pass of the key space completes: a pass that began during the
    # burst counts part of it, the next ones count all.
    def counted() -> tuple[float, float] | None:
        found = _samples(_get(web, "/metrics")[1])
        persons = _sum(found, "bestand_persons")
        return (persons, _sum(found, "bestand_identifiers")) if persons == 300 else None

    # A pass examines every key of the Redis, 5,000 a tick: a Redis that holds other keys
    # besides (a developer's long-running stack) takes longer per pass.
    held = redis.Redis.from_url(deployment.settings.redis_url).dbsize()
    interval = float(deployment.env["BESTAND_OPS_INTERVAL_SECONDS"])
    within = 30 + 2 * math.ceil(held / 5000) * interval
    persons, identifiers = wait_for(counted, timeout=within, what="the census to count 300 persons")
    assert persons == 300
    assert identifiers >= 300
    worker_text = _get(web, "/metrics")[1]
    samples = _samples(worker_text)
    assert peak[0] > 0
    assert _sum(samples, "bestand_events_total", outcome="processed") == BURST
    age_count = _sum(samples, "bestand_event_age_seconds_count")
    age_sum = _sum(samples, "bestand_event_age_seconds_sum")
    assert age_count == BURST
    assert 0 < age_sum / age_count < 120  # seconds between producing and handling
    for phase in ("decode", "resolve", "apply", "produce", "commit", "batch"):
        assert _sum(samples, "bestand_batch_processing_seconds_count", stage=phase) >= 1, phase
    changes = deployment.settings.topic_profile_changes
    assert _sum(samples, "bestand_events_produced_total", topic=changes) >= 300  # customers
    # One worker holds every partition of the four input topics.
    inputs = len(deployment.settings.input_topics) * deployment.settings.topic_partitions
    assert _sum(samples, "bestand_assigned_partitions") == inputs
    # The tests' Redis has bestand's module where it is built: the worker runs its commands.
    mirrored = 4 if _has_module(deployment.settings.redis_url) else 0
    assert _sum(samples, "bestand_redis_module_scripts") == mirrored
    assert _sum(samples, "bestand_redis_used_memory_bytes") > 1_000_000
    assert _sum(samples, "bestand_worker_heartbeat_timestamp_seconds") > 1.7e9
    assert _sum(samples, "bestand_redis_command_seconds_count", operation="ping") >= 1

    key = next(
        k.split(":")[0] for k in deployment.env["BESTAND_API_KEYS"].split(",") if k.endswith(":ads")
    )
    auth = {"Authorization": f"Bearer {key}"}
    for n in range(20):
        status_code, body = _get(api_port, f"/v1/lookup?email=ops.burst.{n}%40example.com", auth)
        assert status_code == 200
        assert orjson.loads(body)["existing_customer"] is True
    assert _get(api_port, "/v1/lookup?nonsense=1", auth)[0] == 400
    api_text = _get(api_port, "/metrics")[1]
    api_samples = _samples(api_text)
    ok = _sum(
        api_samples, "bestand_http_request_duration_seconds_count", endpoint="lookup", status="200"
    )
    bad = _sum(
        api_samples, "bestand_http_request_duration_seconds_count", endpoint="lookup", status="400"
    )
    assert (ok, bad) == (20, 1)
    seconds = _sum(
        api_samples, "bestand_http_request_duration_seconds_sum", endpoint="lookup", status="200"
    )
    assert 0 < seconds / ok < 0.5

    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run deploy/local/install-promtool.sh"
    for text in (worker_text, api_text):
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    worker.assert_running()
    api.assert_running()


def test_health_fails_without_a_worker_and_the_heartbeat_leaves_with_it(
    ops: tuple[Deployment, Process, Process],
) -> None:
    deployment, worker, _ = ops
    wait_for(lambda: bestand_cli(deployment, "health", "worker").returncode == 0, timeout=60,
             what="a worker heartbeat")  # fmt: skip
    # A bad event: its log line is JSON naming the message it came from.
    run(produce(deployment.settings.kafka_bootstrap, deployment.topic("orders"), [b"{oops"]))
    web = deployment.settings.worker_web_port

    def dead_lettered() -> bool:
        samples = _samples(_get(web, "/metrics")[1])
        return _sum(samples, "bestand_dead_letters_total", reason="invalid_json") == 1

    wait_for(dead_lettered, timeout=60, what="the bad event to be dead-lettered")
    assert worker.stop() == 0, worker.log_tail()
    lines = [json.loads(line) for line in worker.log_file.read_text().splitlines() if line.strip()]
    assert lines, "the worker logged nothing"
    assert all({"ts", "level", "logger", "message"} <= line.keys() for line in lines)
    (dead,) = [line for line in lines if line.get("reason") == "invalid_json"]
    assert dead["level"] == "warning"
    assert dead["topic"] == deployment.topic("orders")
    assert dead["partition"] in range(deployment.settings.topic_partitions)
    assert f"[{dead['partition']}]@{dead['offset']}" in dead["message"]
    assert dead["batch"] >= 1  # bound for the batch it came in
    # The worker removes its heartbeat when it stops; the probe fails at once.
    down = bestand_cli(deployment, "health", "worker")
    assert down.returncode == 1
    assert "no worker heartbeat" in down.stdout


def _has_module(url: str) -> bool:
    """Whether this Redis has bestand's module loaded."""
    try:
        redis.Redis.from_url(url).execute_command("bestand.scripts")
    except redis.ResponseError:
        return False
    return True
