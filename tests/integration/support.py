"""Helpers of the integration tests: isolated deployments, child processes, Kafka I/O.

Each test module gets its own topics, consumer group and Redis key prefix, so modules never
see each other's data even on one broker and one Redis.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bestand.access import SCOPES
from bestand.namespace import TOPIC_KINDS
from bestand.settings import Settings
from bestand.stack import free_port

T = TypeVar("T")

#: The checkout under test, and the Kafka jars its install script fetched.
PROJECT_DIR = Path(__file__).resolve().parents[2]
KAFKA_LIBS = PROJECT_DIR / ".local" / "kafka" / "libs"


@dataclass
class Deployment:
    """Settings of one isolated bestand deployment on the shared servers."""

    env: dict[str, str]
    settings: Settings
    log_dir: Path

    def topic(self, kind: str) -> str:
        """Name of the input topic for ``clickstream``, ``orders``, ``email`` or ``customer``."""
        return str(getattr(self.settings, f"topic_{kind}"))


def make_deployment(kafka_bootstrap: str, redis_url: str, log_dir: Path) -> Deployment:
    """Unique topics, group and key prefix for one test module."""
    tag = uuid.uuid4().hex[:8]
    env = {
        "BESTAND_ENV": "test",
        "BESTAND_HMAC_SECRET": f"test-secret-{tag}-0123456789",
        "BESTAND_API_KEYS": ",".join(f"{scope}-key-{tag}:{scope}" for scope in SCOPES),
        "BESTAND_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "BESTAND_REDIS_URL": redis_url,
        "BESTAND_REDIS_PREFIX": f"t{tag}",
        "BESTAND_APP_ID": f"bestand-test-{tag}",
        "BESTAND_TOPIC_PARTITIONS": "2",
        "BESTAND_WORKER_WEB_PORT": str(free_port()),
        "BESTAND_API_PORT": str(free_port()),
    }
    for kind in TOPIC_KINDS:
        env[f"BESTAND_TOPIC_{kind.upper()}"] = f"t{tag}.{kind}"
    settings = Settings(
        _env_file=None, **{k.removeprefix("BESTAND_").lower(): v for k, v in env.items()}
    )
    log_dir.mkdir(parents=True, exist_ok=True)
    return Deployment(env=env, settings=settings, log_dir=log_dir)


def bestand_cli(
    deployment: Deployment, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``bestand ARGS`` against the deployment; its output, never an exception."""
    return subprocess.run(
        [sys.executable, "-m", "bestand", *args],
        env={**os.environ, **deployment.env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ping_until_up(
    client: redis.Redis, server: subprocess.Popen[bytes], timeout: float = 20
) -> None:
    """Wait until a redis-server started by a test answers PING through ``client``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
        except redis.ConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        else:
            return


@contextmanager
def redis_with_user(
    folder: Path,
    user: str,
    password: str,
    listen: Sequence[str],
    **client_options: Any,
) -> Iterator[redis.Redis]:
    """A redis-server of one test with the default user off and ``user`` on; yields a client
    of that user (``listen``: the port options, ``client_options``: TLS and the like)."""
    server = subprocess.Popen(
        ["redis-server", *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--user", "default", "off",
         "--user", user, "on", f">{password}", "~*", "&*", "+@all"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(username=user, password=password, **client_options)
    try:
        ping_until_up(client, server)
        yield client
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=20)


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine from a sync test."""
    return asyncio.run(coro)  # type: ignore[arg-type]


def wait_for(check: Callable[[], T], *, timeout: float = 60.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


async def produce(
    bootstrap: str, topic: str, values: list[bytes], key: bytes | None = None
) -> None:
    """Send raw values to a topic and wait until the broker has them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def consume_all(bootstrap: str, topic: str, expect: int, within: float = 30) -> list[Any]:
    """Read at least ``expect`` messages of a topic from its start (JSON values)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    out: list[Any] = []
    try:
        deadline = time.monotonic() + within
        while len(out) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                out.extend(orjson.loads(m.value) for m in messages)
    finally:
        await consumer.stop()
    return out


async def record_at(bootstrap: str, topic: str, partition: int, offset: int) -> bytes | None:
    """The value of one record, read by where it is."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        found = await consumer.getmany(tp, timeout_ms=5000, max_records=1)
        records = found.get(tp, [])
        return records[0].value if records and records[0].offset == offset else None
    finally:
        await consumer.stop()


class Process:
    """A ``python -m bestand ...`` child process with its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_file: Path) -> None:
        self.log_file = log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "bestand", *args],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the process's output, for failure messages."""
        text = self.log_file.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def assert_running(self) -> None:
        """Fail the test with the log when the process has died."""
        if self.popen.poll() is not None:
            pytest.fail(f"process exited with {self.popen.returncode}:\n{self.log_tail()}")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; return the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


async def process_events(
    settings: Settings, topic: str, events: Sequence[dict[str, Any]], first_offset: int = 0
) -> None:
    """Put ``events`` through the worker's batch processor one by one (real Redis, no Kafka):
    each a message of ``topic`` at the next offset."""
    from bestand.ops.metrics import WorkerMetrics
    from bestand.store import connect
    from bestand.stream.messages import Incoming
    from bestand.stream.worker import processor_for

    client = connect(settings.redis_url)
    processor = processor_for(settings, client, WorkerMetrics())
    try:
        for n, event in enumerate(events):
            message = Incoming(topic, 0, first_offset + n, None, orjson.dumps(event))
            await processor.process([message])
    finally:
        await client.aclose()


def lookup(deployment: Deployment, **identifier: str) -> dict[str, Any]:
    """Answer a lookup straight from Redis, with the code the HTTP API uses."""
    from bestand.api import create_api

    ((name, value),) = identifier.items()

    async def go() -> dict[str, Any]:
        api = create_api(deployment.settings)
        try:
            return await api.service.lookup(name, value)
        finally:
            await api.close()

    return run(go())
