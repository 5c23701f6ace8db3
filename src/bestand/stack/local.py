"""Kafka and Redis together: what ``bestand stack up|down|status`` and the tests drive."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bestand.stack.cluster import LocalRedisCluster
from bestand.stack.exceptions import StackError
from bestand.stack.kafka import LocalKafka
from bestand.stack.processes import ComponentStatus, LogFn
from bestand.stack.redis import LocalRedis

if TYPE_CHECKING:
    from bestand.settings import Settings

__all__ = ["LocalStack", "kafka_port_from_bootstrap", "redis_port_from_url"]

#: Hosts that mean "this machine"; the stack listens on 127.0.0.1 only.
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


def kafka_port_from_bootstrap(bootstrap: str) -> int:
    """Port of the first ``host:port`` in a bootstrap list; the host must be this machine."""
    first = bootstrap.split(",")[0].strip()
    first = first.removeprefix("kafka://")
    host, sep, port = first.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise StackError(f"cannot read host:port from Kafka bootstrap {bootstrap!r}")
    if host not in _LOCAL_HOSTS:
        raise StackError(
            f"Kafka bootstrap {bootstrap!r} is not on this machine; the local stack runs on "
            "127.0.0.1 (set BESTAND_KAFKA_BOOTSTRAP=127.0.0.1:<port>)"
        )
    return int(port)


def redis_port_from_url(url: str) -> int:
    """Port of a ``redis://`` URL (6379 when it names none); the host must be this machine."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise StackError(f"the local stack serves redis:// URLs only, not {url!r}")
    try:
        port = parts.port or 6379
    except ValueError as exc:
        raise StackError(f"cannot read the port of Redis URL {url!r}") from exc
    if (parts.hostname or "localhost") not in _LOCAL_HOSTS:
        raise StackError(
            f"Redis URL {url!r} is not on this machine; the local stack runs on 127.0.0.1 "
            "(set BESTAND_REDIS_URL=redis://127.0.0.1:<port>/0)"
        )
    return port


class LocalStack:
    """The development stack: one Kafka broker and one Redis server under ``root``.

    ``up`` is idempotent and ``down`` stops only what ``up`` started (pid files), so servers
    that were already there (a system Redis, a Kafka of another checkout) are used and left
    alone.
    """

    def __init__(
        self,
        root: Path,
        *,
        kafka_port: int = 9092,
        controller_port: int | None = None,
        redis_port: int = 6379,
        project_dir: Path | None = None,
        kafka_libs_dir: Path | None = None,
        log: LogFn = print,
    ) -> None:
        self.root = root.absolute()
        self._log = log
        self._project_dir = project_dir
        self.kafka = LocalKafka(
            self.root,
            port=kafka_port,
            controller_port=controller_port,
            libs_dir=kafka_libs_dir,
            project_dir=project_dir,
            log=log,
        )
        self.redis = LocalRedis(self.root, port=redis_port, project_dir=project_dir, log=log)

    @classmethod
    def from_settings(cls, settings: Settings, *, log: LogFn = print) -> LocalStack:
        """The stack that serves ``settings.kafka_bootstrap`` and ``settings.redis_url``."""
        return cls(
            settings.stack_dir,
            kafka_port=kafka_port_from_bootstrap(settings.kafka_bootstrap),
            redis_port=redis_port_from_url(settings.redis_url),
            log=log,
        )

    @property
    def kafka_bootstrap(self) -> str:
        """Bootstrap servers for Kafka clients."""
        return self.kafka.bootstrap

    @property
    def redis_url(self) -> str:
        """redis:// URL for Redis clients."""
        return self.redis.url

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One up or down at a time per stack folder (two terminals, parallel test runs)."""
        with (self.root / "stack.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def cluster(self, masters: int, first_port: int = 7001) -> LocalRedisCluster:
        """A Redis Cluster of ``masters`` nodes on ports from ``first_port`` in this stack's
        folder (``bestand stack up --redis-cluster N``)."""
        ports = list(range(first_port, first_port + masters))
        return LocalRedisCluster(
            self.root, ports=ports, project_dir=self._project_dir, log=self._log
        )

    def up(self, timeout: float = 120.0) -> None:
        """Install what is missing, start what is not running, wait until both answer.

        ``timeout`` bounds the wait for both to answer once launched; installing (a first
        Maven download, ~20 s) comes before it.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        # Locked while deciding and launching only: a 'down' from another terminal must not
        # wait for a broker that never gets ready.
        with self._locked():
            # Kafka first: its JVM warms up while Redis starts and is checked.
            started_kafka = self.kafka.start()
            try:
                started_redis = self.redis.start()
            except StackError:
                if started_kafka:  # leave nothing half-started behind
                    self.kafka.stop()
                raise
        deadline = time.monotonic() + timeout
        self.redis.wait_ready(max(deadline - time.monotonic(), 1.0))
        self.kafka.wait_ready(max(deadline - time.monotonic(), 1.0))
        if started_redis or started_kafka:
            self._log(f"stack up: Kafka on {self.kafka_bootstrap}, Redis on {self.redis_url}")
        else:
            self._log("stack already running: nothing to start")

    def down(self) -> None:
        """Stop the servers this stack started; data, logs and external servers stay."""
        if not self.root.is_dir():
            self._log(f"nothing to stop: {self.root} does not exist")
            return
        with self._locked():
            self.kafka.stop()
            self.redis.stop()
            cluster = LocalRedisCluster.existing(self.root, log=self._log)
            if cluster is not None:
                cluster.stop()

    def status(self) -> list[ComponentStatus]:
        """Kafka's and Redis' status, in that order, then the cluster nodes' (if any)."""
        cluster = LocalRedisCluster.existing(self.root, log=self._log)
        nodes = cluster.status() if cluster is not None else []
        return [self.kafka.status(), self.redis.status(), *nodes]

    def is_answering(self) -> bool:
        """Do both servers answer a real client call?"""
        return self.kafka.is_answering() and self.redis.is_answering()
