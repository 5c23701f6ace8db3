"""The compiled keyed hash gives the stored form of an identifier exactly as Python does.

Every key of the identity graph and every lookup record is named by it: a worker that keyed
one value differently would split a customer into two persons across an upgrade.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bestand.identity import hashing
from bestand.identity.kinds import IdKind

native = pytest.importorskip("bestand_native")


@settings(max_examples=400)
@given(
    secret=st.binary(min_size=0, max_size=100),
    kind=st.sampled_from(list(IdKind)),
    normalized=st.text(max_size=200),
)
def test_the_compiled_keyed_hash_is_pythons(secret: bytes, kind: IdKind, normalized: str) -> None:
    python = hashing.keyed_hash(secret, kind, hashing.sha256_digest(normalized))
    assert native.keyed_hash_of(secret, kind.value, normalized) == python
    assert hashing.keyed_value(secret, kind, normalized) == python


def test_the_keyer_uses_the_compiled_hash_when_it_is_installed() -> None:
    assert hashing._compiled_keyed_value is native.keyed_hash_of
    # A known value: the README's example secret and an e-mail (HMAC of kind and SHA-256).
    python = hashing._keyed_value(b"change-me", IdKind.EMAIL, "anna.koch@gmail.com")
    assert hashing.keyed_value(b"change-me", IdKind.EMAIL, "anna.koch@gmail.com") == python
    assert len(python) == 16  # 12 bytes, base64url without padding
