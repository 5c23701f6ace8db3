"""Script calls sent as the compiled core packs them: replies in order, error replies raised
without losing step with the connection, scripts Redis forgot loaded again."""

from __future__ import annotations

import pytest
from redis.exceptions import ResponseError
from support import run

from bestand.stack import LocalRedis
from bestand.store import connect
from bestand.store.scripts import Scripts

pytestmark = pytest.mark.integration

PING = b"*1\r\n$4\r\nPING\r\n"
#: GET without its key: Redis answers with an error reply.
BAD = b"*1\r\n$3\r\nGET\r\n"


def test_replies_come_in_order_and_an_error_reply_is_raised_after_all_are_read(
    own_redis: LocalRedis,
) -> None:
    async def check() -> None:
        client = connect(own_redis.url, max_connections=1)  # every send on one connection
        scripts = Scripts.load()
        echo = b"*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n"
        assert await scripts.send(client, [PING, echo, PING]) == [b"PONG", b"abc", b"PONG"]
        with pytest.raises(ResponseError, match="wrong number of arguments"):
            await scripts.send(client, [PING, BAD, echo])
        # The replies after the error were read: the connection answers the next call with
        # its own reply, not a stale one.
        assert await scripts.send(client, [echo]) == [b"abc"]
        await client.aclose()

    run(check())


def test_a_packed_script_call_runs_and_survives_redis_forgetting_its_scripts(
    own_redis: LocalRedis,
) -> None:
    async def check() -> None:
        client = connect(own_redis.url)
        scripts = Scripts.load()
        # persons_read with no person and no marker: numkeys 0, n 0 (Packed: 2 elements).
        call = scripts.persons_read.command((2, b"$1\r\n0\r\n$1\r\n0\r\n"))
        assert call.startswith(
            b"*4\r\n$7\r\nEVALSHA\r\n$40\r\n" + scripts.persons_read.sha.encode()
        )
        assert await scripts.send(client, [call, call]) == [[[], []], [[], []]]  # loaded first
        await client.script_flush()
        assert await scripts.send(client, [call]) == [[[], []]]
        await client.aclose()

    run(check())
