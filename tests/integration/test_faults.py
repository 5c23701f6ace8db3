"""Faults on the real stack: the final state equals a clean run over the same events.

One simulated shop (orders, returns, refunds, cancellations, merges across channels) goes
through a clean deployment once; every fault scenario sends the same events to a deployment
of its own, does harm in the middle of the stream, lets it recover and compares: persons,
order counts, revenue, first and last orders, classifications and the campaign report must be
identical (``faults.py``), and no order may be lost or counted twice.
"""

from __future__ import annotations

import re
import shutil
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from faults import differences, lost_and_double, send, snapshot
from prometheus_client.parser import text_string_to_metric_families
from support import (
    KAFKA_LIBS,
    PROJECT_DIR,
    Deployment,
    Process,
    bestand_cli,
    make_deployment,
    run,
    wait_for,
)

from bestand.children import wait_caught_up
from bestand.kafka.topics import consumer_lag, ensure_topics
from bestand.simulate import simulate
from bestand.stack import LocalKafka, LocalRedis, free_port, free_ports

pytestmark = pytest.mark.integration

SHOP = simulate(persons=300, seed=21)
EVENTS = list(SHOP.events)
# A fault test sends the last events after the fault, so the fault always finds work in
# flight: one fast worker could otherwise finish the whole stream before it.
SPLIT = int(len(EVENTS) * 0.7)


@pytest.fixture(scope="module")
def clean_run(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Deployment, dict[str, Any]]:
    """The shop through one worker with nothing going wrong."""
    deployment = _deployment(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("clean"))
    worker = Process(["worker"], deployment.env, deployment.log_dir / "worker.log")
    try:
        run(send(deployment, EVENTS))
        _caught_up(deployment)
        state = run(snapshot(deployment, EVENTS))
    finally:
        assert worker.stop() == 0, worker.log_tail()
    assert not state["missing"]
    assert sum(p[1] for p in state["persons"].values()) > 500  # a shop with many orders
    return deployment, state


@pytest.fixture(scope="module")
def clean(clean_run: tuple[Deployment, dict[str, Any]]) -> dict[str, Any]:
    """The clean run's snapshot."""
    return clean_run[1]


def _raw_personal_data(events: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """What a shop sent in clear: e-mails, full names and streets (text) and phone digits."""
    texts: set[str] = set()
    digits: set[str] = set()

    def walk(value: Any, field: str = "") -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, key)
            if value.get("first_name") and value.get("last_name"):
                texts.add(f"{value['first_name']} {value['last_name']}".casefold())
        elif isinstance(value, str):
            if field == "email" and "@" in value:
                texts.add(value.strip().casefold())
            elif field == "phone":
                number = re.sub(r"\D", "", value)
                if len(number) >= 7:
                    digits.add(number)
                    if number.startswith("49"):
                        digits.add("0" + number[2:])  # the national form
            elif field == "street" and len(value) >= 6:
                texts.add(value.casefold())

    for event in events:
        walk(event)
    return texts, digits


def _redis_text(deployment: Deployment) -> str:
    """Every key and value under the deployment's prefix, as one case-folded text."""
    client = redis.Redis.from_url(deployment.settings.redis_url)
    parts: list[bytes] = []
    try:
        for key in client.scan_iter(match=f"{deployment.settings.redis_prefix}:*", count=2000):
            parts.append(key)
            kind = client.type(key)
            if kind == b"string":
                parts.append(client.get(key) or b"")
            elif kind == b"hash":
                for field, value in client.hgetall(key).items():
                    parts += [field, value]
            elif kind == b"set":
                parts += list(client.smembers(key))
            elif kind == b"list":
                parts += client.lrange(key, 0, -1)
            elif kind == b"zset":
                parts += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
    finally:
        client.close()
    return "\n".join(p.decode("utf-8", errors="replace") for p in parts).casefold()


def test_no_raw_personal_data_in_redis(clean_run: tuple[Deployment, dict[str, Any]]) -> None:
    deployment, _ = clean_run
    texts, digits = _raw_personal_data(EVENTS)
    assert len(texts) > 300
    assert len(digits) > 50
    # The scan finds a raw value when there is one: a canary key in clear text.
    canary_key = f"{deployment.settings.redis_prefix}:canary"
    canary = next(t for t in sorted(texts) if "@" in t)
    client = redis.Redis.from_url(deployment.settings.redis_url)
    try:
        client.hset(canary_key, "x", f'{{"e":"{canary}","p":"{min(digits)}"}}')
        seen = _redis_text(deployment)
        assert canary in seen
        assert min(digits) in set(re.findall(r"\d+", seen))
    finally:
        client.delete(canary_key)
        client.close()
    stored = _redis_text(deployment)
    assert len(stored) > 100_000  # the shop's state is there to be searched
    hits = sorted(text for text in texts if text in stored)
    runs = set(re.findall(r"\d+", stored))
    hits += sorted(number for number in digits if number in runs)
    print(f"\nPII scan: {len(texts) + len(digits)} raw values searched in {len(stored):,} "
          f"characters of Redis: {len(hits)} found")  # fmt: skip
    assert hits == []


def _deployment(kafka: str, redis: str, log_dir: Path) -> Deployment:
    made = make_deployment(kafka, redis, log_dir)
    made.env["BESTAND_BATCH_MAX_EVENTS"] = "50"  # many commits: a fault lands between them
    run(ensure_topics(made.settings))
    return made


def _caught_up(deployment: Deployment, timeout: float = 240) -> None:
    run(wait_caught_up(deployment.settings, [], len(EVENTS), report=lambda _: None,
                       give_up_after=timeout))  # fmt: skip


def _handled(port: int) -> float:
    """Events a worker handled so far (0 when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return 0.0
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "bestand_events_total"
    )


def _pending(deployment: Deployment) -> int:
    s = deployment.settings
    return sum(run(consumer_lag(s, s.app_id, list(s.input_topics))).values())


def _mid_stream(deployment: Deployment, port: int, share: float = 0.2) -> None:
    wait_for(lambda: _handled(port) >= share * len(EVENTS), timeout=120,
             what=f"{share:.0%} of the events to be handled")  # fmt: skip


def _compare(clean: dict[str, Any], deployment: Deployment, fault: str) -> None:
    state = run(snapshot(deployment, EVENTS))
    lost, double = lost_and_double(clean, state)
    print(f"\n{fault}: {len(EVENTS)} events, {lost} orders lost, {double} counted twice")
    assert differences(clean, state) == []
    assert (lost, double) == (0, 0)


def _kill(process: Process) -> None:
    process.popen.send_signal(signal.SIGKILL)
    process.popen.wait(timeout=30)


def test_worker_killed_mid_stream_and_restarted(
    clean: dict[str, Any], kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    deployment = _deployment(kafka_bootstrap, redis_url, tmp_path)
    killed_and_restarted(clean, deployment, tmp_path, "worker SIGKILL")


def killed_and_restarted(
    clean: dict[str, Any], deployment: Deployment, tmp_path: Path, fault: str
) -> None:
    """A worker killed with SIGKILL mid-stream, the rest of the stream sent while none runs,
    a new worker: working again within 10 s, and the end state the clean run's."""
    port = deployment.settings.worker_web_port
    first = Process(["worker"], deployment.env, tmp_path / "worker-1.log")
    try:
        run(send(deployment, EVENTS[:SPLIT]))
        _mid_stream(deployment, port)
    finally:
        _kill(first)
    run(send(deployment, EVENTS[SPLIT:]))  # arrives while no worker runs
    assert _pending(deployment) > 0, "the kill came after the stream was done"
    restarted = time.monotonic()
    second = Process(["worker"], deployment.env, tmp_path / "worker-2.log")
    try:
        # The group gives the dead member's partitions away after the session timeout
        # (BESTAND_KAFKA_SESSION_TIMEOUT_MS, 6 s), not after the broker's default of 45 s.
        wait_for(lambda: _handled(port) > 0, timeout=60, what="the restarted worker to work")
        resumed = time.monotonic() - restarted
        print(f"\n{fault}: processing again {resumed:.1f} s after its start")
        _caught_up(deployment)
    finally:
        assert second.stop() == 0, second.log_tail()
    _compare(clean, deployment, fault)
    assert resumed < 10


def test_one_of_two_workers_killed_during_a_rebalance(
    clean: dict[str, Any], kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    deployment = _deployment(kafka_bootstrap, redis_url, tmp_path)
    port = deployment.settings.worker_web_port
    first = Process(["worker"], deployment.env, tmp_path / "worker-1.log")
    second_env = {**deployment.env, "BESTAND_WORKER_WEB_PORT": str(free_port())}
    second: Process | None = None
    # The last events arrive during the rebalance.
    try:
        run(send(deployment, EVENTS[:SPLIT]))
        _mid_stream(deployment, port)
        second = Process(["worker"], second_env, tmp_path / "worker-2.log")  # rebalance starts
        time.sleep(2.0)  # the group is rebalancing: partitions move to the second worker
        run(send(deployment, EVENTS[SPLIT:]))
        _kill(first)
        assert _pending(deployment) > 0, "the kill came after the stream was done"
        _caught_up(deployment)
    finally:
        if first.popen.poll() is None:
            _kill(first)
        if second is not None:
            assert second.stop() == 0, second.log_tail()
    _compare(clean, deployment, "two workers, one SIGKILL during a rebalance")


def test_redis_restarted_mid_stream(
    clean: dict[str, Any], kafka_bootstrap: str, own_redis: LocalRedis, tmp_path: Path
) -> None:
    deployment = _deployment(kafka_bootstrap, own_redis.url, tmp_path)
    port = deployment.settings.worker_web_port
    worker = Process(["worker"], deployment.env, tmp_path / "worker.log")
    try:
        run(send(deployment, EVENTS[:SPLIT]))
        _mid_stream(deployment, port)
        own_redis.stop()  # SIGTERM: Redis writes its append-only file and exits
        run(send(deployment, EVENTS[SPLIT:]))  # arrives while Redis is away
        time.sleep(3)  # the worker retries with backoff meanwhile
        assert _pending(deployment) > 0, "Redis went away after the stream was done"
        own_redis.start()
        own_redis.wait_ready(30)  # loads the append-only file
        _caught_up(deployment)
        worker.assert_running()
    finally:
        assert worker.stop() == 0, worker.log_tail()
    _compare(clean, deployment, "Redis restarted (AOF)")


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[LocalKafka]:
    """A Kafka broker of this test alone, so stopping it harms no other test."""
    port, controller = free_ports(2)
    server = LocalKafka(tmp_path / "broker", port=port, controller_port=controller,
                        libs_dir=KAFKA_LIBS, project_dir=PROJECT_DIR,
                        log=lambda _: None)  # fmt: skip
    server.start()
    server.wait_ready(120)
    try:
        yield server
    finally:
        server.stop()


def test_kafka_broker_restarted_mid_stream(
    clean: dict[str, Any], own_kafka: LocalKafka, redis_url: str, tmp_path: Path
) -> None:
    deployment = _deployment(own_kafka.bootstrap, redis_url, tmp_path)
    port = deployment.settings.worker_web_port
    worker = Process(["worker"], deployment.env, tmp_path / "worker.log")
    try:
        run(send(deployment, EVENTS))
        _mid_stream(deployment, port)
        own_kafka.stop()
        time.sleep(3)
        own_kafka.start()
        own_kafka.wait_ready(120)
        wait_for(_restarted(deployment), timeout=120, what="the group to answer again")
        _caught_up(deployment)
    finally:
        assert worker.stop() == 0, worker.log_tail()
    _compare(clean, deployment, "Kafka broker restarted")


def _restarted(deployment: Deployment) -> Callable[[], bool]:
    def check() -> bool:
        try:
            _pending(deployment)
        except Exception:  # noqa: BLE001 - the coordinator is still being elected
            return False
        return True

    return check


def test_redis_lost_and_rebuilt_from_kafka(
    clean: dict[str, Any], kafka_bootstrap: str, own_redis: LocalRedis, tmp_path: Path
) -> None:
    deployment = _deployment(kafka_bootstrap, own_redis.url, tmp_path)
    worker = Process(["worker"], deployment.env, tmp_path / "worker-1.log")
    try:
        run(send(deployment, EVENTS))
        _caught_up(deployment)
    finally:
        assert worker.stop() == 0, worker.log_tail()
    # Redis is lost with everything in it: a new, empty server on the same port.
    own_redis.stop()
    shutil.rmtree(own_redis.data_dir)
    own_redis.start()
    own_redis.wait_ready(30)
    assert redis.Redis.from_url(own_redis.url).dbsize() == 0
    refused = bestand_cli(deployment, "rebuild")
    assert refused.returncode == 2  # asks for --yes
    rebuilt = bestand_cli(deployment, "rebuild", "--yes")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert f"{len(EVENTS):,} events to replay" in rebuilt.stdout
    replay = Process(["worker"], deployment.env, tmp_path / "worker-2.log")
    try:
        _caught_up(deployment)
    finally:
        assert replay.stop() == 0, replay.log_tail()
    _compare(clean, deployment, "Redis lost, rebuilt with bestand rebuild")
