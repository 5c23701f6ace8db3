"""API keys: kept as SHA-256 digests with their scope and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from bestand.access import Scope


class ApiKeys:
    """The accepted API keys and the scope of each."""

    def __init__(self, keys: Iterable[tuple[str, Scope]]) -> None:
        self._digests = [(hashlib.sha256(key.encode()).digest(), scope) for key, scope in keys]

    def scope_of(self, presented: str | None) -> Scope | None:
        """The scope of ``presented``, ``None`` for an unknown key; every key is compared."""
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        found: Scope | None = None
        for known, scope in self._digests:
            if hmac.compare_digest(digest, known):
                found = scope
        return found

    def accepts(self, presented: str | None) -> bool:
        """True when ``presented`` is one of the keys."""
        return self.scope_of(presented) is not None


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The key a request presents: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    auth = headers.get(b"authorization")
    if auth is not None:
        scheme, _, token = auth.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get(b"x-api-key")
    return key.decode("latin-1").strip() if key is not None else None
