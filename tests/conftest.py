"""Shared fixtures: a real Kafka broker and a real Redis server for the integration tests.

Where they come from, in this order, separately for Kafka and Redis:

1. ``BESTAND_TEST_KAFKA_BOOTSTRAP`` / ``BESTAND_TEST_REDIS_URL``: servers someone already runs.
2. A Docker engine that answers: testcontainers (imported only then).
3. Otherwise the project's own local stack (:mod:`bestand.stack`) in the session's tmp folder
   on free ports, reusing the Kafka jars in ``<project>/.local/kafka/libs`` (installed there
   on first use), stopped when the session ends.

``BESTAND_TEST_STACK=local`` or ``=docker`` skips the Docker probe and picks one of 2 and 3.
Servers are started once per session, only when a selected test needs them, and Kafka and
Redis start side by side.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis

from bestand.stack import LocalKafka, LocalRedis, free_ports

PROJECT_DIR = Path(__file__).resolve().parents[1]
#: Kafka jars shared by every test session (and by ``bestand stack up`` with default settings).
SHARED_KAFKA_LIBS = PROJECT_DIR / ".local" / "kafka" / "libs"

KAFKA_ENV = "BESTAND_TEST_KAFKA_BOOTSTRAP"
REDIS_ENV = "BESTAND_TEST_REDIS_URL"
STACK_ENV = "BESTAND_TEST_STACK"

_log = logging.getLogger("bestand.tests.stack")


def _docker_answers() -> bool:
    """Is there a Docker engine that answers within 5 s (CLI, else the default socket)?"""
    if shutil.which("docker") is not None:
        try:
            subprocess.run(
                ["docker", "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                timeout=5,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return True
    sock_path = "/var/run/docker.sock"
    if not Path(sock_path).exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(sock_path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in sock.recv(64)
    except OSError:
        return False


def _testcontainers_importable() -> bool:
    try:
        import testcontainers  # noqa: F401 - optional, only with Docker
    except ImportError:
        return False
    return True


def _choose_backend() -> str:
    forced = os.environ.get(STACK_ENV, "").strip().lower()
    if forced in {"local", "docker"}:
        return forced
    if forced:
        raise pytest.UsageError(f"{STACK_ENV} must be 'local' or 'docker', not {forced!r}")
    if _docker_answers():
        if _testcontainers_importable():
            return "docker"
        _log.warning("Docker answers but testcontainers is not installed: using the local stack")
    return "local"


def _needed_services(session: pytest.Session) -> set[str]:
    """Which of Kafka and Redis the selected tests use, to start both at once."""
    names: set[str] = set()
    for item in session.items:
        names.update(getattr(item, "fixturenames", ()))
    return names & {"kafka_bootstrap", "redis_url"}


class _Services:
    """The servers of one test session: started on first use, stopped at the end."""

    def __init__(self, tmp_root: Path) -> None:
        self._tmp_root = tmp_root
        self._backend: str | None = None
        self.kafka_bootstrap: str | None = os.environ.get(KAFKA_ENV) or None
        self.redis_url: str | None = os.environ.get(REDIS_ENV) or None
        self._cleanups: list[Callable[[], object]] = []

    def ensure(self, wanted: set[str]) -> None:
        """Start those of ``wanted`` that are not there yet, side by side."""
        missing = {
            name
            for name in wanted
            if (name == "kafka_bootstrap" and self.kafka_bootstrap is None)
            or (name == "redis_url" and self.redis_url is None)
        }
        if not missing:
            return
        if self._backend is None:
            self._backend = _choose_backend()
        _log.info("starting %s with %s", sorted(missing), self._backend)
        if self._backend == "docker":
            self._start_containers(missing)
        else:
            self._start_local(missing)

    def _start_local(self, missing: set[str]) -> None:
        root = self._tmp_root
        kafka_port, controller_port, redis_port = free_ports(3)
        kafka = (
            LocalKafka(
                root,
                port=kafka_port,
                controller_port=controller_port,
                libs_dir=SHARED_KAFKA_LIBS,
                project_dir=PROJECT_DIR,
                log=_log.info,
            )
            if "kafka_bootstrap" in missing
            else None
        )
        redis_server = (
            LocalRedis(root, port=redis_port, project_dir=PROJECT_DIR, log=_log.info)
            if "redis_url" in missing
            else None
        )
        servers = [server for server in (kafka, redis_server) if server is not None]
        for server in servers:
            self._cleanups.append(server.stop)
            # start() returns once the process runs, so Kafka's JVM starts while Redis does.
            server.start()
        for server in reversed(servers):
            server.wait_ready(120.0)
        if kafka is not None:
            self.kafka_bootstrap = kafka.bootstrap
        if redis_server is not None:
            self.redis_url = redis_server.url

    def _start_containers(self, missing: set[str]) -> None:
        def kafka_container() -> tuple[Any, str]:
            try:
                from testcontainers.community.kafka import KafkaContainer
            except ImportError:  # testcontainers before the community split
                from testcontainers.kafka import KafkaContainer
            container = KafkaContainer().with_kraft()
            container.start()
            return container, str(container.get_bootstrap_server())

        def redis_container() -> tuple[Any, str]:
            try:
                from testcontainers.community.redis import RedisContainer
            except ImportError:
                from testcontainers.redis import RedisContainer
            container = RedisContainer("redis:7")
            container.start()
            host = container.get_container_host_ip()
            return container, f"redis://{host}:{container.get_exposed_port(6379)}/0"

        starters = {"kafka_bootstrap": kafka_container, "redis_url": redis_container}
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="testcontainers") as pool:
            futures = {name: pool.submit(starters[name]) for name in sorted(missing)}
            errors: list[BaseException] = []
            for name, future in futures.items():
                try:
                    container, address = future.result()
                except Exception as exc:  # noqa: BLE001 - collected, raised after cleanup setup
                    errors.append(exc)
                    continue
                self._cleanups.append(container.stop)
                setattr(self, name, address)
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Stop what this session started, newest first; keep going when one fails."""
        while self._cleanups:
            cleanup = self._cleanups.pop()
            try:
                cleanup()
            except Exception:  # noqa: BLE001 - the other servers must still be stopped
                _log.exception("stopping a test server failed")


@pytest.fixture(scope="session")
def _services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Services]:
    services = _Services(tmp_path_factory.mktemp("stack"))
    try:
        yield services
    finally:
        services.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest, _services: _Services) -> str:
    """Bootstrap servers of a real Kafka broker, the same for the whole session."""
    _services.ensure(_needed_services(request.session) | {"kafka_bootstrap"})
    assert _services.kafka_bootstrap is not None
    return _services.kafka_bootstrap


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest, _services: _Services) -> str:
    """URL of a real Redis server, the same for the whole session."""
    _services.ensure(_needed_services(request.session) | {"redis_url"})
    assert _services.redis_url is not None
    return _services.redis_url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A sync client on an emptied database (FLUSHDB before the test)."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        with contextlib.suppress(redis.RedisError):
            client.close()


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> str:
    """A topic name prefix no other test (or earlier run on the same broker) uses."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-.")[:80]
    return f"test.{name}.{uuid.uuid4().hex[:8]}"
