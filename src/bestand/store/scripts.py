"""The Lua scripts that make multi-key changes atomic, called by their SHA-1.

Scripts run by ``EVALSHA`` on the client, queued on a pipeline, or sent as the compiled core
wrote them in the Redis protocol (a batch's calls carry thousands of keys and arguments: handing
each to Python as an object for redis-py and hiredis to pack again cost more than writing the
bytes there once). Redis forgets scripts when it restarts: a call that meets ``NOSCRIPT``
loads every script and runs again (reads and guarded writes are safe to repeat). redis-py's
own ``register_script`` asks ``SCRIPT EXISTS`` before every pipeline, an extra round trip per
batch that this avoids.

Where Redis has bestand's module loaded (``native/module``), the hot scripts run as its
commands instead: the same keys, arguments, effects and replies, compiled, about half the
Redis time (README, Performance). A command is used only where the module says it mirrors
the SHA-1 of the script shipped here (``bestand.scripts``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Literal, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import Connection
from redis.exceptions import NoScriptError, ResponseError

from bestand.store.errors import StoreConflict, StoreLayoutError

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Whether the module's commands run the scripts: where Redis has them (auto), or required.
ModuleChoice = Literal["auto", "on", "off"]
#: The scripts, by name; the module may mirror the ones the worker runs per batch.
NAMES = ("graph_read", "graph_apply", "erase", "persons_read", "persons_write")
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


class ModuleMissing(RuntimeError):
    """``BESTAND_REDIS_MODULE=on`` and Redis has not the module (or another build of it)."""


@dataclass(frozen=True, slots=True)
class Scripts:
    """Every script bestand runs, and which of them run as the module's commands."""

    graph_read: Script
    graph_apply: Script
    erase: Script
    persons_read: Script
    persons_write: Script
    #: Script name -> the module's command that runs it in its place (:meth:`use_module`).
    native: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls) -> Scripts:
        """The package's scripts (nothing is sent to Redis until they are called)."""
        named = Script.named
        return cls(
            named("graph_read"),
            named("graph_apply"),
            named("erase"),
            named("persons_read"),
            named("persons_write"),
        )

    @classmethod
    def register(cls, client: Redis) -> Scripts:
        """The package's scripts; ``client`` is not needed (kept for callers that pass one)."""
        del client
        return cls.load()

    def all(self) -> list[Script]:
        """Every script."""
        return [getattr(self, name) for name in NAMES]

    async def use_module(self, client: Redis, choice: ModuleChoice = "auto") -> list[str]:
        """Run the scripts the Redis module mirrors as its commands (``auto``: where it is
        loaded; ``on``: it must be; ``off``: never). The names of those scripts."""
        self.native.clear()
        if choice == "off":
            return []
        try:
            reply = await client.execute_command("bestand.scripts")  # type: ignore[no-untyped-call]
        except ResponseError as error:
            if choice == "on":
                raise ModuleMissing(
                    f"BESTAND_REDIS_MODULE=on, but Redis has not bestand's module ({error}); "
                    "start it with --loadmodule <venv>/lib/bestand_redis.so"
                ) from error
            return []
        mirrored = dict(zip(reply[::2], reply[1::2], strict=True))
        for script in self.all():
            sha = mirrored.get(script.name.encode())
            if sha is not None and sha.decode() == script.sha:
                self.native[script.name] = f"bestand.{script.name}"
        if choice == "on" and not self.native:
            raise ModuleMissing(
                "BESTAND_REDIS_MODULE=on, but the module Redis has was built for other "
                "scripts than this bestand ships: build and load the one of this release"
            )
        return sorted(self.native)

    def command(self, script: Script, packed: Packed) -> bytes:
        """A call the compiled core packed (:meth:`Script.command`), as the module's command
        where it runs the script."""
        name = self.native.get(script.name)
        if name is None:
            return script.command(packed)
        count, body = packed
        return b"*%d\r\n$%d\r\n%s\r\n%s" % (count + 1, len(name), name.encode(), body)

    def queue(
        self, script: Script, pipe: Pipeline, keys: Sequence[KeyOrArg], args: Sequence[KeyOrArg]
    ) -> None:
        """Queue a call on a pipeline, as the module's command where it runs the script."""
        name = self.native.get(script.name)
        if name is None:
            script.queue(pipe, keys, args)
        else:
            pipe.execute_command(name, len(keys), *keys, *args)

    async def upload(self, client: Redis) -> None:
        """Load every script into Redis (after a restart or ``SCRIPT FLUSH``)."""
        for script in self.all():
            await client.script_load(script.source)

    async def call(
        self, client: Redis, script: Script, keys: Sequence[KeyOrArg], args: Sequence[KeyOrArg]
    ) -> Any:
        """Run one script now."""

        def run() -> Awaitable[Any]:
            name = self.native.get(script.name)
            head = ("EVALSHA", script.sha) if name is None else (name,)
            return client.execute_command(*head, len(keys), *keys, *args)  # type: ignore[no-untyped-call]

        return await self.retrying(client, run)

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
            if self.native and "unknown command 'bestand." in str(error):
                # Redis restarted without the module: the scripts take over, and the work is
                # tried again (StoreConflict is retried, and every call is safe to repeat).
                log.warning("Redis has no bestand module any more: the Lua scripts run instead")
                self.native.clear()
                lost = "Redis lost bestand's module; the scripts run instead"
                raise StoreConflict(lost) from error
            raise
