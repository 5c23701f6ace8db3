"""Turn raw identifiers into keyed identifiers with the configured secret and phone region."""

from __future__ import annotations

from dataclasses import dataclass

from bestand.identity.errors import InvalidIdentifier
from bestand.identity.hashing import keyed_hash, parse_sha256, sha256_digest
from bestand.identity.kinds import IdKind
from bestand.identity.normalize import (
    normalize_device_id,
    normalize_email,
    normalize_loyalty_card,
    normalize_phone,
    normalize_token,
)


@dataclass(frozen=True, slots=True)
class KeyedId:
    """One identifier in its stored form: its kind and its keyed hash."""

    kind: IdKind
    hash: str

    @property
    def token(self) -> str:
        """``kind:hash``, the form used in keys, sets and resolved events."""
        return f"{self.kind.value}:{self.hash}"

    @classmethod
    def from_token(cls, token: str) -> KeyedId:
        """Read the ``kind:hash`` form back."""
        kind, _, digest = token.partition(":")
        return cls(IdKind(kind), digest)


class IdentityKeyer:
    """Normalizes, hashes and keys raw identifiers; the one place that sees raw values."""

    def __init__(self, secret: bytes, default_region: str) -> None:
        self._secret = secret
        self._region = default_region

    def normalize(self, kind: IdKind, raw: str) -> str:
        """The normalized form of a raw identifier of the given kind."""
        match kind:
            case IdKind.EMAIL:
                return normalize_email(raw)
            case IdKind.PHONE:
                return normalize_phone(raw, self._region)
            case IdKind.DEVICE:
                return normalize_device_id(raw)
            case IdKind.LOYALTY:
                return normalize_loyalty_card(raw)
            case _:
                return normalize_token(raw)

    def key(self, kind: IdKind, raw: str) -> KeyedId:
        """Keyed form of a raw identifier; raises :class:`InvalidIdentifier`."""
        return KeyedId(
            kind, keyed_hash(self._secret, kind, sha256_digest(self.normalize(kind, raw)))
        )

    def key_sha256(self, kind: IdKind, digest: str) -> KeyedId:
        """Keyed form of an identifier the caller already normalized and SHA-256 hashed."""
        return KeyedId(kind, keyed_hash(self._secret, kind, parse_sha256(digest)))

    def key_all(
        self, raw: list[tuple[IdKind, str, bool]]
    ) -> tuple[list[KeyedId], list[tuple[IdKind, str]]]:
        """Key every ``(kind, value, is_sha256)``; return the keyed ids and the rejected ones."""
        keyed: list[KeyedId] = []
        rejected: list[tuple[IdKind, str]] = []
        for kind, value, is_sha256 in raw:
            try:
                kid = self.key_sha256(kind, value) if is_sha256 else self.key(kind, value)
            except InvalidIdentifier as exc:
                rejected.append((kind, str(exc)))
                continue
            if kid not in keyed:
                keyed.append(kid)
        return keyed, rejected
