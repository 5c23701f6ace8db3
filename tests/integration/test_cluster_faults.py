"""Faults with the worker on a local Redis Cluster of three masters: the final state equals
the clean run of the same shop on one Redis (``test_faults.py``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from faults import send
from support import Process, run, wait_for
from test_faults import (  # noqa: F401 - the clean run's fixtures, on one Redis
    EVENTS,
    SPLIT,
    _caught_up,
    _compare,
    _deployment,
    _handled,
    _kill,
    _mid_stream,
    _pending,
    clean,
    clean_run,
)

from bestand.stack.cluster import LocalRedisCluster
from conftest import on_cluster

pytestmark = pytest.mark.integration


def test_worker_killed_mid_stream_on_the_cluster_ends_as_the_clean_run(
    clean: dict[str, Any],  # noqa: F811 - the fixture imported above
    kafka_bootstrap: str,
    redis_cluster_url: str,
    tmp_path: Path,
) -> None:
    deployment = on_cluster(_deployment(kafka_bootstrap, redis_cluster_url, tmp_path))
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
        wait_for(lambda: _handled(port) > 0, timeout=60, what="the restarted worker to work")
        resumed = time.monotonic() - restarted
        print(f"\non the cluster, restarted after SIGKILL: processing again {resumed:.1f} s "
              "after its start")  # fmt: skip
        _caught_up(deployment)
    finally:
        assert second.stop() == 0, second.log_tail()
    _compare(clean, deployment, "worker SIGKILL on the cluster")
    assert resumed < 10


def test_a_master_restarted_mid_stream_ends_as_the_clean_run(
    clean: dict[str, Any],  # noqa: F811 - the fixture imported above
    kafka_bootstrap: str,
    redis_cluster: LocalRedisCluster,
    tmp_path: Path,
) -> None:
    deployment = on_cluster(_deployment(kafka_bootstrap, redis_cluster.url, tmp_path))
    port = deployment.settings.worker_web_port
    worker = Process(["worker"], deployment.env, tmp_path / "worker.log")
    master = redis_cluster.nodes[1]  # not the node the URL names
    try:
        run(send(deployment, EVENTS[:SPLIT]))
        _mid_stream(deployment, port)
        master.stop()  # SIGTERM: the master writes its append-only file and exits
        run(send(deployment, EVENTS[SPLIT:]))  # arrives while a third of the slots are away
        time.sleep(3)  # the worker retries with backoff meanwhile
        assert _pending(deployment) > 0, "the master went away after the stream was done"
        master.start()
        master.wait_ready(30)
        _caught_up(deployment)
        worker.assert_running()
    finally:
        assert worker.stop() == 0, worker.log_tail()
    _compare(clean, deployment, "a master restarted on the cluster")
