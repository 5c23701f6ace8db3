"""The Lua scripts that make multi-key changes atomic, loaded once per client."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


def _source(name: str) -> str:
    return files("bestand.store").joinpath("scripts", f"{name}.lua").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Scripts:
    """Registered scripts of one Redis client (EVALSHA, re-sent when Redis lost them)."""

    graph_read: AsyncScript
    graph_apply: AsyncScript
    erase: AsyncScript
    load_person: AsyncScript
    store_person: AsyncScript
    put_lookup: AsyncScript

    @classmethod
    def register(cls, client: Redis) -> Scripts:
        """Register every script with ``client``."""
        return cls(**{name: client.register_script(_source(name)) for name in cls.__slots__})
