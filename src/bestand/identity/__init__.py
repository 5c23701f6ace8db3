"""Identity: normalize, hash and key identifiers; extract what may pass identity resolution."""

from __future__ import annotations

from bestand.identity.errors import InvalidIdentifier
from bestand.identity.extract import raw_identifiers, resolved_event
from bestand.identity.hashing import keyed_hash, parse_sha256, person_id_for, sha256_digest
from bestand.identity.keyed import IdentityKeyer, KeyedId
from bestand.identity.kinds import KIND_NAMES, IdKind
from bestand.identity.normalize import normalize_email, normalize_phone

__all__ = [
    "KIND_NAMES",
    "IdKind",
    "IdentityKeyer",
    "InvalidIdentifier",
    "KeyedId",
    "keyed_hash",
    "normalize_email",
    "normalize_phone",
    "parse_sha256",
    "person_id_for",
    "raw_identifiers",
    "resolved_event",
    "sha256_digest",
]
