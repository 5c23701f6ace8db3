"""Fixtures that run bestand's own processes (worker, API) against the session's real servers.

Each test module gets its own topics, consumer group and Redis key prefix, so modules never
see each other's data even on one broker and one Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import PROJECT_DIR, Deployment, Process, make_deployment, run

from bestand.kafka.topics import ensure_topics
from bestand.stack import LocalRedis, free_port
from bestand.stack.cluster import LocalRedisCluster, free_cluster_ports


@pytest.fixture(scope="module")
def deployment(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Deployment:
    """An isolated deployment (topics, group, key prefix) for one test module."""
    made = make_deployment(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("logs"))
    run(ensure_topics(made.settings))
    return made


@pytest.fixture(scope="module")
def worker(deployment: Deployment) -> Iterator[Process]:
    """A running ``bestand worker`` of the module's deployment, stopped afterwards."""
    process = Process(
        ["worker", "--loglevel", "info"], deployment.env, deployment.log_dir / "worker.log"
    )
    try:
        yield process
    finally:
        code = process.stop()
        assert code == 0, f"worker exited with {code} on SIGTERM:\n{process.log_tail()}"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    """A Redis of this test alone (AOF, fsync every second), so stopping, stalling or
    restarting it harms no other test."""
    server = LocalRedis(tmp_path, port=free_port(), project_dir=PROJECT_DIR, log=lambda _: None)
    server.start()
    server.wait_ready(30)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """A real local Redis Cluster of three masters, for the whole session."""
    nodes = LocalRedisCluster(
        tmp_path_factory.mktemp("cluster"),
        ports=free_cluster_ports(3),
        project_dir=PROJECT_DIR,
        log=lambda _: None,
    )
    try:
        assert nodes.start(timeout=60)
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: LocalRedisCluster) -> str:
    """URL of the first node of the session's Redis Cluster."""
    return redis_cluster.url


def on_cluster(made: Deployment) -> Deployment:
    """A deployment whose ``BESTAND_REDIS_URL`` names a cluster node: the same, told so."""
    return Deployment(
        env={**made.env, "BESTAND_REDIS_CLUSTER": "true"},
        settings=made.settings.model_copy(update={"redis_cluster": True}),
        log_dir=made.log_dir,
    )


@pytest.fixture(scope="module")
def cluster_deployment(
    kafka_bootstrap: str, redis_cluster_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Deployment:
    """An isolated deployment (topics, group, key prefix) on the session's Redis Cluster."""
    made = on_cluster(
        make_deployment(kafka_bootstrap, redis_cluster_url, tmp_path_factory.mktemp("logs"))
    )
    run(ensure_topics(made.settings))
    return made
