"""The Lua scripts that make multi-key changes atomic, called by their SHA-1.

Scripts run by ``EVALSHA`` on the client or queued on a pipeline. Redis forgets scripts when it
restarts: a call that meets ``NOSCRIPT`` loads every script and runs again (reads and guarded
writes are safe to repeat). redis-py's own ``register_script`` asks ``SCRIPT EXISTS`` before
every pipeline, an extra round trip per batch that this avoids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from importlib.resources import files
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

T = TypeVar("T")
KeyOrArg = str | bytes | int


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

    async def retrying(self, client: Redis, work: Callable[[], Awaitable[T]]) -> T:
        """``work``, once more after loading the scripts if Redis did not know one."""
        try:
            return await work()
        except NoScriptError:
            await self.upload(client)
            return await work()
