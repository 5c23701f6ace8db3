"""The local Redis Cluster (``bestand stack up --redis-cluster N``): real redis-server nodes
in cluster mode that form, spread keys over their masters, and form again after a restart."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster
from support import PROJECT_DIR, Process, bestand_cli, make_deployment, wait_for

from bestand.stack.cluster import (
    SLOTS,
    LocalRedisCluster,
    cluster_info,
    free_cluster_ports,
    slot_ranges,
)
from bestand.stack.redis import module_file


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalRedisCluster]:
    nodes = LocalRedisCluster(
        tmp_path, ports=free_cluster_ports(3), project_dir=PROJECT_DIR, log=lambda _: None
    )
    try:
        yield nodes
    finally:
        nodes.stop()


def _slots(port: int) -> list[tuple[int, int, int]]:
    """(first slot, last slot, port of the master) per range, as a node sees the cluster."""
    client = redis.Redis(port=port)
    try:
        return sorted(
            (int(first), int(last), int(master[1]))
            for first, last, master, *_ in client.execute_command("CLUSTER SLOTS")
        )
    finally:
        client.close()


def test_three_masters_form_a_cluster_and_share_the_keys(cluster: LocalRedisCluster) -> None:
    assert cluster.start(timeout=60)
    assert cluster.is_answering()
    ports = cluster.ports
    expected = sorted(
        (first, last, port) for (first, last), port in zip(slot_ranges(3), ports, strict=True)
    )
    for port in ports:
        info = cluster_info(redis.Redis(port=port))
        assert info["cluster_state"] == "ok"
        assert info["cluster_known_nodes"] == "3"
        assert int(info["cluster_slots_assigned"]) == SLOTS
        assert _slots(port) == expected  # every node sees the same map
        if module_file() is not None:  # each node loads bestand's module where it is built
            assert redis.Redis(port=port).execute_command("bestand.scripts")

    client = RedisCluster(host="127.0.0.1", port=ports[0])
    try:
        for i in range(300):
            client.set(f"key:{i}", i)
        holders = {client.get_node_from_key(f"key:{i}").port for i in range(300)}
        assert holders == set(ports)
        assert [client.get(f"key:{i}") for i in (0, 150, 299)] == [b"0", b"150", b"299"]
        # Keys of one hash tag share a slot, and so a node.
        assert len({client.keyslot(f"b:p:{{person-1}}:{n}") for n in range(10)}) == 1
    finally:
        client.close()

    # Stopped and started again, the nodes keep their slots (nodes.conf) and their data.
    cluster.stop()
    assert not cluster.is_answering()
    assert cluster.start(timeout=60)
    assert _slots(ports[0]) == expected
    client = RedisCluster(host="127.0.0.1", port=ports[1])
    try:
        assert client.get("key:150") == b"150"
    finally:
        client.close()


def test_a_second_start_starts_nothing(cluster: LocalRedisCluster) -> None:
    assert cluster.start(timeout=60)
    assert not cluster.start(timeout=60)
    assert cluster.is_answering()


def _ready(port: int) -> tuple[int, dict[str, str]]:
    """``GET /ready`` of the lookup API, once it listens."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/ready")
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _answering(port: int) -> bool:
    try:
        _ready(port)
    except OSError:
        return False
    return True


def test_a_worker_pointed_at_a_cluster_node_refuses_to_start_and_status_says_why(
    cluster: LocalRedisCluster, kafka_bootstrap: str, tmp_path: Path
) -> None:
    assert cluster.start(timeout=60)
    url = f"redis://127.0.0.1:{cluster.ports[0]}/0"
    deployment = make_deployment(kafka_bootstrap, url, tmp_path)
    worker = Process(["worker"], deployment.env, tmp_path / "worker.log")
    try:
        code = worker.popen.wait(timeout=90)
    finally:
        worker.stop()
    said = (tmp_path / "worker.log").read_text()
    assert code == 2, said
    assert f"127.0.0.1:{cluster.ports[0]} is a node of a Redis Cluster" in said
    for port in cluster.ports:  # nothing was written
        assert redis.Redis(port=port).dbsize() == 0
    status = bestand_cli(deployment, "status")
    assert f"127.0.0.1:{cluster.ports[0]} is a node of a Redis Cluster" in status.stdout, (
        status.stdout + status.stderr
    )
    api = Process(["api"], deployment.env, tmp_path / "api.log")
    try:
        wait_for(lambda: _answering(deployment.settings.api_port), what="the API to listen")
        code, body = _ready(deployment.settings.api_port)
    finally:
        api.stop()
    assert (code, body["error"]) == (503, "not_ready")
    assert "is a node of a Redis Cluster" in body["detail"], body
