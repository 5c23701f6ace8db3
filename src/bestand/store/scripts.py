"""The Lua scripts that make multi-key changes atomic, called by their SHA-1.

Scripts run by ``EVALSHA`` on the client, queued on a pipeline, or sent as the compiled core
wrote them in the Redis protocol (a batch's calls carry thousands of keys and arguments: handing
each to Python as an object for redis-py and hiredis to pack again cost more than writing the
bytes there once). Redis forgets scripts when it restarts: a call that meets ``NOSCRIPT``
loads every script and runs again (reads and guarded writes are safe to repeat). redis-py's
own ``register_script`` asks ``SCRIPT EXISTS`` before every pipeline, an extra round trip per
batch that this avoids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from importlib.resources import files
from typing import Any, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import Connection
from redis.exceptions import NoScriptError, ResponseError

from bestand.store.errors import StoreLayoutError

T = TypeVar("T")
KeyOrArg = str | bytes | int
#: A call the compiled core packed: how many elements follow ``EVALSHA <sha>``, and those.
Packed = tuple[int, bytes]


@dataclass(frozen=True, slots=True)
class Script:
    """One Lua script: its source and SHA-1."""

    name: str
    source: str
    sha: str

    @classmethod
    def named(cls, name: str) -> Script:
        """The script ``scripts/<name>.lua`` shipped with the package."""
        source = files("bestand.store").joinpath("scripts", f"{name}.lua").read_text("utf-8")
        sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis names scripts so
        return cls(name, source, sha)

    def queue(self, pipe: Pipeline, keys: Sequence[KeyOrArg], args: Sequence[KeyOrArg]) -> None:
        """Queue a call on a pipeline (its reply comes with the pipeline's)."""
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    def command(self, packed: Packed) -> bytes:
        """A call the compiled core packed, whole: ``packed`` is the number of elements
        after ``EVALSHA <sha>`` (keys, then arguments) and those elements in the Redis
        protocol (``native/src/packed.rs``)."""
        count, body = packed
        return b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n%s" % (count + 2, self.sha.encode(), body)


@dataclass(frozen=True, slots=True)
class Scripts:
    """Every script bestand runs."""

    graph_read: Script
    graph_apply: Script
    erase: Script
    persons_read: Script
    persons_write: Script

    @classmethod
    def load(cls) -> Scripts:
        """The package's scripts (nothing is sent to Redis until they are called)."""
        return cls(**{f.name: Script.named(f.name) for f in fields(cls)})

    @classmethod
    def register(cls, client: Redis) -> Scripts:
        """The package's scripts; ``client`` is not needed (kept for callers that pass one)."""
        del client
        return cls.load()

    def all(self) -> list[Script]:
        """Every script."""
        return [getattr(self, f.name) for f in fields(self)]

    async def upload(self, client: Redis) -> None:
        """Load every script into Redis (after a restart or ``SCRIPT FLUSH``)."""
        for script in self.all():
            await client.script_load(script.source)

    async def call(
        self, client: Redis, script: Script, keys: Sequence[KeyOrArg], args: Sequence[KeyOrArg]
    ) -> Any:
        """Run one script now."""
        return await self.retrying(
            client,
            lambda: client.execute_command(  # type: ignore[no-untyped-call]
                "EVALSHA", script.sha, len(keys), *keys, *args
            ),
        )

    async def pipelined(self, client: Redis, build: Callable[[Pipeline], None]) -> list[Any]:
        """Run the commands ``build`` queues in one round trip; their replies in order."""

        async def run() -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                build(pipe)
                replies: list[Any] = await pipe.execute()
                return replies

        return await self.retrying(client, run)

    async def send(self, client: Redis, commands: Sequence[bytes]) -> list[Any]:
        """Run commands already in the Redis protocol (:meth:`Script.command`) in one round
        trip; their replies in order. An error reply is raised once every reply is read (the
        first one), and a connection that fails is dropped and tried again as a pipeline's is.
        """
        data = b"".join(commands)

        async def exchange(connection: Connection) -> list[Any]:
            await connection.send_packed_command(data)
            replies: list[Any] = []
            failed: ResponseError | None = None
            for _ in commands:
                try:
                    replies.append(await connection.read_response())
                except ResponseError as error:  # the connection stays in step: read on
                    failed = failed or error
                    replies.append(error)
            if failed is not None:
                raise failed
            return replies

        async def run() -> list[Any]:
            pool = client.connection_pool
            connection = cast(Connection, await pool.get_connection())  # type: ignore[no-untyped-call]
            try:
                return await connection.retry.call_with_retry(
                    lambda: exchange(connection), lambda _: connection.disconnect()
                )
            finally:
                await pool.release(connection)

        return await self.retrying(client, run)

    async def retrying(self, client: Redis, work: Callable[[], Awaitable[T]]) -> T:
        """``work``, once more after loading the scripts if Redis did not know one. A key of
        another type than the scripts expect is a store an earlier release wrote: that says
        what to do (:class:`StoreLayoutError`) instead of Redis's ``WRONGTYPE``."""
        try:
            try:
                return await work()
            except NoScriptError:
                await self.upload(client)
                return await work()
        except ResponseError as error:
            if "WRONGTYPE" in str(error):
                raise StoreLayoutError(str(error)) from error
            raise
