"""Faults with the worker on a local Redis Cluster of three masters: the final state equals
the clean run of the same shop on one Redis (``test_faults.py``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis
from faults import send
from redis.crc import key_slot
from support import Process, run
from test_faults import (  # noqa: F401 - the clean run's fixtures, on one Redis
    EVENTS,
    SPLIT,
    _caught_up,
    _compare,
    _deployment,
    _mid_stream,
    _pending,
    clean,
    clean_run,
    killed_and_restarted,
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
    killed_and_restarted(clean, deployment, tmp_path, "worker SIGKILL on the cluster")


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


def _holder(port: int, slot: int) -> int:
    """The port of the master that holds a slot, as the node on ``port`` sees it."""
    node = redis.Redis(port=port)
    try:
        (held,) = [
            int(master[1])
            for first, last, master, *_ in node.execute_command("CLUSTER SLOTS")
            if int(first) <= slot <= int(last)
        ]
        return held
    finally:
        node.close()


def _move_slot(ports: list[int], slot: int, to_port: int) -> int:
    """Move one hash slot and its keys to the master on ``to_port`` (as ``redis-cli --cluster
    reshard`` does); the port it came from."""
    src_port = _holder(to_port, slot)
    nodes = {port: redis.Redis(port=port) for port in ports}
    try:
        src, dst = nodes[src_port], nodes[to_port]
        src_id, dst_id = (n.execute_command("CLUSTER MYID").decode() for n in (src, dst))
        dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
        while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, 500):
            src.execute_command("MIGRATE", "127.0.0.1", to_port, "", 0, 10_000, "KEYS", *keys)
        for node in nodes.values():
            node.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
        return src_port
    finally:
        for node in nodes.values():
            node.close()


def test_the_identity_graphs_slot_moved_to_another_master_mid_stream(
    clean: dict[str, Any],  # noqa: F811 - the fixture imported above
    kafka_bootstrap: str,
    redis_cluster: LocalRedisCluster,
    tmp_path: Path,
) -> None:
    """The graph's master changes under a running worker (a reshard; a failover to a replica
    looks the same to it): the worker follows the slot map and ends where the clean run
    ends."""
    deployment = on_cluster(_deployment(kafka_bootstrap, redis_cluster.url, tmp_path))
    port = deployment.settings.worker_web_port
    slot = key_slot(f"{deployment.settings.redis_prefix}:{{g}}".encode())
    before = _holder(redis_cluster.ports[0], slot)
    target = next(p for p in redis_cluster.ports if p != before)
    worker = Process(["worker"], deployment.env, tmp_path / "worker.log")
    try:
        run(send(deployment, EVENTS[:SPLIT]))
        _mid_stream(deployment, port)
        moved_from = _move_slot(redis_cluster.ports, slot, target)
        run(send(deployment, EVENTS[SPLIT:]))
        _caught_up(deployment)
        worker.assert_running()
    finally:
        assert worker.stop() == 0, worker.log_tail()
    assert moved_from == before
    _compare(clean, deployment, "the identity graph's slot moved on the cluster")
