"""The identity graph in Redis: which identifiers belong to which person."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from bestand.identity import KeyedId
from bestand.store.keys import Keys
from bestand.store.scripts import Scripts


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class IdentityGraph:
    """Resolves identifier sets to persons atomically, merging persons that an event links."""

    def __init__(self, client: Redis, keys: Keys, scripts: Scripts | None = None) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts or Scripts.register(client)

    async def resolve(
        self, ids: Sequence[KeyedId], candidate: str, event_id: str, at: int
    ) -> tuple[str, list[str]]:
        """Return the person the identifiers belong to and the persons merged into it.

        ``candidate`` becomes the id of a new person when no identifier is known yet.
        """
        if not ids:
            raise ValueError("resolve needs at least one identifier")
        tokens = [kid.token for kid in ids]
        reply = await self._scripts.resolve(
            keys=[self._keys.identifier(token) for token in tokens],
            args=[self._keys.graph, candidate, event_id, at, *tokens],
            client=self._client,
        )
        persons = [_text(item) for item in reply]
        return persons[0], persons[1:]

    async def person_of(self, kid: KeyedId) -> str | None:
        """The person an identifier belongs to, if any."""
        value = await self._client.get(self._keys.identifier(kid.token))
        return None if value is None else _text(value)

    async def identifiers_of(self, person_id: str) -> set[str]:
        """Every identifier (``kind:hash``) of a person."""
        return {_text(m) for m in await self._client.smembers(self._keys.person_ids(person_id))}

    async def erase(self, ids: Sequence[KeyedId]) -> list[tuple[str, list[str]]]:
        """Remove the persons these identifiers name; return each with its identifiers."""
        reply = await self._scripts.erase(
            keys=[self._keys.identifier(kid.token) for kid in ids],
            args=[self._keys.graph],
            client=self._client,
        )
        return [(_text(entry[0]), [_text(m) for m in entry[1:]]) for entry in reply]
