"""Connecting to Redis with the settings' URL.

redis-py's asyncio connections build every command in Python, byte string by byte string; in
the worker's profile that packing cost about a sixth of the CPU time. The connections made
here pack with hiredis's C packer instead (the synchronous client already does), which gives
the same bytes on the wire.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError, ResponseError

from bestand.store.errors import ClusterNotSupported


def _packed(args: tuple[Any, ...]) -> bytes:
    """One command in the Redis protocol; a multi-word command name is split like redis-py."""
    first = args[0]
    if isinstance(first, str):
        args = tuple(first.encode().split()) + args[1:]
    elif b" " in first:
        args = tuple(first.split()) + args[1:]
    try:
        packed: bytes = hiredis.pack_command(cast(Any, args))
    except TypeError:
        # hiredis takes str, bytes and numbers; a bytearray or memoryview goes as bytes.
        converted = tuple(bytes(a) if isinstance(a, (bytearray, memoryview)) else a for a in args)
        try:
            packed = hiredis.pack_command(cast(Any, converted))
        except TypeError as error:
            raise DataError(str(error)) from error
    return packed


class _CPacking:
    """Command packing in C for any redis-py asyncio connection class."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return [_packed(args)]

    def pack_commands(self, commands: Iterable[Iterable[Any]]) -> list[bytes]:
        return [b"".join(_packed(tuple(command)) for command in commands)]


class PackedConnection(_CPacking, Connection):
    """TCP connection (``redis://``)."""


class PackedSSLConnection(_CPacking, SSLConnection):
    """TLS connection (``rediss://``)."""


class PackedUnixConnection(_CPacking, UnixDomainSocketConnection):
    """Unix socket connection (``unix://``)."""


_PACKED: dict[type[Any], type[Any]] = {
    Connection: PackedConnection,
    SSLConnection: PackedSSLConnection,
    UnixDomainSocketConnection: PackedUnixConnection,
}


def connect(url: str, *, max_connections: int = 64) -> Redis:
    """An asyncio Redis client for ``url``; connections open lazily on first use."""
    client = Redis.from_url(
        url,
        max_connections=max_connections,
        socket_connect_timeout=5,
        socket_timeout=10,
        health_check_interval=30,
        decode_responses=False,
    )
    # The URL's scheme chose the class (TCP, TLS, Unix socket); swap in its C-packing twin.
    pool = client.connection_pool
    pool.connection_class = _PACKED.get(pool.connection_class, pool.connection_class)
    return client


async def refuse_cluster(client: Redis, url: str, cluster: bool = False) -> None:
    """Raise :class:`ClusterNotSupported` when ``client`` talks to a node of a Redis Cluster
    and ``cluster`` is not set, or to a single Redis and it is."""
    try:
        info = await client.info("cluster")
    except ResponseError:  # a Redis that hides INFO (ACL): not a cluster bestand can tell
        return
    if isinstance(info, dict) and "cluster_enabled" not in info:  # a cluster client: by node
        info = next(iter(info.values()), {})
    if (int(info.get("cluster_enabled", 0)) == 1) != cluster:
        raise ClusterNotSupported(url, cluster=not cluster)
