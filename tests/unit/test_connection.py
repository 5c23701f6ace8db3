"""Commands packed in C are byte for byte what redis-py's own packer sends."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from bestand.store.connection import (
    PackedConnection,
    PackedSSLConnection,
    PackedUnixConnection,
    connect,
)

COMMANDS = [
    ("SET", "k", "v"),
    (b"HSET", b"b:l:e:abc", "p", "P1", "n", 3, "r", 12_345, "score", 0.1),
    ("EVALSHA", "f" * 40, 2, "b:g:1", "b:g:2", "x" * 10_000, memoryview(b"mv"), bytearray(b"ba")),
    ("CONFIG GET", "maxmemory"),
    (b"CLIENT SETNAME", b"bestand"),
    ("ZADD", "values", 1e-05, "m", 1e20, "n", float("inf"), "o", -3, "p"),
    ("SET", "umlaut", "Müller-Straße 7"),
]


def _python_packed(args: tuple[object, ...]) -> bytes:
    return b"".join(bytes(part) for part in Connection().pack_command(*args))


@pytest.mark.parametrize("args", COMMANDS)
def test_one_command_is_packed_like_redis_py(args: tuple[object, ...]) -> None:
    assert b"".join(PackedConnection().pack_command(*args)) == _python_packed(args)


def test_a_pipeline_is_packed_like_redis_py() -> None:
    ours = b"".join(PackedConnection().pack_commands(COMMANDS))
    theirs = b"".join(bytes(p) for p in Connection().pack_commands(COMMANDS))
    assert ours == theirs


def test_values_redis_py_refuses_are_refused_alike() -> None:
    for bad in (True, None, {"a": 1}):
        with pytest.raises(DataError):
            Connection().pack_command("SET", "k", bad)
        with pytest.raises(DataError):
            PackedConnection().pack_command("SET", "k", bad)


def test_the_scheme_picks_the_connection_class() -> None:
    plain = connect("redis://127.0.0.1:1/0")
    tls = connect("rediss://127.0.0.1:1/0")
    assert plain.connection_pool.connection_class is PackedConnection
    assert tls.connection_pool.connection_class is PackedSSLConnection


def test_a_unix_socket_url_gets_its_packing_twin() -> None:
    client = connect("unix:///tmp/redis.sock")
    assert client.connection_pool.connection_class is PackedUnixConnection
