"""What the store's errors tell an operator."""

from __future__ import annotations

from bestand.store import ClusterNotSupported


def test_a_cluster_node_is_named_by_host_and_port_never_with_its_password() -> None:
    said = str(ClusterNotSupported("rediss://bestand:s3cret@redis-0.shop.internal:6380/0"))
    assert said.startswith("redis-0.shop.internal:6380 is a node of a Redis Cluster")
    assert "s3cret" not in said
    assert "BESTAND_REDIS_URL" in said
    assert str(ClusterNotSupported("redis://10.0.0.5/0")).startswith("10.0.0.5:6379 ")
