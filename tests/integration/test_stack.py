"""The local stack on real servers: a Kafka broker and Redis in a tmp folder on free ports.

One stack is started for the module; every test first calls ``up()`` (a no-op when it runs),
so the tests do not depend on their order, and the test that stops it starts it again.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from support import KAFKA_LIBS, PROJECT_DIR

from bestand.stack import (
    LocalKafka,
    LocalRedis,
    LocalStack,
    StackError,
    free_port,
    free_ports,
    redis_answers,
)
from bestand.stack.processes import pid_alive, port_open

pytestmark = pytest.mark.integration


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _consume_one(bootstrap: str, topic: str) -> bytes | None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}.group",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    value: bytes | None = message.value
    return value


def _stack(root: Path, log: list[str], **ports: int) -> LocalStack:
    return LocalStack(
        root,
        project_dir=PROJECT_DIR,
        kafka_libs_dir=KAFKA_LIBS,
        log=log.append,
        **ports,
    )


@pytest.fixture(scope="module")
def messages() -> list[str]:
    return []


@pytest.fixture(scope="module")
def module_stack(
    tmp_path_factory: pytest.TempPathFactory, messages: list[str]
) -> Iterator[LocalStack]:
    kafka_port, controller_port, redis_port = free_ports(3)
    stack = _stack(
        tmp_path_factory.mktemp("stack"),
        messages,
        kafka_port=kafka_port,
        controller_port=controller_port,
        redis_port=redis_port,
    )
    try:
        stack.up(timeout=90)
        yield stack
    finally:
        stack.down()


@pytest.fixture
def stack(module_stack: LocalStack, messages: list[str]) -> LocalStack:
    module_stack.up(timeout=90)
    messages.clear()
    return module_stack


def test_up_makes_kafka_and_redis_answer(stack: LocalStack, unique_topic: str) -> None:
    topic = f"{unique_topic}.roundtrip"
    asyncio.run(_produce(stack.kafka_bootstrap, topic, b"hello"))
    assert asyncio.run(_consume_one(stack.kafka_bootstrap, topic)) == b"hello"

    with redis.Redis.from_url(stack.redis_url) as client:
        client.set("bestand:test", "ja")
        assert client.get("bestand:test") == b"ja"


def test_second_up_changes_nothing(stack: LocalStack, messages: list[str]) -> None:
    before = [(s.name, s.pid) for s in stack.status()]
    stack.up()
    assert [(s.name, s.pid) for s in stack.status()] == before
    assert sum("already running" in m for m in messages) >= 2
    assert not any(m.startswith("starting") for m in messages)


def test_status_reports_our_servers(stack: LocalStack) -> None:
    kafka, redis_status = stack.status()
    assert kafka.name == "Kafka"
    assert kafka.address == stack.kafka_bootstrap
    assert redis_status.name == "Redis"
    assert stack.redis_url == f"redis://{redis_status.address}/0"
    for status in (kafka, redis_status):
        assert status.managed
        assert status.running
        assert status.answering
        assert status.pid is not None
        assert pid_alive(status.pid)
        assert status.detail == "started by bestand"


def test_down_leaves_external_servers_alone(stack: LocalStack, tmp_path: Path) -> None:
    port = free_port()
    extra = subprocess.Popen(
        [
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(tmp_path)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not redis_answers(f"redis://127.0.0.1:{port}/0"):
            assert time.monotonic() < deadline, "the extra redis-server did not start"
            time.sleep(0.05)
        log: list[str] = []
        # Kafka of the module stack and the extra Redis: both running, neither started here.
        other = _stack(tmp_path / "other", log, kafka_port=stack.kafka.port, redis_port=port)
        other.up(timeout=30)
        for status in other.status():
            assert not status.managed
            assert status.pid is None
            assert status.running
            assert status.answering
            assert status.detail.startswith("external")
        assert sum("not started by bestand" in m for m in log) == 2
        assert not list((tmp_path / "other").rglob("*.pid"))

        other.down()
        assert extra.poll() is None
        assert redis_answers(f"redis://127.0.0.1:{port}/0")
        assert stack.kafka.is_answering()
    finally:
        extra.terminate()
        extra.wait(timeout=10)


def test_same_folder_with_other_ports_is_an_error(stack: LocalStack) -> None:
    """Changed ports in the settings must not look like "already running" on the new port."""
    log: list[str] = []
    kafka_port, redis_port = free_ports(2)
    moved = _stack(stack.root, log, kafka_port=kafka_port, redis_port=redis_port)
    for server, running in ((moved.kafka, stack.kafka), (moved.redis, stack.redis)):
        with pytest.raises(StackError, match=f"already runs on port {running.port} "):
            server.start()
        assert server.status().detail == (
            f"started by bestand on port {running.port}, not on {server.port} as configured"
        )
    with pytest.raises(StackError, match="run 'bestand stack down' first"):
        moved.up(timeout=5)
    assert stack.is_answering()


def test_port_held_by_a_silent_process_is_an_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        log: list[str] = []
        redis_server = LocalRedis(tmp_path, port=port, log=log.append)
        with pytest.raises(StackError, match=f"port {port} on 127.0.0.1 is taken"):
            redis_server.start()
        kafka = LocalKafka(
            tmp_path,
            port=port,
            libs_dir=KAFKA_LIBS,
            project_dir=PROJECT_DIR,
            log=log.append,
        )
        with pytest.raises(StackError, match=f"port {port} on 127.0.0.1 is taken"):
            kafka.start()
    assert not list(tmp_path.rglob("*.pid"))


def test_a_server_that_dies_during_start_reports_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "fake-redis-server"
    fake.write_text("#!/bin/sh\necho 'FATAL: cannot open the data folder' >&2\nexit 3\n")
    fake.chmod(0o755)
    server = LocalRedis(tmp_path, port=free_port(), executable=str(fake), log=lambda _m: None)
    assert server.start()
    with pytest.raises(StackError, match="exit code 3") as caught:
        server.wait_ready(20)
    assert "FATAL: cannot open the data folder" in str(caught.value)
    assert not server.pid_file.exists()


def test_down_stops_ours_and_keeps_the_data(
    stack: LocalStack, messages: list[str], unique_topic: str
) -> None:
    topic = f"{unique_topic}.kept"
    asyncio.run(_produce(stack.kafka_bootstrap, topic, b"kept"))
    with redis.Redis.from_url(stack.redis_url) as client:
        client.set("bestand:kept", "ja")
    pids = [s.pid for s in stack.status()]

    stack.down()
    for pid in pids:
        assert pid is not None
        assert not pid_alive(pid)
    assert not port_open(stack.kafka.port)
    assert not port_open(stack.redis.port)
    assert not stack.kafka.pid_file.exists()
    assert not stack.redis.pid_file.exists()
    assert all(s.detail == "stopped" for s in stack.status())
    assert (stack.kafka.data_dir / "meta.properties").exists()

    messages.clear()
    stack.up(timeout=90)
    assert not any("formatting" in m for m in messages)  # the data folder was kept
    assert asyncio.run(_consume_one(stack.kafka_bootstrap, topic)) == b"kept"
    with redis.Redis.from_url(stack.redis_url) as client:
        assert client.get("bestand:kept") == b"ja"
