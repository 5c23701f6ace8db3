"""Hash identifiers the way ad systems exchange them, then key them with our own secret.

The stored form of an identifier is ``HMAC-SHA256(secret, kind || SHA-256(normalized))``,
truncated to 96 bits and base64url-encoded (16 characters): without the secret, a leaked
Redis cannot be joined against a list of e-mail addresses. A caller may send the SHA-256 itself
(``email_sha256``, ``phone_sha256`` of the E.164 number) and reaches the same key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable

from bestand.identity.errors import InvalidIdentifier
from bestand.identity.kinds import IdKind

#: Bytes of the HMAC an identifier keeps: 96 bits, 16 base64url characters. 300 million
#: identifiers of a kind share one with a chance of about 1 in 10^12. Earlier releases kept
#: 16 bytes (22 characters), whose first 16 characters are these: a store they wrote is cut
#: short in place (``store/layout.py``). An identifier is stored several times as text
#: (graph entry, lookup record, facts, explain log): each character is bytes of Redis.
KEY_BYTES = 12
#: Characters of an identifier's keyed hash (base64url of :data:`KEY_BYTES`).
KEY_CHARS = 16


def sha256_digest(normalized: str) -> bytes:
    """SHA-256 of a normalized identifier, the form UID2 and ad platforms exchange."""
    return hashlib.sha256(normalized.encode("utf-8")).digest()


def parse_sha256(value: str) -> bytes:
    """Read a SHA-256 digest given as hex (64 characters) or standard base64 (44 characters)."""
    text = value.strip()
    try:
        digest = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise InvalidIdentifier("not a SHA-256 digest in hex or base64") from None
    if len(digest) != 32:
        raise InvalidIdentifier("a SHA-256 digest has 32 bytes")
    return digest


def keyed_hash(secret: bytes, kind: IdKind, digest: bytes) -> str:
    """The stored, secret-keyed form of one identifier's SHA-256 digest."""
    mac = hmac.digest(secret, kind.encode("ascii") + digest, "sha256")
    return base64.urlsafe_b64encode(mac[:KEY_BYTES]).rstrip(b"=").decode("ascii")


def _keyed_value(secret: bytes, kind: IdKind, normalized: str) -> str:
    return keyed_hash(secret, kind, sha256_digest(normalized))


_compiled_keyed_value: Callable[[bytes, str, str], str] | None
try:  # the compiled core gives the same string at a fifth of the cost (tests hold it to this)
    from bestand_native import keyed_hash_of as _compiled_keyed_value
except ImportError:  # pragma: no cover - without the compiled core
    _compiled_keyed_value = None


def keyed_value(secret: bytes, kind: IdKind, normalized: str) -> str:
    """``keyed_hash(secret, kind, sha256_digest(normalized))``: the stored form of a
    normalized identifier (every new value of a history pays it once)."""
    if _compiled_keyed_value is not None:
        return _compiled_keyed_value(secret, kind.value, normalized)
    return _keyed_value(secret, kind, normalized)


#: Bytes of a person id (12 base64url characters). 72 bits: a million persons share an id
#: with a chance of 1 in 10^10, a hundred million with one in a million. Twelve characters
#: keep a graph entry's value (a person id) in Redis's 32-byte allocation; sixteen, as
#: earlier releases minted, took 48 (``bench/memory.py``).
PERSON_ID_BYTES = 9


def person_id_for(secret: bytes, seed: str) -> str:
    """A new person's opaque id, derived from the event that created it so replays agree."""
    mac = hmac.digest(secret, b"person:" + seed.encode("utf-8"), "sha256")
    return base64.urlsafe_b64encode(mac[:PERSON_ID_BYTES]).decode("ascii")
