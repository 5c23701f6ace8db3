"""Where a key lives on a Redis Cluster: the slot map, a plain client per master, and the
scripts that run with the keys of several slots of one master.

``BESTAND_REDIS_CLUSTER=true`` (README, Redis Cluster): the readers take redis-py's cluster
client (one key a command, pipelines, scans over every master, :func:`connect_store`); the
worker's batch writes go through a :class:`Router`, one call per master, and the identity
graph's scripts through a client of the master that holds its hash tag (:meth:`Router.follow`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS as SLOTS
from redis.crc import key_slot
from redis.exceptions import ClusterDownError, NoScriptError

from bestand.store.connection import connect
from bestand.store.keys import Keys
from bestand.store.scripts import Script

log = logging.getLogger(__name__)

Node = tuple[str, int]
#: What makes a script run with the keys of several slots of one master (Redis 7): the flag,
#: and its keys handed over as arguments (declared keys must share a slot even with the
#: flag; keys a script touches that were not declared need only be on its master).
_CROSS_SLOT = """#!lua flags=allow-cross-slot-keys
local KEYS, ARGV = (function(given)
  local n, keys, args = tonumber(given[1]), {}, {}
  for i = 2, n + 1 do keys[#keys + 1] = given[i] end
  for i = n + 2, #given do args[#args + 1] = given[i] end
  return keys, args
end)(ARGV)
"""


def connect_cluster(url: str, *, max_connections: int = 64) -> RedisCluster:
    """An asyncio Redis Cluster client that starts from the node ``url`` names."""
    return RedisCluster.from_url(
        url,
        max_connections=max_connections,
        socket_connect_timeout=5,
        socket_timeout=10,
        decode_responses=False,
    )


def connect_store(url: str, cluster: bool, *, max_connections: int = 64) -> Redis:
    """The client of ``BESTAND_REDIS_URL``: a cluster client where ``cluster`` (it takes the
    commands bestand's readers send: one key each, pipelines, scans over every master)."""
    if cluster:
        return cast(Redis, connect_cluster(url, max_connections=max_connections))
    return connect(url, max_connections=max_connections)


async def used_memory(client: Redis) -> int:
    """Bytes Redis uses: on a cluster, its masters together."""
    if isinstance(client, RedisCluster):
        by_node = await client.info("memory", target_nodes=RedisCluster.PRIMARIES)
        return sum(int(info["used_memory"]) for info in by_node.values())
    return int((await client.info("memory"))["used_memory"])


async def graph_master(client: Redis, keys: Keys, url: str) -> tuple[Redis, Router | None]:
    """A plain client of the identity graph's master (``client`` itself on one Redis), and
    the router that made it (close it after)."""
    if not isinstance(client, RedisCluster):
        return client, None
    router = Router(client, url, max_connections=4)
    await router.start()
    return router.client_of(keys.graph), router


def cross_slot(script: Script) -> Script:
    """A script that may touch keys of several slots of one master (one call per master)."""
    source = _CROSS_SLOT + script.source
    sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis names scripts so
    return Script(script.name + "@cluster", source, sha)


class Router:
    """The cluster's slot map, and a plain client for each master (its connections pack
    commands in C like the single Redis's, and take pipelines of script calls whose keys lie
    in several slots of that master)."""

    def __init__(self, cluster: RedisCluster, url: str, max_connections: int = 64) -> None:
        self.cluster = cluster
        self._url = urlsplit(url)
        self._max_connections = max_connections
        self._clients: dict[Node, Redis] = {}
        self._slots: list[Node] = []

    async def start(self) -> None:
        """Read the slot map (the first command would, too)."""
        await self.cluster.initialize()
        self._map_slots()

    async def refresh(self) -> None:
        """Read the slot map again (a slot moved, or a master changed)."""
        await self.cluster.nodes_manager.initialize()
        self._map_slots()

    def _map_slots(self) -> None:
        """Each slot's master, as a list (the batch asks for thousands of keys)."""
        cache = self.cluster.nodes_manager.slots_cache
        self._slots = [
            (nodes[0].host, int(nodes[0].port)) if (nodes := cache.get(slot)) else ("", 0)
            for slot in range(SLOTS)
        ]

    def node_of(self, key: str | bytes) -> Node:
        """The master that holds a key's slot."""
        node = self._slots[key_slot(key_bytes(key))]
        if not node[1]:
            raise ClusterDownError(f"no master holds the slot of {key!r}")
        return node

    def client(self, node: Node) -> Redis:
        """A plain client of one master."""
        found = self._clients.get(node)
        if found is None:
            netloc = self._url.netloc.rpartition("@")
            where = f"{node[0]}:{node[1]}"
            url = urlunsplit(self._url._replace(netloc=netloc[0] + netloc[1] + where, path="/0"))
            found = self._clients[node] = connect(url, max_connections=self._max_connections)
        return found

    def client_of(self, key: str | bytes) -> Redis:
        """A plain client of the master that holds a key's slot."""
        return self.client(self.node_of(key))

    def follow(self, key: str) -> Redis:
        """A client of whichever master holds ``key``'s slot as the slot map last read says:
        after a failover or a slot's move, calls go to the new master once the map is read
        again (:meth:`keep_fresh`, or after a ``MOVED`` reply)."""
        return cast(Redis, _Following(self, key))

    async def keep_fresh(self, stopping: asyncio.Event, interval: float = 5.0) -> None:
        """Read the slot map again every ``interval`` seconds until ``stopping`` is set."""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=interval)
            if stopping.is_set():
                return
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - a master away: the next round tries again
                log.warning("could not read the cluster's slot map: %s", exc)

    def by_node(self, keys: Iterable[str]) -> dict[Node, list[str]]:
        """Keys by the master that holds them (in their order, each once)."""
        out: dict[Node, dict[str, None]] = defaultdict(dict)
        for key in keys:
            out[self.node_of(key)][key] = None
        return {node: list(held) for node, held in out.items()}

    async def close_nodes(self) -> None:
        """Close the plain clients of the masters (the cluster client stays open)."""
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def aclose(self) -> None:
        """Close every connection."""
        await self.close_nodes()
        await self.cluster.aclose()


class _Following:
    """What :meth:`Router.follow` gives: each attribute of the current master's client."""

    def __init__(self, router: Router, key: str) -> None:
        self._router = router
        self._key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._router.client_of(self._key), name)


def key_bytes(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


async def run_script(
    client: Redis, script: Script, keys: Sequence[str], args: Sequence[Any]
) -> Any:
    """One call of a :func:`cross_slot` script on one master, loading it there when it does
    not know it."""
    try:
        return await client.evalsha(script.sha, 0, len(keys), *keys, *args)
    except NoScriptError:
        await client.script_load(script.source)
        return await client.evalsha(script.sha, 0, len(keys), *keys, *args)


__all__ = [
    "Node",
    "Router",
    "connect_cluster",
    "connect_store",
    "cross_slot",
    "graph_master",
    "key_bytes",
    "run_script",
    "used_memory",
]
