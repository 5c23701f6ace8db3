"""A local Redis Cluster: masters of Debian's redis-server on loopback, no Docker.

Each node is a :class:`LocalRedis` of its own (folder ``redis-cluster/<port>/`` under the
stack folder, append-only file, bestand's module where built) started with cluster mode on.
A new cluster gets the 16,384 hash slots split evenly and its nodes introduced to each other
(``CLUSTER ADDSLOTSRANGE``, ``CLUSTER MEET``); a cluster started before keeps what its nodes
wrote to ``nodes.conf`` and forms again by itself.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import redis

from bestand.stack.exceptions import StackError
from bestand.stack.processes import LOOPBACK, ComponentStatus, LogFn, port_bindable
from bestand.stack.redis import LocalRedis

#: Redis Cluster's hash slots.
SLOTS = 16384

#: What makes a node a cluster node: cluster mode, its own state file (in its data folder),
#: and a failure noticed within 5 s.
CLUSTER_OPTIONS = (
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    "nodes.conf",
    "--cluster-node-timeout",
    "5000",
)


#: A node's cluster bus listens 10,000 ports above it: a node's port must leave room for that.
BUS_OFFSET = 10000
MAX_NODE_PORT = 65535 - BUS_OFFSET


def free_cluster_ports(count: int) -> list[int]:
    """``count`` ports a cluster node can take: free, and with their bus port free too."""
    chosen: list[int] = []
    for port in random.sample(range(20000, MAX_NODE_PORT + 1), 2000):
        if port_bindable(port) and port_bindable(port + BUS_OFFSET):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise StackError(f"found no {count} free ports for cluster nodes (and their bus ports)")


def slot_ranges(masters: int) -> list[tuple[int, int]]:
    """The hash slots split evenly: the first and last slot of each master."""
    if not 1 <= masters <= SLOTS:
        raise StackError(f"a cluster needs 1 to {SLOTS} masters, not {masters}")
    bounds = [SLOTS * i // masters for i in range(masters + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(masters)]


def cluster_info(client: redis.Redis) -> dict[str, str]:
    """``CLUSTER INFO`` as a dict of its fields."""
    raw = client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
    if isinstance(raw, dict):  # redis-py parses the reply itself
        return {str(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in raw.items()}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


class LocalRedisCluster:
    """Masters on ``ports`` under ``root/redis-cluster``; ``start`` forms the cluster."""

    def __init__(
        self,
        root: Path,
        *,
        ports: Sequence[int],
        project_dir: Path | None = None,
        log: LogFn = print,
        module: Path | Literal["find"] | None = "find",
    ) -> None:
        if not ports:
            raise StackError("a cluster needs at least one node")
        too_high = [port for port in ports if port > MAX_NODE_PORT]
        if too_high:
            raise StackError(
                f"cluster node ports must be {MAX_NODE_PORT} or lower (a node's bus port is "
                f"{BUS_OFFSET} above it): {', '.join(map(str, too_high))}"
            )
        self.dir = root.absolute() / "redis-cluster"
        self._log = log
        self.nodes = [
            LocalRedis(
                self.dir / str(port),
                port=port,
                project_dir=project_dir,
                log=log,
                module=module,
                options=CLUSTER_OPTIONS,
            )
            for port in ports
        ]
        for node in self.nodes:
            node.name = f"Redis cluster node {node.port}"

    @classmethod
    def existing(cls, root: Path, *, log: LogFn = print) -> LocalRedisCluster | None:
        """The cluster a stack folder holds (its nodes' folders), or None."""
        folder = root.absolute() / "redis-cluster"
        ports = sorted(int(p.name) for p in folder.glob("*") if p.name.isdigit())
        return cls(root, ports=ports, log=log) if ports else None

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        """A redis:// URL of the first node (a cluster client finds the others)."""
        return f"redis://{LOOPBACK}:{self.nodes[0].port}/0"

    def start(self, timeout: float = 60.0) -> bool:
        """Start the nodes that are not running and form the cluster; True if any started."""
        started: list[LocalRedis] = []
        try:
            for node in self.nodes:
                node.install()
                if node.start():
                    started.append(node)
            deadline = time.monotonic() + timeout
            for node in self.nodes:
                node.wait_ready(max(deadline - time.monotonic(), 1.0))
            self._form(max(deadline - time.monotonic(), 1.0))
        except (StackError, redis.RedisError) as exc:
            for node in started:  # leave nothing half-started behind
                node.stop()
            if isinstance(exc, StackError):
                raise
            raise StackError(f"could not form the Redis cluster: {exc}") from exc
        return bool(started)

    def _clients(self) -> list[redis.Redis]:
        return [redis.Redis(host=LOOPBACK, port=node.port) for node in self.nodes]

    def _form(self, timeout: float) -> None:
        """Assign the slots and introduce the nodes if no node has any slot yet; then wait
        until every node sees all nodes and calls the cluster ok."""
        clients = self._clients()
        try:
            infos = [cluster_info(client) for client in clients]
            if all(int(info.get("cluster_slots_assigned", "0")) == 0 for info in infos):
                self._log(f"forming a Redis cluster of {len(clients)} masters …")
                for client, (first, last) in zip(clients, slot_ranges(len(clients)), strict=True):
                    client.execute_command(  # type: ignore[no-untyped-call]
                        "CLUSTER ADDSLOTSRANGE", first, last
                    )
                for node in self.nodes[1:]:
                    clients[0].execute_command(  # type: ignore[no-untyped-call]
                        "CLUSTER MEET", LOOPBACK, node.port
                    )
            deadline = time.monotonic() + timeout
            while True:
                infos = [cluster_info(client) for client in clients]
                if all(
                    info.get("cluster_state") == "ok"
                    and int(info.get("cluster_known_nodes", "0")) == len(clients)
                    for info in infos
                ):
                    return
                if time.monotonic() > deadline:
                    states = ", ".join(
                        f"{n.port}: {i.get('cluster_state')} ({i.get('cluster_known_nodes')} "
                        "nodes known)"
                        for n, i in zip(self.nodes, infos, strict=True)
                    )
                    raise StackError(f"the Redis cluster did not become ok in time: {states}")
                time.sleep(0.1)
        finally:
            for client in clients:
                client.close()

    def stop(self) -> None:
        """Stop the nodes this stack started (their data and ``nodes.conf`` stay)."""
        for node in self.nodes:
            node.stop()

    def status(self) -> list[ComponentStatus]:
        """Each node's status."""
        return [node.status() for node in self.nodes]

    def is_answering(self) -> bool:
        """Every node answers and calls the cluster ok."""
        clients = self._clients()
        try:
            return all(cluster_info(client).get("cluster_state") == "ok" for client in clients)
        except redis.RedisError:
            return False
        finally:
            for client in clients:
                client.close()
