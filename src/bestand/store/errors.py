"""Errors of the Redis store."""

from __future__ import annotations

from urllib.parse import urlsplit


class StoreConflict(RuntimeError):
    """A compare-and-set kept losing against concurrent writers; the event will be retried."""


class StoreLayoutError(RuntimeError):
    """Redis holds keys in a shape an earlier release of bestand wrote: they are made again
    from Kafka with ``bestand rebuild``, not read or changed in place."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            "Redis holds keys of another layout of bestand's store than this release writes: "
            f"run `bestand rebuild` to write them again from Kafka ({detail})"
        )


class ClusterNotSupported(RuntimeError):
    """``BESTAND_REDIS_URL`` names a node of a Redis Cluster: bestand's batch writes span hash
    slots that a cluster keeps on different masters, so it refuses to start rather than fail
    on the first batch (README, Redis Cluster)."""

    def __init__(self, url: str) -> None:
        where = urlsplit(url)  # host and port only: the URL may hold a password
        super().__init__(
            f"{where.hostname}:{where.port or 6379} is a node of a Redis Cluster, "
            "and bestand does not run on a cluster yet: "
            "point BESTAND_REDIS_URL at a single Redis (a replica beside it for failover); "
            "README, Redis Cluster, says what stands in the way"
        )
