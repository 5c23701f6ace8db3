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
    """``BESTAND_REDIS_URL`` names a node of a Redis Cluster and ``BESTAND_REDIS_CLUSTER`` is
    not set, or the other way round: said before the first batch, not met in it."""

    def __init__(self, url: str, cluster: bool = True) -> None:
        where = urlsplit(url)  # host and port only: the URL may hold a password
        node = f"{where.hostname}:{where.port or 6379}"
        if cluster:
            text = (
                f"{node} is a node of a Redis Cluster: set BESTAND_REDIS_CLUSTER=true to run "
                "bestand on the cluster (README, Redis Cluster), or point BESTAND_REDIS_URL "
                "at a single Redis"
            )
        else:
            text = (
                f"BESTAND_REDIS_CLUSTER=true, but {node} is not a node of a Redis Cluster: "
                "unset it, or point BESTAND_REDIS_URL at a node of the cluster"
            )
        super().__init__(text)
